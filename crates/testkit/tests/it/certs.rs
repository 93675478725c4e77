//! SSH certificate fixtures: host certificates checked by `ssh` against a trusted CA, user
//! certificates accepted by sshd through `TrustedUserCAKeys`.

use std::process::Command;

use remora_testkit::certs::{Ca, Validity};
use remora_testkit::require;
use remora_testkit::sshd::{SshHost, SshHostOptions};

use crate::common;

/// `ssh` that trusts only `ca` for host keys (no pins): StrictHostKeyChecking=yes.
fn ssh_trusting(host: &SshHost, ca: &Ca) -> Command {
    let known = host.dir().join(format!("known_hosts_ca_{}", host.port()));
    std::fs::write(
        &known,
        format!(
            "{}\n",
            ca.known_hosts_line(&format!("[{}]:{}", host.host(), host.port()))
        ),
    )
    .unwrap();
    let mut cmd = Command::new("ssh");
    cmd.arg("-i")
        .arg(host.private_key_path())
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .args(["-o", "StrictHostKeyChecking=yes", "-o"])
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args(["-p", &host.port().to_string()])
        .arg(format!("{}@{}", host.user(), host.host()))
        .arg("echo ok");
    cmd
}

#[test]
fn host_certificates_valid_expired_wrong_principal_other_ca() {
    let ca = require!(Ca::new());
    let other = Ca::new().unwrap();
    let start = |ip: &str, ca: &Ca, principal: &str, validity: Validity| {
        SshHostOptions::new()
            .ip(ip)
            .host_certificate(ca, &[principal], validity)
            .start()
    };
    let valid = require!(start("127.0.6.1", &ca, "127.0.6.1", Validity::Valid));
    let expired = start("127.0.6.2", &ca, "127.0.6.2", Validity::Expired).unwrap();
    let wrong_name = start("127.0.6.3", &ca, "other.example", Validity::Valid).unwrap();
    let other_ca = start("127.0.6.4", &other, "127.0.6.4", Validity::Valid).unwrap();

    let cert = std::fs::read_to_string(valid.host_certificate_path().unwrap()).unwrap();
    assert!(
        cert.starts_with("ssh-ed25519-cert-v01@openssh.com "),
        "{cert}"
    );
    assert_eq!(common::ok(&valid, ssh_trusting(&valid, &ca)), "ok\n");

    for (name, host) in [
        ("expired", &expired),
        ("wrong principal", &wrong_name),
        ("other CA", &other_ca),
    ] {
        let out = common::output(ssh_trusting(host, &ca));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: accepted");
        assert!(
            stderr.contains("Host key verification failed"),
            "{name}: {stderr}"
        );
    }
    // The other CA's host is fine for a client trusting the other CA: the failure above is the CA.
    assert_eq!(
        common::ok(&other_ca, ssh_trusting(&other_ca, &other)),
        "ok\n"
    );
}

#[test]
fn user_certificates_valid_expired_not_yet_valid() {
    let ca = require!(Ca::new());
    let other = Ca::new().unwrap();
    let mut host = require!(SshHostOptions::new().trusted_user_ca(&ca).start());
    let login = |host: &SshHost, key: &std::path::Path, cert: Option<&std::path::Path>| {
        let mut cmd = Command::new("ssh");
        cmd.args(common::SSH_OPTS)
            .args(["-o", "BatchMode=yes", "-i"])
            .arg(key);
        if let Some(cert) = cert {
            cmd.arg("-o")
                .arg(format!("CertificateFile={}", cert.display()));
        }
        cmd.args(["-p", &host.port().to_string()])
            .arg(format!("{}@{}", host.user(), host.host()))
            .arg("id -un");
        common::output(cmd)
    };

    let good = host.user_certificate(&ca, Validity::Valid).unwrap();
    assert!(good
        .certificate
        .starts_with("ssh-ed25519-cert-v01@openssh.com "));
    let out = login(&host, &good.private_key_path, Some(&good.certificate_path));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        host.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), host.user());
    assert!(host.log().contains("ED25519-CERT"), "{}", host.log());

    // The same key without its certificate is not authorized: the certificate is what logs in.
    let out = login(&host, &good.private_key_path, None);
    assert!(!out.status.success(), "key without certificate accepted");

    for (name, cert) in [
        (
            "expired",
            host.user_certificate(&ca, Validity::Expired).unwrap(),
        ),
        (
            "not yet valid",
            host.user_certificate(&ca, Validity::NotYetValid).unwrap(),
        ),
        (
            "other CA",
            host.user_certificate(&other, Validity::Valid).unwrap(),
        ),
    ] {
        let out = login(&host, &cert.private_key_path, Some(&cert.certificate_path));
        assert!(!out.status.success(), "{name} certificate accepted");
    }
}
