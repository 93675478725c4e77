use remora_testkit::pg;

#[test]
fn fresh_database_is_usable_and_dropped() {
    let Some(db) = pg::database().unwrap() else {
        eprintln!("skipped: {} not set", pg::URL_ENV);
        return;
    };
    db.psql("CREATE TABLE t (id int primary key, v text); INSERT INTO t VALUES (1, 'x')")
        .unwrap();
    assert_eq!(db.psql("SELECT v FROM t WHERE id = 1").unwrap().trim(), "x");

    let admin = std::env::var(pg::URL_ENV).unwrap();
    let name = db.name().to_string();
    drop(db);
    let out = std::process::Command::new("psql")
        .args(["-X", "-A", "-t", "-d", &admin, "-c"])
        .arg(format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

#[test]
fn databases_are_distinct() {
    let a = remora_testkit::require!(pg::database_or_skip());
    let b = pg::database_or_skip().unwrap();
    assert_ne!(a.url, b.url);
}
