//! Host certificates from a trusted CA replace the pin; wrong CA, wrong
//! principal or expired fail `host_key_untrusted`; user certificates log in
//! and an expired one is refused before connecting.

use remora_ssh::{Connection, SshError, Target, TrustedCa};
use remora_testkit::certs::{Ca, Validity};
use remora_testkit::require;
use remora_testkit::sshd::SshHostOptions;

use crate::{cfg, target, whoami};

fn trusting(t: &mut Target, ca: &Ca, pattern: &str) {
    t.pinned = None;
    t.trusted_cas = vec![TrustedCa {
        public_key: ca.public_key().to_string(),
        patterns: vec![pattern.to_string()],
    }];
}

#[tokio::test(flavor = "multi_thread")]
async fn host_certificates() {
    let ca = require!(Ca::new());
    let other = Ca::new().unwrap();
    let good = SshHostOptions::new()
        .host_certificate(&ca, &["127.0.0.1"], Validity::Valid)
        .start()
        .unwrap();
    let mut t = target(&good);
    trusting(&mut t, &ca, "127.0.0.1");
    let c = Connection::connect(&t, &cfg()).await.unwrap();
    assert!(c.verified_by_ca);
    assert_eq!(whoami(&c).await, good.user());
    // A wrong pin does not matter when the CA vouches for the host.
    t.pinned = Some("SHA256:not-this-one".into());
    let c = Connection::connect(&t, &cfg()).await.unwrap();
    assert!(c.verified_by_ca);

    // A CA whose patterns do not cover the host is not asked: plain key, TOFU.
    trusting(&mut t, &ca, "*.example.com");
    let c = Connection::connect(&t, &cfg()).await.unwrap();
    assert!(!c.verified_by_ca);
    assert_eq!(c.host_key_fingerprint(), good.host_key_fingerprint());

    let cases = [
        (
            "another CA",
            &other,
            "127.0.0.1",
            Validity::Valid,
            "not a CA trusted",
        ),
        (
            "another host",
            &ca,
            "10.9.9.9",
            Validity::Valid,
            "not 127.0.0.1",
        ),
        ("expired", &ca, "127.0.0.1", Validity::Expired, "expired"),
        (
            "not yet valid",
            &ca,
            "127.0.0.1",
            Validity::NotYetValid,
            "not valid before",
        ),
    ];
    for (what, signer, principal, validity, why) in cases {
        let host = SshHostOptions::new()
            .host_certificate(signer, &[principal], validity)
            .start()
            .unwrap();
        let mut t = target(&host);
        trusting(&mut t, &ca, "127.0.0.1");
        match Connection::connect(&t, &cfg()).await {
            Err(e @ SshError::HostKeyUntrusted(_)) => {
                assert_eq!(e.code().as_str(), "host_key_untrusted");
                assert!(e.to_string().contains(why), "{what}: {e}");
            }
            Err(e) => panic!("{what}: {e}"),
            Ok(_) => panic!("{what}: connected"),
        }
        // Nothing was authenticated.
        assert!(!host.log().contains("Accepted publickey"), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn user_certificates() {
    let ca = require!(Ca::new());
    let mut host = SshHostOptions::new().trusted_user_ca(&ca).start().unwrap();
    let cert = host.user_certificate(&ca, Validity::Valid).unwrap();
    let mut t = target(&host);
    t.creds.private_key = Some(cert.private_key.clone());
    t.creds.certificate = Some(cert.certificate.clone());
    let c = Connection::connect(&t, &cfg()).await.unwrap();
    assert_eq!(whoami(&c).await, host.user());

    // The key alone is not authorized: the certificate is what logged in.
    t.creds.certificate = None;
    match Connection::connect(&t, &cfg()).await {
        Err(SshError::AuthFailed { .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("the bare key logged in"),
    }

    for validity in [Validity::Expired, Validity::NotYetValid] {
        let cert = host.user_certificate(&ca, validity.clone()).unwrap();
        t.creds.private_key = Some(cert.private_key.clone());
        t.creds.certificate = Some(cert.certificate.clone());
        let before = host.connection_count();
        match Connection::connect(&t, &cfg()).await {
            Err(e @ SshError::BadCertificate(_)) => {
                assert_eq!(e.code().as_str(), "bad_certificate");
            }
            Err(e) => panic!("{validity:?}: {e}"),
            Ok(_) => panic!("{validity:?}: connected"),
        }
        assert_eq!(host.connection_count(), before, "connected anyway");
    }
    t.creds.certificate = Some("ssh-ed25519-cert-v01@openssh.com AAAAgarbage".into());
    assert!(matches!(
        Connection::connect(&t, &cfg()).await,
        Err(SshError::BadCertificate(_))
    ));
}
