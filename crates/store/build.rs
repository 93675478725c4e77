//! `sqlx::migrate!` embeds the migration files at compile time, but cargo
//! does not know about them: without this, adding a migration does not
//! rebuild the crate and the new file is silently left out.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
