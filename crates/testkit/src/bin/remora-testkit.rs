//! `remora-testkit sshd [--ip 127.0.0.1] [--pem-key]`: start a real OpenSSH sshd with a
//! throwaway user for scripted tests (the dashboard's browser tests), print its details as one
//! JSON line on stdout, and keep it running until stdin closes or a signal arrives; then
//! clean up (sshd stopped, user and files removed).

use remora_testkit::sshd::{KeyKind, SshHost};
use std::io::{BufRead, Write};

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("sshd") {
        anyhow::bail!("usage: remora-testkit sshd [--ip IP] [--pem-key]");
    }
    let ip = args
        .iter()
        .position(|a| a == "--ip")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let mut host = SshHost::start_on(&ip)?;
    let dir = host.dir().to_path_buf();
    let pem_path = dir.join("client_rsa.pem");
    if args.iter().any(|a| a == "--pem-key") {
        let pem = host.add_key(KeyKind::Rsa, None, true)?;
        std::fs::write(&pem_path, pem)?;
    }
    println!(
        "{{\"host\":{},\"port\":{},\"user\":{},\"password\":{},\"private_key_path\":{},\"pem_key_path\":{},\"host_key_fingerprint\":{}}}",
        json_str(&host.host()),
        host.port(),
        json_str(host.user()),
        json_str(host.password()),
        json_str(&host.private_key_path().display().to_string()),
        json_str(&pem_path.display().to_string()),
        json_str(&host.host_key_fingerprint()),
    );
    std::io::stdout().flush()?;
    // Run until stdin closes (the parent went away) — SIGTERM/SIGINT end the process and the
    // testkit's detached cleanup process removes the user and sshd.
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        if line.is_err() {
            break;
        }
    }
    drop(host);
    Ok(())
}
