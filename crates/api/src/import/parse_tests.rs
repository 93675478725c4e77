//! Unit tests of the inventory parsers: every format's rows and its errors' line numbers.

use super::parse::*;

const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM2fqH3vMZyAidnAUlELBxBde7HiMFOJwqe7r8bnCCkQ";

fn fp(line: &str) -> String {
    remora_ssh::trust::parse_public_key(line)
        .unwrap()
        .fingerprint(russh::keys::HashAlg::Sha256)
        .to_string()
}

#[test]
fn csv_rows_columns_and_line_numbers() {
    let p = csv("name,hostname,port,user,tags,jump\nweb1,10.0.0.1,2222,deploy,web;prod,\n# note\nweb2,,,root,web bastion,web1\n");
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.hosts.len(), 2);
    let (a, b) = (&p.hosts[0], &p.hosts[1]);
    assert_eq!((a.line, a.name.as_str()), (2, "web1"));
    assert_eq!(a.hostname.as_deref(), Some("10.0.0.1"));
    assert_eq!(a.port, Some(2222));
    assert_eq!(a.user.as_deref(), Some("deploy"));
    assert_eq!(a.tags, vec!["web", "prod"]);
    assert_eq!(a.jump, None);
    assert_eq!(b.line, 4);
    assert_eq!(b.hostname, None);
    assert_eq!(b.tags, vec!["web", "bastion"]);
    assert_eq!(b.jump.as_deref(), Some("web1"));

    let p = csv("hostname,port\nh1,22\nh2,99999\nh3,x\n");
    assert_eq!(p.hosts[0].name, "h1", "name defaults to the hostname");
    let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4], "{:?}", p.errors);
    assert!(p.errors[0].message.contains("99999"));

    let p = csv("name,colour\nx,red\n");
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].line, 1);
    assert!(p.errors[0].message.contains("unknown column `colour`"));

    let p = csv("name,hostname\na,b,c\n");
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    assert_eq!(p.errors[0].line, 2);
}

#[test]
fn ssh_config_blocks_defaults_and_first_value_wins() {
    let cfg = "\
# fleet
Host bastion
    HostName 203.0.113.10
    User jump

Host web1 web1.example.com
    HostName 10.0.0.11
    Port 2201
    ProxyJump bastion
    IdentityFile ~/.ssh/web
    CertificateFile ~/.ssh/web-cert.pub

Host db?
    User postgres

Host db1
    HostName=10.0.0.21
    User ignored-because-db?-came-first

Match host foo
    User nobody

Host *
    User deploy
    Port 22
    IdentityFile ~/.ssh/id_ed25519
";
    let p = ssh_config(cfg);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert_eq!(p.warnings[0].line, 20);
    let names: Vec<&str> = p.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, vec!["bastion", "web1", "db1"]);
    let b = &p.hosts[0];
    assert_eq!(
        (b.line, b.user.as_deref(), b.port),
        (2, Some("jump"), Some(22))
    );
    let w = &p.hosts[1];
    assert_eq!(w.line, 6);
    assert_eq!(w.hostname.as_deref(), Some("10.0.0.11"));
    assert_eq!(w.user.as_deref(), Some("deploy"), "from Host *");
    assert_eq!(w.port, Some(2201));
    assert_eq!(w.jump.as_deref(), Some("bastion"));
    assert_eq!(w.identity_files, vec!["~/.ssh/web", "~/.ssh/id_ed25519"]);
    assert_eq!(w.certificate_files, vec!["~/.ssh/web-cert.pub"]);
    assert_eq!(w.aliases, vec!["web1.example.com"]);
    let d = &p.hosts[2];
    assert_eq!(
        d.hostname.as_deref(),
        Some("10.0.0.21"),
        "Keyword=value form"
    );
    assert_eq!(
        d.user.as_deref(),
        Some("postgres"),
        "the first matching block wins"
    );

    let p = ssh_config("Host a\n  Port nope\nHost\n  HostName \"unterminated\n");
    let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4], "{:?}", p.errors);

    let p = ssh_config("Include ~/.ssh/conf.d/*\nHost x\n  ProxyCommand nc %h %p\n");
    assert_eq!(p.warnings.len(), 2);
    assert!(p.warnings[0].message.contains("Include"));
    assert!(p.warnings[1].message.contains("ProxyJump"));
}

