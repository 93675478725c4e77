//! Password logins fall back to keyboard-interactive (PAM with
//! `PasswordAuthentication no`).

use remora_ssh::{Connection, Credentials, SshError};
use remora_testkit::require;
use remora_testkit::sshd::SshHostOptions;

use crate::{cfg, target, whoami};

#[tokio::test(flavor = "multi_thread")]
async fn password_by_keyboard_interactive_on_pam() {
    let host = require!(SshHostOptions::new().pam_keyboard_interactive().start());
    let mut t = target(&host);
    t.creds = Credentials {
        password: Some(host.password().to_string()),
        ..Default::default()
    };
    let c = Connection::connect(&t, &cfg()).await.unwrap();
    assert_eq!(whoami(&c).await, host.user());
    assert!(
        host.log().contains("Accepted keyboard-interactive/pam"),
        "{}",
        host.log()
    );

    t.creds.password = Some("wrong-password".into());
    match Connection::connect(&t, &cfg()).await {
        Err(SshError::AuthFailed { reason, .. }) => {
            assert!(reason.contains("keyboard-interactive"), "{reason}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a wrong password logged in"),
    }
}
