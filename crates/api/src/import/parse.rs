//! Inventory file formats (CSV, OpenSSH client config, Ansible INI and YAML, `known_hosts`) parsed
//! into host rows or host-key entries, every problem reported with its line number.

use remora_ssh::trust::{parse_public_key, wildcard_match};
use russh::keys::HashAlg;
use std::collections::{BTreeMap, BTreeSet};

/// One host an inventory file describes, before defaults and validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostRow {
    /// Where the host is defined (1-based).
    pub line: usize,
    /// The server name (the `Host` alias, the Ansible inventory name, the CSV `name`).
    pub name: String,
    pub hostname: Option<String>,
    pub port: Option<i64>,
    pub user: Option<String>,
    pub tags: Vec<String>,
    /// `ProxyJump` as written: server names or `[user@]host[:port]`, comma-separated, first hop first.
    pub jump: Option<String>,
    pub identity_files: Vec<String>,
    pub certificate_files: Vec<String>,
    pub max_concurrency: Option<i64>,
    pub is_active: Option<bool>,
    /// Other names this host goes by in the file (more patterns of one `Host` line).
    pub aliases: Vec<String>,
}

/// Which hosts a `known_hosts` line is for.
#[derive(Debug, Clone, PartialEq)]
pub enum HostPatterns {
    /// Comma-separated patterns (`host`, `[host]:port`, wildcards, `!negated`).
    Plain(Vec<String>),
    /// `|1|salt|hash`: HMAC-SHA1 of the host (`host` or `[host]:port`) keyed by the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

/// One usable `known_hosts` line.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownHost {
    pub line: usize,
    pub hosts: HostPatterns,
    pub key_type: String,
    /// `SHA256:…`, as pins are stored.
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct LineError {
    /// 1-based line of the input (0 when the problem is not on one line).
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> LineError {
    LineError {
        line,
        message: message.into(),
    }
}

/// What a file held: rows (or known_hosts entries), notes that are not errors, and errors.
#[derive(Debug, Default)]
pub struct Parsed {
    pub hosts: Vec<HostRow>,
    pub known_hosts: Vec<KnownHost>,
    pub warnings: Vec<LineError>,
    pub errors: Vec<LineError>,
}

fn parse_port(line: usize, v: &str, errors: &mut Vec<LineError>) -> Option<i64> {
    match v.trim().parse::<i64>() {
        Ok(p) if (1..=65535).contains(&p) => Some(p),
        _ => {
            errors.push(err(
                line,
                format!("port `{v}` is not a number between 1 and 65535"),
            ));
            None
        }
    }
}

/// Splits a tag list written `a;b c` (CSV) or `a,b`.
fn split_tags(v: &str) -> Vec<String> {
    v.split(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------- CSV

/// The CSV columns, in any order (a header row is required; `name` or `hostname` is).
pub const CSV_COLUMNS: &[&str] = &[
    "name",
    "hostname",
    "port",
    "username",
    "tags",
    "jump",
    "max_concurrency",
    "is_active",
];

pub fn csv(content: &str) -> Parsed {
    let mut out = Parsed::default();
    // `#` comment lines become empty lines (skipped, and the line numbers stay those of the file).
    let uncommented: String = content
        .lines()
        .map(|l| {
            if l.trim_start().starts_with('#') {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let content = uncommented.as_str();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(uncommented.as_bytes());
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|s| s.to_ascii_lowercase()).collect(),
        Err(e) => {
            out.errors
                .push(err(1, format!("unreadable header row: {e}")));
            return out;
        }
    };
    // The line from the byte offset: the csv crate's own line count skips `#` comment lines.
    let line_at = |byte: u64| {
        // A record's position is where the reader resumed: skip the empty lines before it.
        let mut b = (byte as usize).min(content.len());
        while b < content.len() && matches!(content.as_bytes()[b], b'\n' | b'\r') {
            b += 1;
        }
        content.as_bytes()[..b]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1
    };
    let header_line = content
        .lines()
        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|i| i + 1)
        .unwrap_or(1);
    let mut col = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        let h = match h.as_str() {
            "user" => "username",
            "host" | "address" => "hostname",
            "jump_server" | "jump_server_id" | "proxyjump" => "jump",
            o => o,
        };
        if !CSV_COLUMNS.contains(&h) {
            out.errors.push(err(
                header_line,
                format!(
                    "unknown column `{h}`; the columns are {}",
                    CSV_COLUMNS.join(", ")
                ),
            ));
        } else if col.insert(h.to_string(), i).is_some() {
            out.errors
                .push(err(header_line, format!("column `{h}` appears twice")));
        }
    }
    if !col.contains_key("name") && !col.contains_key("hostname") {
        out.errors.push(err(
            header_line,
            "the header row needs a `name` or a `hostname` column",
        ));
    }
    if !out.errors.is_empty() {
        return out;
    }
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_at(p.byte())).unwrap_or(0);
                out.errors.push(err(line, format!("bad CSV row: {e}")));
                continue;
            }
        };
        let line = rec.position().map(|p| line_at(p.byte())).unwrap_or(0);
        let get = |k: &str| {
            col.get(k)
                .and_then(|&i| rec.get(i))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let hostname = get("hostname");
        let Some(name) = get("name").or_else(|| hostname.clone()) else {
            out.errors
                .push(err(line, "a row needs a `name` or a `hostname`"));
            continue;
        };
        let mut row = HostRow {
            line,
            name,
            hostname,
            user: get("username"),
            tags: get("tags").map(|t| split_tags(&t)).unwrap_or_default(),
            jump: get("jump"),
            ..Default::default()
        };
        if let Some(p) = get("port") {
            row.port = parse_port(line, &p, &mut out.errors);
        }
        if let Some(m) = get("max_concurrency") {
            match m.parse::<i64>() {
                Ok(n) => row.max_concurrency = Some(n),
                Err(_) => out
                    .errors
                    .push(err(line, format!("max_concurrency `{m}` is not a number"))),
            }
        }
        if let Some(a) = get("is_active") {
            match a.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => row.is_active = Some(true),
                "false" | "no" | "0" => row.is_active = Some(false),
                _ => out.errors.push(err(
                    line,
                    format!("is_active `{a}` is not true/false/yes/no/1/0"),
                )),
            }
        }
        out.hosts.push(row);
    }
    out
}

