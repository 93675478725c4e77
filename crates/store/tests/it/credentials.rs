//! Credentials: migration 0016 turns inline secrets and PEM uploads into credentials; CRUD; trusted CAs.

use remora_store::{NewCredential, Store, Vault};
use sqlx::any::AnyPoolOptions;

/// Apply the migrations before 0016 to `url` (a copy of those files: sqlx
/// records their checksums, which the real migrator then finds unchanged).
async fn migrate_to_0015(url: &str, dir: &str) {
    sqlx::any::install_default_drivers();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.as_str() < "0016" {
            std::fs::copy(e.path(), tmp.path().join(&name)).unwrap();
        }
    }
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let m = sqlx::migrate::Migrator::new(tmp.path()).await.unwrap();
    m.run(&pool).await.unwrap();
    let v = Vault::new([7; 32]);
    sqlx::query("INSERT INTO pem_files (id, key_type, fingerprint, content_enc, passphrase_enc, size, created_at) VALUES ('pem1', 'ssh-ed25519', 'SHA256:pem', $1, $2, 6, 1)")
        .bind(v.seal(b"PEMKEY"))
        .bind(v.seal(b"pempass"))
        .execute(&pool)
        .await
        .unwrap();
    let ins = |id: &'static str,
               auth: &'static str,
               pw: Option<&'static [u8]>,
               key: Option<&'static [u8]>,
               pass: Option<&'static [u8]>,
               pem: Option<&'static str>,
               sudo: Option<&'static [u8]>| {
        let pool = pool.clone();
        let v = v.clone();
        async move {
            sqlx::query("INSERT INTO servers (id, name, hostname, port, username, auth_type, password_enc, private_key_enc, passphrase_enc, pem_file_id, sudo_password_enc, created_at, updated_at) VALUES ($1, $1, '127.0.0.1', 22, 'u', $2, $3, $4, $5, $6, $7, 1, 1)")
                .bind(id)
                .bind(auth)
                .bind(pw.map(|x| v.seal(x)))
                .bind(key.map(|x| v.seal(x)))
                .bind(pass.map(|x| v.seal(x)))
                .bind(pem)
                .bind(sudo.map(|x| v.seal(x)))
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    ins("s-pw", "password", Some(b"pw1"), None, None, None, None).await;
    ins(
        "s-key",
        "key",
        None,
        Some(b"KEY2"),
        Some(b"pass2"),
        None,
        Some(b"sudo2"),
    )
    .await;
    ins("s-pem-a", "key", None, None, None, Some("pem1"), None).await;
    ins("s-pem-b", "key", None, None, None, Some("pem1"), None).await;
    ins(
        "s-pem-own",
        "key",
        None,
        None,
        Some(b"ownpass"),
        Some("pem1"),
        None,
    )
    .await;
    pool.close().await;
}

async fn check_migrated(s: &Store) {
    let v = Vault::new([7; 32]);
    let open = |id: &'static str| {
        let v = v.clone();
        async move { s.open_secrets(id, &v).await.unwrap().unwrap() }
    };
    let p = open("s-pw").await;
    assert_eq!(p.password.as_deref(), Some("pw1"));
    assert!(p.private_key.is_none());
    let p = open("s-key").await;
    assert_eq!(
        (
            p.private_key.as_deref(),
            p.passphrase.as_deref(),
            p.sudo_password.as_deref()
        ),
        (Some("KEY2"), Some("pass2"), Some("sudo2"))
    );
    for id in ["s-pem-a", "s-pem-b"] {
        let p = open(id).await;
        assert_eq!(
            (p.private_key.as_deref(), p.passphrase.as_deref()),
            (Some("PEMKEY"), Some("pempass")),
            "{id}"
        );
        let sv = s.get_server(id).await.unwrap().unwrap();
        assert_eq!(sv.credential_id.as_deref(), Some("pem1"));
        assert_eq!(sv.pem_file_id.as_deref(), Some("pem1"));
    }
    let p = open("s-pem-own").await;
    assert_eq!(
        (p.private_key.as_deref(), p.passphrase.as_deref()),
        (Some("PEMKEY"), Some("ownpass"))
    );
    // one shared credential for the PEM file, one private per server with own secrets
    let users: Vec<String> = s
        .credential_users("pem1")
        .await
        .unwrap()
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(users, ["s-pem-a", "s-pem-b"]);
    let names: Vec<String> = s
        .list_credentials()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        [
            "pem:pem1",
            "server:s-key",
            "server:s-pem-own",
            "server:s-pw"
        ]
    );
    let k = s.get_credential("s-key").await.unwrap().unwrap();
    assert!(k.has_private_key && k.has_passphrase && k.has_sudo_password && !k.has_password);
    assert_eq!(k.owner_server_id.as_deref(), Some("s-key"));
    assert_eq!(
        s.get_server("s-pw").await.unwrap().unwrap().has_password,
        true
    );
    // the ciphertexts moved: nothing sealed is left in servers or pem_files
    let left = s.count_inline_ciphertexts().await.unwrap();
    assert_eq!(left, 0);
    assert_eq!(s.list_pems().await.unwrap().len(), 1);
    // a PEM file in use by a credential's servers cannot go; rekey still sees every secret
    assert_eq!(s.pem_users("pem1").await.unwrap().len(), 3);
    let new = Vault::new([8; 32]);
    // pw1, KEY2+pass2+sudo2, PEMKEY+pempass, PEMKEY+ownpass
    assert_eq!(s.rekey(&v, &new).await.unwrap(), 8);
    assert_eq!(
        s.open_secrets("s-pem-b", &new)
            .await
            .unwrap()
            .unwrap()
            .private_key
            .as_deref(),
        Some("PEMKEY")
    );
}

