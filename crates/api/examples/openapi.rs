//! Prints the API's OpenAPI document (the one served at `/api/openapi.json`)
//! as pretty JSON on stdout, without starting a server: the dashboard's
//! TypeScript types are generated from it (web/scripts/gen-types.sh).

fn main() -> anyhow::Result<()> {
    let doc = serde_json::to_string_pretty(&remora_api::openapi())?;
    println!("{doc}");
    Ok(())
}