// ---------------------------------------------------------------- OpenSSH client config

/// Splits `Keyword value…` / `Keyword=value`, honouring double quotes.
fn ssh_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut any = false;
    let mut first = true;
    for c in line.chars() {
        match c {
            '"' => {
                in_q = !in_q;
                any = true;
            }
            c if !in_q && (c.is_whitespace() || (c == '=' && first)) => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                    first = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if in_q {
        return Err("unterminated quote".into());
    }
    if any {
        words.push(cur);
    }
    Ok(words)
}

struct Block {
    line: usize,
    patterns: Vec<String>,
    options: Vec<(usize, String, String)>,
}

/// OpenSSH `Host` matching: some positive pattern matches and no negated one does.
fn host_matches(patterns: &[String], alias: &str) -> bool {
    let m = |p: &str| {
        if p.contains(['*', '?']) {
            wildcard_match(p, alias)
        } else {
            p.eq_ignore_ascii_case(alias)
        }
    };
    let mut matched = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if m(neg) => return false,
            Some(_) => {}
            None => matched |= m(p),
        }
    }
    matched
}

fn is_wildcard(p: &str) -> bool {
    p.contains('*') || p.contains('?') || p.starts_with('!')
}

/// An OpenSSH client config: each concrete `Host` alias is a host; options come from every block
/// that matches it, the first value of each option winning, as `ssh` does (so `Host *` blocks
/// before a host override it, and after it fill in what it leaves out).
pub fn ssh_config(content: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut blocks = vec![Block {
        line: 0,
        patterns: vec!["*".into()],
        options: vec![],
    }];
    let mut skipping_match = false;
    for (i, raw) in content.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let words = match ssh_words(t) {
            Ok(w) => w,
            Err(e) => {
                out.errors.push(err(line, e));
                continue;
            }
        };
        let Some((kw, args)) = words.split_first() else {
            continue;
        };
        let kw = kw.to_ascii_lowercase();
        match kw.as_str() {
            "host" => {
                skipping_match = false;
                if args.is_empty() {
                    out.errors.push(err(line, "`Host` needs at least one pattern"));
                    continue;
                }
                blocks.push(Block {
                    line,
                    patterns: args.to_vec(),
                    options: vec![],
                });
            }
            "match" => {
                skipping_match = true;
                out.warnings.push(err(
                    line,
                    "`Match` block skipped (only `Host` blocks are imported)",
                ));
            }
            "include" => out.warnings.push(err(
                line,
                "`Include` not followed (the server cannot read your files): import that file separately",
            )),
            _ if skipping_match => {}
            _ => {
                if args.is_empty() {
                    out.errors.push(err(line, format!("`{}` has no value", words[0])));
                    continue;
                }
                let value = args.join(" ");
                if kw == "proxycommand" && !value.eq_ignore_ascii_case("none") {
                    out.warnings.push(err(
                        line,
                        "`ProxyCommand` is not supported: use `ProxyJump`",
                    ));
                }
                if kw == "port" {
                    let mut e = vec![];
                    parse_port(line, &value, &mut e);
                    out.errors.extend(e);
                }
                if let Some(b) = blocks.last_mut() {
                    b.options.push((line, kw, value));
                }
            }
        }
    }
    let mut named: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut wild = vec![];
    for (i, b) in blocks.iter().enumerate() {
        if b.patterns.iter().any(|p| is_wildcard(p)) {
            wild.push(i);
        }
        for p in b.patterns.iter().filter(|p| !is_wildcard(p)) {
            named.entry(p.to_ascii_lowercase()).or_default().push(i);
        }
    }
    let mut seen = BTreeSet::new();
    for b in blocks.iter().skip(1) {
        let concrete: Vec<&String> = b.patterns.iter().filter(|p| !is_wildcard(p)).collect();
        let Some(alias) = concrete.first() else {
            continue;
        };
        if !seen.insert(alias.to_string()) {
            continue; // a later block for the same host only adds options, already merged below
        }
        let line = b.line;
        let mut row = HostRow {
            line,
            name: alias.to_string(),
            aliases: concrete[1..].iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let mut got = BTreeSet::new();
        // Only the blocks that name this alias or hold a wildcard can match it, in file order.
        let mut cand: Vec<usize> = named
            .get(&alias.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default();
        cand.extend(wild.iter().copied());
        cand.sort_unstable();
        cand.dedup();
        for blk in cand.iter().map(|&i| &blocks[i]) {
            if !host_matches(&blk.patterns, alias) {
                continue;
            }
            for (_, k, v) in &blk.options {
                let multi = k == "identityfile" || k == "certificatefile";
                if !multi && !got.insert(k.clone()) {
                    continue;
                }
                match k.as_str() {
                    "hostname" => row.hostname = Some(v.replace("%h", alias).replace("%%", "%")),
                    "user" => row.user = Some(v.clone()),
                    "port" => row.port = v.parse().ok(),
                    "proxyjump" => row.jump = (!v.eq_ignore_ascii_case("none")).then(|| v.clone()),
                    "identityfile" => {
                        if !v.eq_ignore_ascii_case("none") {
                            row.identity_files.push(v.clone())
                        }
                    }
                    "certificatefile" => row.certificate_files.push(v.clone()),
                    _ => {}
                }
            }
        }
        out.hosts.push(row);
    }
    out
}

// ---------------------------------------------------------------- Ansible

/// `web[01:03].x` → `web01.x web02.x web03.x` (numeric with padding, or `[a:c]`).
fn expand_range(line: usize, pat: &str) -> Result<Vec<String>, LineError> {
    let (Some(open), Some(close)) = (pat.find('['), pat.find(']')) else {
        return Ok(vec![pat.to_string()]);
    };
    if close < open {
        return Err(err(line, format!("bad host range in `{pat}`")));
    }
    let (pre, inner, post) = (&pat[..open], &pat[open + 1..close], &pat[close + 1..]);
    let mut parts = inner.split(':');
    let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let step: usize = match parts.next() {
        Some(s) => s
            .parse()
            .map_err(|_| err(line, format!("bad range step in `{pat}`")))?,
        None => 1,
    };
    let mut out = vec![];
    let tails = expand_range(line, post)?;
    let mids: Vec<String> = if let (Ok(x), Ok(y)) = (a.parse::<u64>(), b.parse::<u64>()) {
        if x > y || y - x > 100_000 || step == 0 {
            return Err(err(line, format!("bad host range in `{pat}`")));
        }
        let width = if a.starts_with('0') { a.len() } else { 0 };
        (x..=y)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else if a.len() == 1 && b.len() == 1 && a <= b && step > 0 {
        (a.as_bytes()[0]..=b.as_bytes()[0])
            .step_by(step)
            .map(|c| (c as char).to_string())
            .collect()
    } else {
        return Err(err(line, format!("bad host range in `{pat}`")));
    };
    for m in mids {
        for t in &tails {
            out.push(format!("{pre}{m}{t}"));
        }
    }
    Ok(out)
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

/// `key=value` pairs of an INI host line (values may be quoted and hold spaces).
fn ini_vars(s: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut rest = s.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().to_string();
        let after = &rest[eq + 1..];
        let (val, next) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => match after[1..].find(q) {
                Some(end) => (after[1..end + 1].to_string(), &after[end + 2..]),
                None => (after[1..].to_string(), ""),
            },
            _ => match after.find(char::is_whitespace) {
                Some(sp) => (after[..sp].to_string(), &after[sp..]),
                None => (after.to_string(), ""),
            },
        };
        out.push((key, val));
        rest = next.trim_start();
    }
    out
}

#[derive(Default)]
struct Inventory {
    /// host → (first line, host vars)
    hosts: BTreeMap<String, (usize, BTreeMap<String, String>)>,
    order: Vec<String>,
    /// group → its hosts
    members: BTreeMap<String, BTreeSet<String>>,
    children: BTreeMap<String, BTreeSet<String>>,
    group_vars: BTreeMap<String, BTreeMap<String, String>>,
}

impl Inventory {
    fn add_host(&mut self, name: &str, line: usize, group: &str, vars: Vec<(String, String)>) {
        let e = self.hosts.entry(name.to_string()).or_insert_with(|| {
            self.order.push(name.to_string());
            (line, BTreeMap::new())
        });
        for (k, v) in vars {
            e.1.insert(k, v);
        }
        self.members
            .entry(group.to_string())
            .or_default()
            .insert(name.to_string());
    }

    /// Groups of `host` with their depth below `all`, nearest first after sorting.
    fn groups_of(&self, host: &str) -> Vec<(String, usize)> {
        let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (g, kids) in &self.children {
            for k in kids {
                parents.entry(k.as_str()).or_default().push(g.as_str());
            }
        }
        let mut out: BTreeMap<String, usize> = BTreeMap::new();
        let mut todo: Vec<(&str, usize)> = self
            .members
            .iter()
            .filter(|(_, m)| m.contains(host))
            .map(|(g, _)| (g.as_str(), 0))
            .collect();
        while let Some((g, d)) = todo.pop() {
            if out.contains_key(g) || out.len() > 10_000 {
                continue;
            }
            out.insert(g.to_string(), d);
            for p in parents.get(g).into_iter().flatten() {
                todo.push((p, d + 1));
            }
        }
        let mut v: Vec<(String, usize)> = out.into_iter().collect();
        v.sort_by_key(|(_, d)| *d);
        v
    }

    fn rows(self, out: &mut Parsed) {
        for h in &self.order {
            let (line, hv) = &self.hosts[h];
            let groups = self.groups_of(h);
            // Host vars win, then the nearest group's, then `all`.
            let lookup = |keys: &[&str]| -> Option<String> {
                for k in keys {
                    if let Some(v) = hv.get(*k) {
                        return Some(v.clone());
                    }
                }
                for (g, _) in groups
                    .iter()
                    .chain([("all".to_string(), usize::MAX)].iter())
                {
                    for k in keys {
                        if let Some(v) = self.group_vars.get(g).and_then(|m| m.get(*k)) {
                            return Some(v.clone());
                        }
                    }
                }
                None
            };
            let mut row = HostRow {
                line: *line,
                name: h.clone(),
                hostname: lookup(&["ansible_host", "ansible_ssh_host"]),
                user: lookup(&["ansible_user", "ansible_ssh_user"]),
                tags: groups
                    .iter()
                    .map(|(g, _)| g.clone())
                    .filter(|g| g != "all" && g != "ungrouped")
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                ..Default::default()
            };
            if let Some(p) = lookup(&["ansible_port", "ansible_ssh_port"]) {
                row.port = parse_port(*line, &p, &mut out.errors);
            }
            if let Some(k) = lookup(&["ansible_ssh_private_key_file", "ansible_private_key_file"]) {
                row.identity_files.push(k);
            }
            if let Some(args) = lookup(&["ansible_ssh_common_args", "ansible_ssh_extra_args"]) {
                let words: Vec<&str> = args.split_whitespace().collect();
                for (i, w) in words.iter().enumerate() {
                    let w = w.trim_matches(|c| c == '"' || c == '\'');
                    if let Some(j) = w.strip_prefix("ProxyJump=") {
                        row.jump = Some(j.to_string());
                    } else if w == "-J" {
                        row.jump = words.get(i + 1).map(|s| s.to_string());
                    }
                }
            }
            out.hosts.push(row);
        }
    }
}

/// An Ansible INI inventory: `[group]` host lines with `key=value` vars, `[group:children]`,
/// `[group:vars]`; groups become tags; `ansible_host`, `ansible_port`, `ansible_user` are read.
pub fn ansible_ini(content: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut inv = Inventory::default();
    enum Sec {
        Hosts(String),
        Children(String),
        Vars(String),
    }
    let mut sec = Sec::Hosts("ungrouped".into());
    for (i, raw) in content.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') {
            let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
                out.errors
                    .push(err(line, format!("bad section header `{t}`")));
                continue;
            };
            sec = match inner.split_once(':') {
                None => Sec::Hosts(inner.to_string()),
                Some((g, "children")) => Sec::Children(g.to_string()),
                Some((g, "vars")) => Sec::Vars(g.to_string()),
                Some((_, other)) => {
                    out.errors.push(err(
                        line,
                        format!("unknown section kind `:{other}` (use :children or :vars)"),
                    ));
                    continue;
                }
            };
            if let Sec::Hosts(g) = &sec {
                inv.members.entry(g.clone()).or_default();
            }
            continue;
        }
        match &sec {
            Sec::Hosts(g) => {
                let (pat, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
                let vars = ini_vars(rest);
                if !rest.trim().is_empty() && vars.is_empty() {
                    out.errors.push(err(
                        line,
                        format!("host vars must be key=value, not `{}`", rest.trim()),
                    ));
                    continue;
                }
                match expand_range(line, pat) {
                    Ok(names) => {
                        for n in names {
                            inv.add_host(&n, line, g, vars.clone());
                        }
                    }
                    Err(e) => out.errors.push(e),
                }
            }
            Sec::Children(g) => {
                inv.children
                    .entry(g.clone())
                    .or_default()
                    .insert(t.to_string());
            }
            Sec::Vars(g) => match t.split_once('=') {
                Some((k, v)) => {
                    inv.group_vars
                        .entry(g.clone())
                        .or_default()
                        .insert(k.trim().to_string(), unquote(v));
                }
                None => out.errors.push(err(
                    line,
                    format!("group vars must be key=value, not `{t}`"),
                )),
            },
        }
    }
    inv.rows(&mut out);
    out
}

