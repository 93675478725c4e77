//! Sealed credentials: a server's sealed secrets, decryption, and rekeying in one transaction.

use crate::server;
use remora_store::Store;

async fn secrets(s: &Store) {
    // Fixtures whose "sealed" bytes no key opens.
    let a = s.insert_server(&server("alpha")).await.unwrap();
    let b = s.insert_server(&server("beta")).await.unwrap();
    let sec = s.server_secrets(&a.id).await.unwrap().unwrap();
    assert_eq!(sec.password_enc, Some(vec![1, 2, 3]));

    // rekey: every sealed value moves to the new key, in one transaction
    let old = remora_store::Vault::new([3; 32]);
    let new = remora_store::Vault::new([4; 32]);
    let mut sealed = server("sealed");
    sealed.password_enc = Some(old.seal(b"pw"));
    sealed.private_key_enc = Some(old.seal(b"key"));
    let sv = s.insert_server(&sealed).await.unwrap();
    s.insert_pem(
        "ssh-ed25519",
        "SHA256:x",
        &old.seal(b"pem"),
        Some(old.seal(b"pass")),
        3,
    )
    .await
    .unwrap();
    // Values sealed under other keys (the fixtures above) would fail: rekey refuses, changing nothing.
    assert!(
        s.rekey(&old, &new).await.is_err(),
        "unreadable values abort the rekey"
    );
    assert_eq!(
        s.open_secrets(&sv.id, &old)
            .await
            .unwrap()
            .unwrap()
            .password
            .as_deref(),
        Some("pw")
    );
    for id in [a.id.clone(), b.id.clone()] {
        s.delete_server(&id).await.unwrap();
    }
    assert_eq!(s.rekey(&old, &new).await.unwrap(), 4);
    let plain = s.open_secrets(&sv.id, &new).await.unwrap().unwrap();
    assert_eq!(
        (plain.password.as_deref(), plain.private_key.as_deref()),
        (Some("pw"), Some("key"))
    );
    assert!(s.open_secrets(&sv.id, &old).await.is_err());
}
on_both!(secrets);

/// An uploaded PEM file: listed, read, used by a server (whose key and
/// passphrase then come from it), and deletable.
async fn pem_files(s: &Store) {
    let v = remora_store::Vault::new([5; 32]);
    let pem = s
        .insert_pem(
            "ssh-ed25519",
            "SHA256:pem",
            &v.seal(b"KEY FROM FILE"),
            Some(v.seal(b"file pass")),
            13,
        )
        .await
        .unwrap();
    assert_eq!(s.list_pems().await.unwrap().len(), 1);
    let got = s.get_pem(&pem.id).await.unwrap().unwrap();
    assert_eq!(
        (got.key_type.as_str(), got.fingerprint.as_str(), got.size),
        ("ssh-ed25519", "SHA256:pem", 13)
    );
    assert!(s.get_pem("nope").await.unwrap().is_none());
    let mut uses = server("uses-pem");
    uses.password_enc = None;
    uses.pem_file_id = Some(pem.id.clone());
    let sv = s.insert_server(&uses).await.unwrap();
    assert_eq!(
        s.pem_users(&pem.id).await.unwrap(),
        vec!["uses-pem".to_string()]
    );
    let plain = s.open_secrets(&sv.id, &v).await.unwrap().unwrap();
    assert_eq!(
        (
            plain.password.as_deref(),
            plain.private_key.as_deref(),
            plain.passphrase.as_deref()
        ),
        (None, Some("KEY FROM FILE"), Some("file pass"))
    );
    assert!(s.open_secrets("nope", &v).await.unwrap().is_none());
    assert!(s.delete_pem(&pem.id).await.unwrap());
    assert!(!s.delete_pem(&pem.id).await.unwrap());
    assert!(s.list_pems().await.unwrap().is_empty());
}
on_both!(pem_files);
