use std::process::Command;
use std::time::{Duration, Instant};

use remora_testkit::require;
use remora_testkit::sshd::{KeyKind, SshHost};

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .args(["-u", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ssh_ok(host: &SshHost, remote: &str) -> String {
    let out = host
        .ssh_command()
        .arg(remote)
        .output()
        .expect("running ssh");
    assert!(
        out.status.success(),
        "ssh failed: {}\nsshd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        host.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn two_hosts_run_commands_and_clean_up() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(SshHost::start);
        let b = s.spawn(|| SshHost::start_on("127.0.1.2"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let a = require!(a);
    let b = require!(b);
    assert_ne!(a.user(), b.user());
    assert_eq!(b.host(), "127.0.1.2");

    for host in [&a, &b] {
        // Exactly the command line from the brief, not the helper.
        let out = Command::new("ssh")
            .arg("-i")
            .arg(host.private_key_path())
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "BatchMode=yes", "-p", &host.port().to_string()])
            .arg(format!("{}@{}", host.user(), host.host()))
            .args(["echo", "hi"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            host.log()
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
        assert_eq!(ssh_ok(host, "id -un").trim(), host.user());
        assert_eq!(host.connection_count(), 2, "log:\n{}", host.log());
    }

    // A background process started over ssh outlives the session; user_processes must see it.
    ssh_ok(&a, "nohup sleep 300 >/dev/null 2>&1 &");
    // ssh may return before the backgrounded shell has exec'd sleep: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let procs = loop {
        let procs = a.user_processes();
        if procs.iter().any(|(_, cmd)| cmd == "sleep 300") || Instant::now() > deadline {
            break procs;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(procs.iter().any(|(_, cmd)| cmd == "sleep 300"), "{procs:?}");
    assert!(procs.iter().all(|(_, cmd)| !cmd.starts_with("sshd:")));
    assert!(!a.wait_no_user_processes(Duration::from_millis(100)));
    assert!(b.user_processes().is_empty(), "{:?}", b.user_processes());

    let (user_a, user_b) = (a.user().to_string(), b.user().to_string());
    let (home_a, dir_a) = (a.home().to_path_buf(), a.dir().to_path_buf());
    let sshd_a = a.pid().unwrap();
    assert!(user_exists(&user_a));
    drop(a);
    drop(b);
    assert!(!user_exists(&user_a));
    assert!(!user_exists(&user_b));
    assert!(!home_a.exists());
    assert!(!dir_a.exists());
    assert!(!std::path::Path::new(&format!("/proc/{sshd_a}")).exists());
}

#[test]
fn password_and_extra_keys() {
    let mut host = require!(SshHost::start());
    assert!(host.host_key_fingerprint().starts_with("SHA256:"));
    assert!(host
        .private_key()
        .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    assert!(host.password().len() >= 16);
    let rsa = host.add_key(KeyKind::Rsa, None, true).unwrap();
    assert!(rsa.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{rsa}");
    let ec = host.add_key(KeyKind::Ecdsa, Some("secret"), false).unwrap();
    assert!(ec.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    assert!(host.add_key(KeyKind::Ed25519, None, true).is_err());

    let path = host.add_key_file(KeyKind::Ecdsa, None, false).unwrap();
    let out = host
        .ssh_command()
        .arg("-i") // later -i are tried too; IdentitiesOnly keeps it to these two
        .arg(&path)
        .arg("true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(host.log().contains("Accepted publickey"));
}

#[test]
fn host_key_regeneration_and_restart() {
    let mut host = require!(SshHost::start_on("127.0.1.3"));
    let (port, fp, pid) = (host.port(), host.host_key_fingerprint(), host.pid());
    let known = host.known_hosts_line().unwrap();
    assert!(known.starts_with(&format!("[127.0.1.3]:{port} ssh-ed25519 ")));

    // A client that pinned the key by a hashed known_hosts line gets in with strict checking.
    let hashed = host.known_hosts_line_hashed().unwrap();
    assert!(
        hashed.starts_with("|1|") && !hashed.contains("127.0.1.3"),
        "{hashed}"
    );
    let known = host.dir().join("known_hosts_hashed");
    std::fs::write(&known, format!("{hashed}\n")).unwrap();
    let strict = |known: &std::path::Path| {
        Command::new("ssh")
            .arg("-i")
            .arg(host.private_key_path())
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .args(["-p", &host.port().to_string()])
            .arg(format!("{}@{}", host.user(), host.host()))
            .arg("true")
            .output()
            .unwrap()
    };
    let out = strict(&known);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let empty = host.dir().join("known_hosts_empty");
    std::fs::write(&empty, "").unwrap();
    assert!(!strict(&empty).status.success(), "strict checking is off");

    host.regenerate_host_key().unwrap();
    assert_eq!(host.port(), port);
    assert_ne!(host.host_key_fingerprint(), fp);
    assert_ne!(host.pid(), pid);
    ssh_ok(&host, "true");

    host.kill().unwrap();
    assert_eq!(host.pid(), None);
    let refused = std::net::TcpStream::connect(host.addr());
    assert!(refused.is_err());
    host.restart().unwrap();
    ssh_ok(&host, "true");
    host.stop().unwrap();
    host.stop().unwrap();
}

#[test]
fn many_hosts_in_parallel() {
    let hosts: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| s.spawn(move || SshHost::start_on(&format!("127.0.2.{}", i + 1))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let hosts: Vec<SshHost> = require!(hosts.into_iter().collect::<anyhow::Result<_>>());
    std::thread::scope(|s| {
        for host in &hosts {
            s.spawn(move || assert_eq!(ssh_ok(host, "echo $USER").trim(), host.user()));
        }
    });
    let users: Vec<String> = hosts.iter().map(|h| h.user().to_string()).collect();
    drop(hosts);
    assert!(users.iter().all(|u| !user_exists(u)));
}

/// Runs in a child process that gets SIGKILLed, so `Drop` never runs: the reaper must clean up.
#[test]
#[ignore = "helper for reaper_cleans_up_after_a_killed_test_process"]
fn reaper_child() {
    let host = SshHost::start().unwrap();
    println!(
        "USER={} DIR={} PID={}",
        host.user(),
        host.dir().display(),
        host.pid().unwrap()
    );
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn reaper_cleans_up_after_a_killed_test_process() {
    require!(SshHost::start()); // skip check only
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sshd::reaper_child", "--ignored", "--nocapture"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let line = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.starts_with("USER="))
        .expect("child printed its host");
    let mut fields = line
        .split_whitespace()
        .map(|f| f.split_once('=').unwrap().1);
    let (user, dir, sshd) = (
        fields.next().unwrap(),
        fields.next().unwrap(),
        fields.next().unwrap(),
    );
    assert!(user_exists(user));
    child.kill().unwrap();
    child.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while (user_exists(user) || std::path::Path::new(dir).exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!user_exists(user), "reaper left user {user}");
    assert!(!std::path::Path::new(dir).exists(), "reaper left {dir}");
    let stat = std::fs::read_to_string(format!("/proc/{sshd}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "sshd {sshd} survived: {stat}"
    );
}

/// Runs in a child process that gets SIGKILLed: a Dropbear host, a BusyBox chroot host and a
/// network-namespace lab with an sshd inside, none of them dropped.
#[test]
#[ignore = "helper for reaper_cleans_up_every_fixture_kind"]
fn reaper_child_all_kinds() {
    use remora_testkit::netns::NetLab;
    use remora_testkit::sshd::SshHostOptions;
    let dropbear = SshHostOptions::new()
        .dropbear()
        .sudo(remora_testkit::sudo::SudoRule::NoPassword)
        .start()
        .unwrap();
    let busybox = SshHostOptions::new().busybox_chroot().start().unwrap();
    let mut lab = NetLab::new().unwrap();
    let node = lab.bastion().unwrap();
    let inside = SshHostOptions::new().in_netns(&node).start().unwrap();
    println!(
        "USERS={},{},{} PIDS={},{},{} CHROOT={} NETNS={} SUBNET={}",
        dropbear.user(),
        busybox.user(),
        inside.user(),
        dropbear.pid().unwrap(),
        busybox.pid().unwrap(),
        inside.pid().unwrap(),
        busybox.chroot_dir().unwrap().display(),
        node.netns(),
        lab.subnet(),
    );
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn reaper_cleans_up_every_fixture_kind() {
    require!(remora_testkit::dropbear::start()); // skip check only
    require!(remora_testkit::netns::NetLab::new());
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sshd::reaper_child_all_kinds",
            "--ignored",
            "--nocapture",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let line = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.starts_with("USERS="))
        .expect("child printed its fixtures");
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_string()
    };
    let users: Vec<String> = field("USERS").split(',').map(String::from).collect();
    let sudoers = std::path::Path::new("/etc/sudoers.d").join(&users[0]);
    assert!(sudoers.exists());
    let pids: Vec<String> = field("PIDS").split(',').map(String::from).collect();
    let chroot = std::path::PathBuf::from(field("CHROOT"));
    let netns = std::path::Path::new("/run/netns").join(field("NETNS"));
    let slot = field("SUBNET").split('.').nth(2).unwrap().to_string();
    let slot_file = std::path::Path::new("/run/remora-testkit/netslots").join(&slot);
    assert!(users.iter().all(|u| user_exists(u)));
    assert!(chroot.join("proc/self").exists() && netns.exists() && slot_file.exists());
    child.kill().unwrap();
    child.wait().unwrap();

    let mounted = || {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        table.contains(&format!(" {}/proc ", chroot.display()))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let clean = || {
        users.iter().all(|u| !user_exists(u))
            && !chroot.exists()
            && !mounted()
            && !netns.exists()
            && !slot_file.exists()
            && !sudoers.exists()
    };
    while !clean() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for u in &users {
        assert!(!user_exists(u), "reaper left user {u}");
    }
    assert!(!mounted(), "reaper left {}/proc mounted", chroot.display());
    assert!(!chroot.exists(), "reaper left {}", chroot.display());
    assert!(!netns.exists(), "reaper left {}", netns.display());
    assert!(!slot_file.exists(), "reaper left {}", slot_file.display());
    assert!(!sudoers.exists(), "reaper left {}", sudoers.display());
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "{pid} survived: {stat}"
        );
    }
}