/// The first line of each mapping key (`key:`, quoted or not), to give YAML rows a line number.
struct YamlLines(BTreeMap<String, usize>);

impl YamlLines {
    fn new(content: &str) -> YamlLines {
        let mut m = BTreeMap::new();
        for (i, l) in content.lines().enumerate() {
            let t = l.trim_start().trim_start_matches("- ");
            if let Some((k, _)) = t.split_once(':') {
                let k = k.trim().trim_matches(|c| c == '"' || c == '\'');
                m.entry(k.to_string()).or_insert(i + 1);
            }
        }
        YamlLines(m)
    }
}

fn yaml_line_of(lines: &YamlLines, key: &str) -> usize {
    lines.0.get(key).copied().unwrap_or(0)
}

fn yaml_scalar(y: &yaml_rust2::Yaml) -> Option<String> {
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An Ansible YAML inventory (`all: {hosts, vars, children: {group: {...}}}`).
pub fn ansible_yaml(content: &str) -> Parsed {
    use yaml_rust2::{Yaml, YamlLoader};
    let mut out = Parsed::default();
    let docs = match YamlLoader::load_from_str(content) {
        Ok(d) => d,
        Err(e) => {
            out.errors.push(err(
                e.marker().line(),
                format!("not valid YAML: {}", e.info()),
            ));
            return out;
        }
    };
    let Some(Yaml::Hash(top)) = docs.first() else {
        out.errors.push(err(
            1,
            "an Ansible YAML inventory is a mapping of groups (e.g. `all:`)",
        ));
        return out;
    };
    let mut inv = Inventory::default();
    fn vars_of(y: &Yaml) -> Vec<(String, String)> {
        match y {
            Yaml::Hash(h) => h
                .iter()
                .filter_map(|(k, v)| Some((yaml_scalar(k)?, yaml_scalar(v)?)))
                .collect(),
            _ => vec![],
        }
    }
    fn group(
        content: &YamlLines,
        name: &str,
        y: &Yaml,
        inv: &mut Inventory,
        out: &mut Parsed,
        depth: usize,
    ) {
        if depth > 64 {
            out.errors.push(err(0, "groups nested deeper than 64"));
            return;
        }
        inv.members.entry(name.to_string()).or_default();
        let h = match y {
            Yaml::Hash(h) => h,
            Yaml::Null => return,
            _ => {
                out.errors.push(err(
                    yaml_line_of(content, name),
                    format!("group `{name}` must be a mapping with hosts, vars or children"),
                ));
                return;
            }
        };
        for (k, v) in h {
            let key = yaml_scalar(k).unwrap_or_default();
            match key.as_str() {
                "hosts" => match v {
                    Yaml::Hash(hosts) => {
                        for (hk, hv) in hosts {
                            let Some(hn) = yaml_scalar(hk) else { continue };
                            let line = yaml_line_of(content, &hn);
                            if !matches!(hv, Yaml::Hash(_) | Yaml::Null) {
                                out.errors.push(err(
                                    line,
                                    format!("host `{hn}` must map to its vars (or nothing)"),
                                ));
                                continue;
                            }
                            match expand_range(line, &hn) {
                                Ok(names) => {
                                    for n in names {
                                        inv.add_host(&n, line, name, vars_of(hv));
                                    }
                                }
                                Err(e) => out.errors.push(e),
                            }
                        }
                    }
                    Yaml::Null => {}
                    _ => out.errors.push(err(
                        yaml_line_of(content, "hosts"),
                        format!("`hosts` of group `{name}` must be a mapping"),
                    )),
                },
                "vars" => {
                    let gv = inv.group_vars.entry(name.to_string()).or_default();
                    for (k, v) in vars_of(v) {
                        gv.insert(k, v);
                    }
                }
                "children" => match v {
                    Yaml::Hash(kids) => {
                        for (ck, cv) in kids {
                            let Some(cn) = yaml_scalar(ck) else { continue };
                            inv.children
                                .entry(name.to_string())
                                .or_default()
                                .insert(cn.clone());
                            group(content, &cn, cv, inv, out, depth + 1);
                        }
                    }
                    Yaml::Null => {}
                    _ => out.errors.push(err(
                        yaml_line_of(content, "children"),
                        format!("`children` of group `{name}` must be a mapping"),
                    )),
                },
                other => out.errors.push(err(
                    yaml_line_of(content, other),
                    format!("group `{name}` has `{other}`; only hosts, vars and children are read"),
                )),
            }
        }
    }
    let lines = YamlLines::new(content);
    for (k, v) in top {
        let Some(g) = yaml_scalar(k) else { continue };
        group(&lines, &g, v, &mut inv, &mut out, 0);
    }
    inv.rows(&mut out);
    out
}

// ---------------------------------------------------------------- known_hosts

/// A `known_hosts` file: plain (`host,[host]:port,…`) and hashed (`|1|salt|hash`) lines;
/// `@cert-authority` and `@revoked` lines are skipped with a note.
pub fn known_hosts(content: &str) -> Parsed {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Parsed::default();
    for (i, raw) in content.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with('@') {
            let marker = t.split_whitespace().next().unwrap_or("");
            out.warnings.push(err(
                line,
                format!("`{marker}` line skipped (trusted CAs are managed separately)"),
            ));
            continue;
        }
        let mut parts = t.split_whitespace();
        let (Some(hosts), Some(kt), Some(blob)) = (parts.next(), parts.next(), parts.next()) else {
            out.errors
                .push(err(line, "expected `hosts key-type base64-key [comment]`"));
            continue;
        };
        let key = match parse_public_key(&format!("{kt} {blob}")) {
            Ok(k) => k,
            Err(e) => {
                out.errors.push(err(line, e));
                continue;
            }
        };
        let hosts = if let Some(h) = hosts.strip_prefix("|1|") {
            let Some((salt, hash)) = h.split_once('|') else {
                out.errors
                    .push(err(line, "hashed host must be `|1|salt|hash`"));
                continue;
            };
            match (b64.decode(salt), b64.decode(hash)) {
                (Ok(salt), Ok(hash)) if hash.len() == 20 => HostPatterns::Hashed { salt, hash },
                _ => {
                    out.errors
                        .push(err(line, "hashed host has a bad salt or hash (base64)"));
                    continue;
                }
            }
        } else {
            HostPatterns::Plain(hosts.split(',').map(str::to_string).collect())
        };
        out.known_hosts.push(KnownHost {
            line,
            hosts,
            key_type: kt.to_string(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        });
    }
    out
}

/// How `ssh` names a host in `known_hosts`: `host` on port 22, else `[host]:port`.
pub fn known_hosts_name(host: &str, port: i64) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

impl HostPatterns {
    /// Whether this line is for `host` on `port`.
    pub fn matches(&self, host: &str, port: i64) -> bool {
        let name = known_hosts_name(host, port);
        match self {
            HostPatterns::Plain(pats) => host_matches(pats, &name),
            HostPatterns::Hashed { salt, hash } => {
                use hmac::{Hmac, Mac};
                let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
        }
    }
}

/// The order in which the SSH client asks for host key types: of several keys for one host the
/// server presents the first of these it has, so that is the one to pin.
pub fn key_preference(key_type: &str) -> usize {
    match key_type {
        "ssh-ed25519" => 0,
        "ecdsa-sha2-nistp256" => 1,
        "ecdsa-sha2-nistp384" => 2,
        "ecdsa-sha2-nistp521" => 3,
        "ssh-rsa" | "rsa-sha2-512" | "rsa-sha2-256" => 4,
        _ => 5,
    }
}