#[test]
fn ansible_ini_groups_children_vars_ranges() {
    let inv = "\
lonely ansible_host=192.0.2.1

[web]
web[01:03].example.com ansible_user=www
app ansible_host=10.1.1.1 ansible_port=2022 ansible_ssh_common_args='-o ProxyJump=bastion'

[db]
db1 ansible_host=10.2.0.1

[prod:children]
web
db

[prod:vars]
ansible_user=admin
ansible_port=22
";
    let p = ansible_ini(inv);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let names: Vec<&str> = p.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "lonely",
            "web01.example.com",
            "web02.example.com",
            "web03.example.com",
            "app",
            "db1"
        ]
    );
    let lonely = &p.hosts[0];
    assert_eq!(lonely.tags, Vec::<String>::new(), "ungrouped is no tag");
    assert_eq!(lonely.hostname.as_deref(), Some("192.0.2.1"));
    let w2 = &p.hosts[2];
    assert_eq!(w2.line, 4);
    assert_eq!(w2.user.as_deref(), Some("www"), "host var beats group var");
    assert_eq!(w2.tags, vec!["prod", "web"]);
    assert_eq!(w2.port, Some(22));
    let app = &p.hosts[4];
    assert_eq!(app.port, Some(2022));
    assert_eq!(app.user.as_deref(), Some("admin"));
    assert_eq!(app.jump.as_deref(), Some("bastion"));
    assert_eq!(p.hosts[5].tags, vec!["db", "prod"]);

    let p = ansible_ini("[web\nh1\n[g:weird]\n[x]\nh[3:1]\nh2 ansible_port=70000\n");
    let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 3, 5, 6], "{:?}", p.errors);
}

#[test]
fn ansible_yaml_groups_children_vars() {
    let inv = "\
all:
  vars:
    ansible_user: ops
  hosts:
    solo:
      ansible_host: 192.0.2.9
  children:
    web:
      hosts:
        web1:
          ansible_host: 10.0.0.1
          ansible_port: 2200
        web2:
      vars:
        ansible_user: www
    prod:
      children:
        web:
";
    let p = ansible_yaml(inv);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let names: Vec<&str> = p.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, vec!["solo", "web1", "web2"]);
    assert_eq!(p.hosts[0].user.as_deref(), Some("ops"));
    assert_eq!(p.hosts[0].line, 5);
    assert_eq!(p.hosts[1].port, Some(2200));
    assert_eq!(p.hosts[1].user.as_deref(), Some("www"));
    assert_eq!(p.hosts[1].line, 10);
    assert_eq!(p.hosts[2].tags, vec!["prod", "web"]);

    let p = ansible_yaml("all:\n  hosts:\n    a: [1, 2\n");
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    assert!(p.errors[0].line >= 3, "{:?}", p.errors);
    let p = ansible_yaml("all:\n  hosts:\n    good:\n    bad: 7\n");
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    assert_eq!(p.errors[0].line, 4);
    let p = ansible_yaml("all:\n  hosts:\n    h:\n      ansible_port: 0\n");
    assert_eq!(p.errors[0].line, 3, "{:?}", p.errors);
}

#[test]
fn known_hosts_plain_port_hashed_and_markers() {
    let hashed = {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let salt = b"0123456789abcdefghij";
        let mut m = Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
        m.update(b"[10.0.0.5]:2222");
        let b = base64::engine::general_purpose::STANDARD;
        format!(
            "|1|{}|{}",
            b.encode(salt),
            b.encode(m.finalize().into_bytes())
        )
    };
    let text = format!(
        "# comment\nweb1,10.0.0.1 {ED}\n[10.0.0.2]:2200 {ED} c\n{hashed} {ED}\n@cert-authority *.example.com {ED}\nbroken\nh ssh-ed25519 AAAAnotbase64\n"
    );
    let p = known_hosts(&text);
    let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![6, 7], "{:?}", p.errors);
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].line, 5);
    assert_eq!(p.known_hosts.len(), 3);
    let want = fp(ED);
    assert!(want.starts_with("SHA256:"));
    assert!(p.known_hosts.iter().all(|k| k.fingerprint == want));
    let [a, b, c] = [&p.known_hosts[0], &p.known_hosts[1], &p.known_hosts[2]];
    assert!(a.hosts.matches("web1", 22) && a.hosts.matches("10.0.0.1", 22));
    assert!(
        !a.hosts.matches("10.0.0.1", 2222),
        "a plain name is for port 22"
    );
    assert!(b.hosts.matches("10.0.0.2", 2200) && !b.hosts.matches("10.0.0.2", 22));
    assert!(c.hosts.matches("10.0.0.5", 2222));
    assert!(!c.hosts.matches("10.0.0.5", 22) && !c.hosts.matches("10.0.0.6", 2222));
    assert!(key_preference("ssh-ed25519") < key_preference("ssh-rsa"));
}
