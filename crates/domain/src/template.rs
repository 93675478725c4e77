//! Job templates: the saved definition, its typed parameters and their validation.
//!
//! A parameter's value reaches the remote job only as the environment
//! variable `REMORA_PARAM_<NAME>` (see `command::env_assignments`), never by
//! substitution into shell text. Validation here turns the JSON values a
//! caller gives into those strings, or says which parameter is wrong and why.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Longest parameter name (the env var adds the `REMORA_PARAM_` prefix).
pub const MAX_PARAM_NAME: usize = 64;
/// Most parameters per template.
pub const MAX_PARAMS: usize = 64;
/// Longest value of any parameter, in bytes (a `text` value included).
pub const MAX_PARAM_VALUE: usize = 64 * 1024;
/// Longest `pattern` regex source.
pub const MAX_PATTERN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    String,
    Integer,
    Boolean,
    Choice,
    /// Multi-line text.
    Text,
    /// Sealed at rest, never returned, masked as `***` in output.
    Secret,
}

/// One typed parameter of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// `[A-Za-z_][A-Za-z0-9_]*`, unique case-insensitively (the env var is upper-cased).
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Used when the caller gives no value (not allowed for `secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub default: Option<Value>,
    #[serde(default)]
    pub required: bool,
    /// A regex (Rust `regex` syntax) the whole value must match (string, text, secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// integer: the smallest value; string/text/secret: the shortest length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// integer: the largest value; string/text/secret: the longest length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// choice: the allowed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

/// Where a template runs by default: named servers (names or ids) and/or every active
/// server with a tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.tag.is_none()
    }
}

/// One version of a template: what it runs, its parameters and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Shell text run by `/bin/sh -c` (a command template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A script sent on stdin to `shell` (a script template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default)]
    pub params: Vec<ParamSpec>,
    #[serde(default)]
    pub targets: Targets,
    /// Seconds; 0 means no limit.
    #[serde(default)]
    pub timeout: i64,
    /// 1 (lowest) to 10; 5 when omitted.
    #[serde(default = "default_priority")]
    pub priority: i64,
    #[serde(default)]
    pub max_retries: i64,
    /// Fixed environment variables (not parameters; visible in the template).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Run under sudo as `become_user` (default root), as a job's `become` (docs/jobs.md).
    #[serde(default, rename = "become", skip_serializing_if = "std::ops::Not::not")]
    pub sudo: bool,
    /// The user `become` switches to; root when omitted. Needs `become: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub become_user: Option<String>,
}

/// A user name sudo can be asked for: 1–32 of `[A-Za-z0-9_.-]`, not starting with `-`/`.`/a digit.
pub fn valid_user_name(u: &str) -> bool {
    let mut c = u.chars();
    u.len() <= 32
        && matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x == '.' || x == '-' || x.is_ascii_alphanumeric())
}

fn default_priority() -> i64 {
    5
}

impl TemplateDef {
    /// Check the definition as a whole: exactly one of command or script, bounds, params.
    pub fn check(&self) -> Result<(), String> {
        if let Some(u) = &self.become_user {
            if !self.sudo {
                return Err("`become_user` needs `become: true`".into());
            }
            if !valid_user_name(u) {
                return Err(format!("`become_user` `{u}` is not a valid user name"));
            }
        }
        match (&self.command, &self.script) {
            (Some(c), None) if !c.trim().is_empty() => {}
            (None, Some(s)) if !s.trim().is_empty() => {}
            _ => return Err("a template has exactly one of `command` or `script`".into()),
        }
        if self.shell.is_some() && self.script.is_none() {
            return Err("`shell` applies to a script template".into());
        }
        if !(1..=10).contains(&self.priority) {
            return Err(format!(
                "priority {} is not between 1 and 10",
                self.priority
            ));
        }
        if self.timeout < 0 || self.max_retries < 0 {
            return Err("timeout and max_retries are not negative".into());
        }
        for (k, v) in &self.env {
            if !valid_name(k) || k.to_ascii_uppercase().starts_with("REMORA_") {
                return Err(format!(
                    "env `{k}`: a name is [A-Za-z_][A-Za-z0-9_]* and does not start with REMORA_"
                ));
            }
            if v.contains('\0') {
                return Err(format!("env `{k}`: contains a NUL byte"));
            }
        }
        check_specs(&self.params).map_err(|e| e.to_string())
    }
}

