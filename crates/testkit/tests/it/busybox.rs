//! The BusyBox-only host: a chrooted session where every tool is a BusyBox applet.

use remora_testkit::require;
use remora_testkit::sshd::SshHostOptions;

use crate::common;

fn mounted(path: &std::path::Path) -> bool {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_string_lossy();
    table
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(p.as_ref()))
}

#[test]
fn busybox_host_has_only_busybox_tools() {
    let started = std::time::Instant::now();
    let host = require!(SshHostOptions::new().busybox_chroot().start());
    eprintln!("busybox host started in {:?}", started.elapsed());
    let root = host.chroot_dir().unwrap().to_path_buf();
    assert!(mounted(&root.join("proc")));

    // /bin/sh, ls and ps are all BusyBox; GNU's files are not there.
    let out = common::run(
        &host,
        "readlink /bin/sh; readlink /bin/ls; ls --help 2>&1 | head -n 1; \
         test -e /usr/bin/dpkg && echo has-dpkg; echo end",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "/bin/busybox", "{out}");
    assert_eq!(lines[1], "/bin/busybox", "{out}");
    assert!(lines[2].starts_with("BusyBox"), "{out}");
    assert_eq!(lines[3], "end", "{out}");

    // The session is the user, sees /proc (ps, kill -0 on itself), /dev/null and its home.
    let out = common::run(
        &host,
        "id -un; echo x >/dev/null && echo devnull; kill -0 $$ && echo alive; \
         ps -o pid,comm | grep -c sh; cd && pwd && touch f && echo writable",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], host.user(), "{out}");
    assert_eq!(lines[1], "devnull", "{out}");
    assert_eq!(lines[2], "alive", "{out}");
    assert!(lines[3].parse::<u32>().unwrap() >= 1, "{out}");
    assert_eq!(lines[4], format!("/home/{}", host.user()), "{out}");
    assert_eq!(lines[5], "writable", "{out}");

    let user = host.user().to_string();
    drop(host);
    assert!(!mounted(&root.join("proc")), "proc still mounted");
    assert!(!root.exists(), "{} left behind", root.display());
    assert!(!common::user_exists(&user));
}