#[tokio::test]
async fn migration_0016_on_sqlite() {
    let d = tempfile::tempdir().unwrap();
    let url = remora_store::default_url(d.path());
    migrate_to_0015(&url, "sqlite").await;
    let s = Store::connect(&url).await.unwrap();
    check_migrated(&s).await;
}

#[tokio::test]
async fn migration_0016_on_postgres() {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return;
    };
    migrate_to_0015(&db.url, "postgres").await;
    let s = Store::connect(&db.url).await.unwrap();
    check_migrated(&s).await;
    s.close().await;
}

/// Shared credentials: servers point at one; a rotation bumps the version and
/// replaces the ciphertext; in use it cannot be deleted; a server's private one
/// goes with it; trusted CAs round-trip.
async fn shared(s: &Store) {
    let v = Vault::new([9; 32]);
    let c = s
        .insert_credential(&NewCredential {
            name: "deploy".into(),
            kind: "key".into(),
            private_key_enc: Some(v.seal(b"OLDKEY")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(c.version, 1);
    let mut a = crate::server("a");
    a.password_enc = None;
    a.credential_id = Some(c.id.clone());
    let a = s.insert_server(&a).await.unwrap();
    let b = s.insert_server(&crate::server("b")).await.unwrap();
    assert_eq!(a.credential_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(
        b.credential_id.as_deref(),
        Some(b.id.as_str()),
        "inline → private"
    );
    assert_eq!(
        s.open_secrets(&a.id, &v)
            .await
            .unwrap()
            .unwrap()
            .private_key
            .as_deref(),
        Some("OLDKEY")
    );
    assert!(!s.delete_credential(&c.id).await.unwrap(), "in use");
    s.update_credential(
        &c.id,
        &NewCredential {
            name: "deploy".into(),
            kind: "key".into(),
            private_key_enc: Some(v.seal(b"NEWKEY")),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(s.get_credential(&c.id).await.unwrap().unwrap().version, 2);
    assert_eq!(
        s.open_secrets(&a.id, &v)
            .await
            .unwrap()
            .unwrap()
            .private_key
            .as_deref(),
        Some("NEWKEY")
    );
    // b moves to the shared credential: its private one is deleted
    let mut nb = crate::server("b");
    nb.password_enc = None;
    nb.credential_id = Some(c.id.clone());
    s.update_server(&b.id, &nb).await.unwrap();
    assert!(s.get_credential(&b.id).await.unwrap().is_none());
    // a private credential goes with its server
    let p = s.insert_server(&crate::server("p")).await.unwrap();
    assert!(s.get_credential(&p.id).await.unwrap().is_some());
    s.delete_server(&p.id).await.unwrap();
    assert!(s.get_credential(&p.id).await.unwrap().is_none());
    for id in [&a.id, &b.id] {
        s.delete_server(id).await.unwrap();
    }
    assert!(s.delete_credential(&c.id).await.unwrap());

    let ca = s
        .insert_trusted_ca(
            "corp",
            "ssh-ed25519 AAAA",
            "ssh-ed25519",
            "SHA256:ca",
            &["*.corp".into()],
        )
        .await
        .unwrap();
    assert_eq!(s.get_trusted_ca("corp").await.unwrap().unwrap().id, ca.id);
    s.update_trusted_ca(&ca.id, "corp", &["*.corp".into(), "!x.corp".into()])
        .await
        .unwrap();
    assert_eq!(s.list_trusted_cas().await.unwrap()[0].patterns.len(), 2);
    assert!(s.delete_trusted_ca(&ca.id).await.unwrap());
    assert!(s.list_trusted_cas().await.unwrap().is_empty());
}
on_both!(shared);