/// A resolved parameter value, as the job carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamValue {
    /// The environment variable: `REMORA_PARAM_<NAME>`.
    pub env: String,
    pub value: String,
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter `{0}`: {1}")]
    Invalid(String, String),
    #[error("unknown parameter `{0}` (the template has: {1})")]
    Unknown(String, String),
    #[error("parameter `{0}` is required")]
    Missing(String),
}

/// The environment variable of a parameter.
pub fn env_name(param: &str) -> String {
    format!("REMORA_PARAM_{}", param.to_ascii_uppercase())
}

fn valid_name(n: &str) -> bool {
    let mut cs = n.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && n.len() <= MAX_PARAM_NAME
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_PATTERN {
        return Err(format!("pattern longer than {MAX_PATTERN} bytes"));
    }
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("bad pattern: {e}"))
}

/// Check a template's parameter definitions: names, types, bounds, patterns, defaults.
pub fn check_specs(specs: &[ParamSpec]) -> Result<(), ParamError> {
    if specs.len() > MAX_PARAMS {
        return Err(ParamError::Invalid(
            "*".into(),
            format!("at most {MAX_PARAMS} parameters"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for p in specs {
        let bad = |m: String| ParamError::Invalid(p.name.clone(), m);
        if !valid_name(&p.name) {
            return Err(bad(format!(
                "a name is [A-Za-z_][A-Za-z0-9_]*, at most {MAX_PARAM_NAME} characters"
            )));
        }
        if !seen.insert(p.name.to_ascii_uppercase()) {
            return Err(bad(
                "defined twice (names are compared case-insensitively)".into()
            ));
        }
        if let (Some(lo), Some(hi)) = (p.min, p.max) {
            if lo > hi {
                return Err(bad(format!("min {lo} is greater than max {hi}")));
            }
        }
        match p.kind {
            ParamType::Choice if p.choices.is_empty() => {
                return Err(bad("a choice needs `choices`".into()))
            }
            ParamType::Choice | ParamType::Boolean | ParamType::Integer if p.pattern.is_some() => {
                return Err(bad("`pattern` applies to string, text and secret".into()))
            }
            ParamType::Secret if p.default.is_some() => {
                return Err(bad(
                    "a secret has no default (it would be stored in the template)".into(),
                ))
            }
            _ => {}
        }
        if !matches!(p.kind, ParamType::Choice) && !p.choices.is_empty() {
            return Err(bad("`choices` applies to choice only".into()));
        }
        if let Some(pat) = &p.pattern {
            compile(pat).map_err(bad)?;
        }
        if let Some(d) = &p.default {
            check_value(p, d).map_err(|e| match e {
                ParamError::Invalid(n, m) => ParamError::Invalid(n, format!("default: {m}")),
                other => other,
            })?;
        }
    }
    Ok(())
}

/// One value of parameter `p` as the string the job sees.
fn check_value(p: &ParamSpec, v: &Value) -> Result<String, ParamError> {
    let bad = |m: String| ParamError::Invalid(p.name.clone(), m);
    let s = match (p.kind, v) {
        (ParamType::Integer, Value::Number(n)) => {
            n.as_i64()
                .ok_or_else(|| bad(format!("`{n}` is not an integer")))?;
            n.to_string()
        }
        (ParamType::Integer, Value::String(s)) => {
            s.trim()
                .parse::<i64>()
                .map_err(|_| bad(format!("`{s}` is not an integer")))?;
            s.trim().to_string()
        }
        (ParamType::Boolean, Value::Bool(b)) => b.to_string(),
        (ParamType::Boolean, Value::String(s)) => match s.as_str() {
            "true" | "1" | "yes" => "true".into(),
            "false" | "0" | "no" => "false".into(),
            _ => return Err(bad(format!("`{s}` is not a boolean (true or false)"))),
        },
        (_, Value::String(s)) => s.clone(),
        (ParamType::String | ParamType::Text | ParamType::Choice, Value::Number(n)) => {
            n.to_string()
        }
        (_, other) => {
            return Err(bad(format!(
                "expected a {} value, got {}",
                serde_json::to_string(&p.kind)
                    .unwrap_or_default()
                    .trim_matches('"'),
                match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::Array(_) => "an array",
                    Value::Object(_) => "an object",
                    Value::String(_) => "a string",
                }
            )))
        }
    };
    if s.len() > MAX_PARAM_VALUE {
        return Err(bad(format!("longer than {MAX_PARAM_VALUE} bytes")));
    }
    if s.contains('\0') {
        return Err(bad(
            "contains a NUL byte (an environment variable cannot)".into()
        ));
    }
    if p.kind != ParamType::Text && s.contains('\n') && p.kind != ParamType::Secret {
        return Err(bad("contains a newline (use type text)".into()));
    }
    match p.kind {
        ParamType::Integer => {
            let n: i64 = s.parse().unwrap_or_default();
            if let Some(lo) = p.min.filter(|lo| n < *lo) {
                return Err(bad(format!("{n} is less than the minimum {lo}")));
            }
            if let Some(hi) = p.max.filter(|hi| n > *hi) {
                return Err(bad(format!("{n} is greater than the maximum {hi}")));
            }
        }
        ParamType::Choice => {
            if !p.choices.contains(&s) {
                return Err(bad(format!("`{s}` is not one of {}", p.choices.join(", "))));
            }
        }
        ParamType::String | ParamType::Text | ParamType::Secret => {
            let len = s.chars().count() as i64;
            let shown = |s: &str| {
                if p.kind == ParamType::Secret {
                    "the value".to_string()
                } else {
                    format!("`{s}`")
                }
            };
            if let Some(lo) = p.min.filter(|lo| len < *lo) {
                return Err(bad(format!("shorter than {lo} characters")));
            }
            if let Some(hi) = p.max.filter(|hi| len > *hi) {
                return Err(bad(format!("longer than {hi} characters")));
            }
            if let Some(pat) = &p.pattern {
                if !compile(pat).map_err(bad)?.is_match(&s) {
                    return Err(bad(format!("{} does not match /{pat}/", shown(&s))));
                }
            }
        }
        ParamType::Boolean => {}
    }
    Ok(s)
}

/// Resolve the values a caller gave against the template's parameters:
/// unknown names and missing required ones are errors, defaults fill in
/// the rest; a parameter with no value and no default is left unset.
pub fn resolve_params(
    specs: &[ParamSpec],
    given: &BTreeMap<String, Value>,
) -> Result<Vec<ParamValue>, ParamError> {
    for name in given.keys() {
        if !specs.iter().any(|p| &p.name == name) {
            let names: Vec<&str> = specs.iter().map(|p| p.name.as_str()).collect();
            return Err(ParamError::Unknown(
                name.clone(),
                if names.is_empty() {
                    "no parameters".into()
                } else {
                    names.join(", ")
                },
            ));
        }
    }
    let mut out = Vec::new();
    for p in specs {
        let v = given
            .get(&p.name)
            .filter(|v| !v.is_null())
            .or(p.default.as_ref());
        match v {
            Some(v) => out.push(ParamValue {
                env: env_name(&p.name),
                value: check_value(p, v)?,
                secret: p.kind == ParamType::Secret,
            }),
            None if p.required => return Err(ParamError::Missing(p.name.clone())),
            None => {}
        }
    }
    Ok(out)
}

/// Parse CLI `-p key=value` pairs into the JSON map the API takes (values as strings;
/// the server types them).
pub fn parse_kv(pairs: &[String]) -> Result<BTreeMap<String, Value>, String> {
    let mut m = BTreeMap::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("`{p}`: expected key=value"))?;
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> ParamSpec {
        serde_json::from_value(v).unwrap()
    }

    fn given(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn every_type_validates_and_converts() {
        let specs = vec![
            spec(json!({"name": "count", "type": "integer", "min": 1, "max": 10, "default": 3})),
            spec(json!({"name": "dry_run", "type": "boolean", "default": false})),
            spec(
                json!({"name": "env", "type": "choice", "choices": ["prod", "staging"], "required": true}),
            ),
            spec(json!({"name": "tag", "type": "string", "pattern": "v[0-9]+", "max": 8})),
            spec(json!({"name": "notes", "type": "text"})),
            spec(json!({"name": "pw", "type": "secret", "min": 4})),
        ];
        check_specs(&specs).unwrap();
        let got = resolve_params(
            &specs,
            &given(json!({"env": "prod", "tag": "v12", "notes": "a\nb", "pw": "hunter2", "count": "7"})),
        )
        .unwrap();
        let pairs: Vec<(&str, &str, bool)> = got
            .iter()
            .map(|p| (p.env.as_str(), p.value.as_str(), p.secret))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("REMORA_PARAM_COUNT", "7", false),
                ("REMORA_PARAM_DRY_RUN", "false", false),
                ("REMORA_PARAM_ENV", "prod", false),
                ("REMORA_PARAM_TAG", "v12", false),
                ("REMORA_PARAM_NOTES", "a\nb", false),
                ("REMORA_PARAM_PW", "hunter2", true),
            ]
        );

        let err = |g: Value| resolve_params(&specs, &given(g)).unwrap_err().to_string();
        assert_eq!(err(json!({})), "parameter `env` is required");
        assert!(err(json!({"env": "dev"})).contains("`dev` is not one of prod, staging"));
        assert!(err(json!({"env": "prod", "count": 11})).contains("greater than the maximum 10"));
        assert!(err(json!({"env": "prod", "count": 0})).contains("less than the minimum 1"));
        assert!(err(json!({"env": "prod", "count": "x"})).contains("not an integer"));
        assert!(err(json!({"env": "prod", "count": 1.5})).contains("not an integer"));
        assert!(err(json!({"env": "prod", "dry_run": "maybe"})).contains("not a boolean"));
        assert!(err(json!({"env": "prod", "tag": "12"})).contains("does not match /v[0-9]+/"));
        assert!(err(json!({"env": "prod", "tag": "v123456789"})).contains("longer than 8"));
        assert!(err(json!({"env": "prod", "tag": "v1\nx"})).contains("newline"));
        assert!(err(json!({"env": "prod", "notes": "a\0b"})).contains("NUL"));
        assert!(err(json!({"env": "prod", "nope": 1})).starts_with("unknown parameter `nope`"));
        assert!(err(json!({"env": "prod", "notes": ["x"]})).contains("got an array"));
        let secret = err(json!({"env": "prod", "pw": "abc"}));
        assert!(secret.contains("shorter than 4"), "{secret}");
        assert!(
            !secret.contains("abc"),
            "a secret's value is never in an error"
        );
    }

    #[test]
    fn become_is_part_of_a_definition() {
        let def = |v: Value| serde_json::from_value::<TemplateDef>(v).unwrap();
        let d = def(json!({"command": "id -u", "become": true, "become_user": "deploy"}));
        assert!(d.sudo && d.check().is_ok());
        assert_eq!(d.become_user.as_deref(), Some("deploy"));
        let back = serde_json::to_value(&d).unwrap();
        assert_eq!(
            (&back["become"], &back["become_user"]),
            (&json!(true), &json!("deploy"))
        );
        // Without become, nothing is written (older definitions read and write the same).
        let plain = serde_json::to_value(def(json!({"command": "id -u"}))).unwrap();
        assert!(plain.get("become").is_none() && plain.get("become_user").is_none());
        let e = def(json!({"command": "x", "become_user": "deploy"}))
            .check()
            .unwrap_err();
        assert!(e.contains("needs `become: true`"), "{e}");
        let e = def(json!({"command": "x", "become": true, "become_user": "-rf"}))
            .check()
            .unwrap_err();
        assert!(e.contains("not a valid user name"), "{e}");
    }

    #[test]
    fn definitions_are_checked() {
        let bad = |v: Value| check_specs(&[spec(v)]).unwrap_err().to_string();
        assert!(bad(json!({"name": "9x", "type": "string"})).contains("[A-Za-z_]"));
        assert!(bad(json!({"name": "a-b", "type": "string"})).contains("[A-Za-z_]"));
        assert!(bad(json!({"name": "c", "type": "choice"})).contains("needs `choices`"));
        assert!(bad(json!({"name": "s", "type": "secret", "default": "x"})).contains("no default"));
        assert!(bad(json!({"name": "p", "type": "string", "pattern": "("})).contains("bad pattern"));
        assert!(
            bad(json!({"name": "i", "type": "integer", "min": 5, "max": 1}))
                .contains("greater than max")
        );
        assert!(
            bad(json!({"name": "i", "type": "integer", "default": 9, "max": 1}))
                .contains("default:")
        );
        assert!(bad(json!({"name": "i", "type": "integer", "pattern": "x"})).contains("`pattern`"));
        let dup = check_specs(&[
            spec(json!({"name": "a", "type": "string"})),
            spec(json!({"name": "A", "type": "string"})),
        ]);
        assert!(dup.unwrap_err().to_string().contains("defined twice"));
        assert!(
            serde_json::from_value::<ParamSpec>(json!({"name": "x", "type": "float"})).is_err()
        );
    }

    #[test]
    fn hostile_values_are_kept_verbatim() {
        let specs = vec![spec(json!({"name": "v", "type": "string"}))];
        for v in ["$(touch /tmp/x)", "'; rm -rf ~", "`id`", "a\"b\\c"] {
            let got = resolve_params(&specs, &given(json!({ "v": v }))).unwrap();
            assert_eq!(got[0].value, v);
        }
    }

    #[test]
    fn cli_pairs() {
        let m = parse_kv(&["a=1".into(), "b=x=y".into()]).unwrap();
        assert_eq!(m["b"], json!("x=y"));
        assert!(parse_kv(&["nokey".into()]).is_err());
    }
}
