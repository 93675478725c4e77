//! Network-namespace fixtures: a bastion reachable from here, targets only through it.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use remora_testkit::netns::{routable_from_root, NetLab};
use remora_testkit::require;
use remora_testkit::sshd::{SshHost, SshHostOptions};

use crate::common;

/// An ssh_config that offers every host's key (each hop has its own user and key); `-J` passes
/// `-F` on to the jump hosts' ssh.
fn client_config(dir: &std::path::Path, hosts: &[&SshHost]) -> std::path::PathBuf {
    let mut cfg = String::from(
        "Host *\n  BatchMode yes\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  \
         UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  ConnectTimeout 10\n",
    );
    for h in hosts {
        cfg.push_str(&format!(
            "  IdentityFile {}\n",
            h.private_key_path().display()
        ));
    }
    let path = dir.join("ssh_config");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn jump(config: &std::path::Path, hops: &[&SshHost], target: &SshHost) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.arg("-F").arg(config);
    if !hops.is_empty() {
        let chain: Vec<String> = hops
            .iter()
            .map(|h| format!("{}@{}:{}", h.user(), h.host(), h.port()))
            .collect();
        cmd.arg("-J").arg(chain.join(","));
    }
    cmd.args(["-p", &target.port().to_string()])
        .arg(format!("{}@{}", target.user(), target.host()))
        .arg("id -un")
        .stdin(std::process::Stdio::null());
    cmd
}

#[test]
fn targets_behind_one_and_two_hops() {
    let started = Instant::now();
    let mut lab = require!(NetLab::new());
    let a = lab.bastion().unwrap();
    let b = lab.add_node_behind(&a).unwrap();
    let c = lab.add_node_behind(&b).unwrap();
    let d = lab.add_node_behind(&a).unwrap();
    let wired = started.elapsed();
    let (ha, hb, hc, hd) = std::thread::scope(|s| {
        let ha = s.spawn(|| SshHostOptions::new().in_netns(&a).start());
        let hb = s.spawn(|| SshHostOptions::new().in_netns(&b).start());
        let hc = s.spawn(|| SshHostOptions::new().in_netns(&c).start());
        let hd = s.spawn(|| SshHostOptions::new().dropbear().in_netns(&d).start());
        (
            ha.join().unwrap().unwrap(),
            hb.join().unwrap().unwrap(),
            hc.join().unwrap().unwrap(),
            hd.join().unwrap().unwrap(),
        )
    });
    eprintln!(
        "4 namespaces in {wired:?}, with 3 sshd and a dropbear in {:?}",
        started.elapsed()
    );
    assert_eq!(ha.netns(), Some(a.netns()));
    assert_eq!((ha.host(), ha.port()), (a.ip().to_string(), 22));

    let tmp = tempfile::tempdir().unwrap();
    let cfg = client_config(tmp.path(), &[&ha, &hb, &hc, &hd]);
    // The bastion directly, B through A, C through B through A.
    assert_eq!(common::ok(&ha, jump(&cfg, &[], &ha)).trim(), ha.user());
    assert_eq!(common::ok(&hb, jump(&cfg, &[&ha], &hb)).trim(), hb.user());
    // A Dropbear target behind the same bastion.
    assert_eq!(common::ok(&hd, jump(&cfg, &[&ha], &hd)).trim(), hd.user());
    assert_eq!(
        common::ok(&hc, jump(&cfg, &[&ha, &hb], &hc)).trim(),
        hc.user()
    );
    // B saw the connection come from A's end of their link: A's sshd made it.
    let from_a = format!("Connection from {} ", b.parent_ip());
    assert!(hb.log().contains(&from_a), "{}", hb.log());

    // Negative: targets are not reachable from here, nor C from A, nor through A by routing.
    assert!(routable_from_root(a.ip()));
    for target in [&b, &c, &d] {
        assert!(!routable_from_root(target.ip()), "{} routable", target.ip());
        let addr: SocketAddr = format!("{}:22", target.ip()).parse().unwrap();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
    }
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            a.netns(),
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    let probe = a
        .command("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/{}/22", c.ip())])
        .output()
        .unwrap();
    assert!(!probe.status.success(), "C reachable from A");
    // C's one hop without A fails too (ssh's own view of the same fact).
    let out = common::output(jump(&cfg, &[&hb], &hc));
    assert!(!out.status.success());

    // Faults: the bastion goes dark and comes back; its host key changes.
    lab.set_link(&a, false).unwrap();
    let addr: SocketAddr = format!("{}:22", a.ip()).parse().unwrap();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    lab.set_link(&a, true).unwrap();
    let mut ha = ha;
    let old_key = ha.host_key_fingerprint();
    ha.regenerate_host_key().unwrap();
    assert_ne!(ha.host_key_fingerprint(), old_key);
    assert_eq!(
        common::ok(&hc, jump(&cfg, &[&ha, &hb], &hc)).trim(),
        hc.user()
    );

    // Drop removes the namespaces (and their veths).
    let names: Vec<String> = lab.nodes().iter().map(|n| n.netns().to_string()).collect();
    drop((ha, hb, hc, hd));
    drop(lab);
    for name in names {
        assert!(
            !std::path::Path::new("/run/netns").join(&name).exists(),
            "{name} left"
        );
    }
}

#[test]
fn concurrent_labs_get_distinct_subnets() {
    let a = require!(NetLab::new());
    let b = NetLab::new().unwrap();
    assert_ne!(a.subnet(), b.subnet());
    assert!(a.subnet().starts_with("10.231."));
}
