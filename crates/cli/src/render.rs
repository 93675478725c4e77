//! The one renderer: every command hands its API reply and a human view to
//! [`emit`], which prints the reply as JSON (`-o json`) or the view (tables,
//! one-line confirmations; colours only on a terminal, `NO_COLOR` respected).

use clap::ValueEnum;
use serde_json::Value;
use std::io::{IsTerminal, Write};

/// `--output`: a table (or a sentence) for people, JSON for scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// What a command shows a person: `stdout` and `stderr`, written as they are
/// (a table ends with its own newline, a job's output is written byte for byte).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Human {
    pub stdout: String,
    pub stderr: String,
}

impl Human {
    /// One line on stdout.
    pub fn line(s: impl std::fmt::Display) -> Human {
        Human {
            stdout: format!("{s}\n"),
            stderr: String::new(),
        }
    }
    /// A table on stdout.
    pub fn table(t: comfy_table::Table) -> Human {
        Human::line(t)
    }
    /// Adds a line to stderr (a footer, a hint).
    pub fn note(mut self, s: impl std::fmt::Display) -> Human {
        self.stderr.push_str(&format!("{s}\n"));
        self
    }
}

/// A typed reply's human form; the JSON form is always the API's reply as it came.
pub trait View {
    fn human(&self) -> Human;
}

impl View for Human {
    fn human(&self) -> Human {
        Human {
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        }
    }
}

/// The text `out` asks for: the pretty JSON of `json`, or `view`'s human form.
/// `-o json` prints what the API answered (every field, as sent), so scripts
/// see the API's contract, not the CLI's subset of it.
pub fn render(out: Output, json: &Value, view: &dyn View) -> Human {
    match out {
        Output::Json => Human::line(serde_json::to_string_pretty(json).unwrap_or_default()),
        Output::Table => view.human(),
    }
}

/// Print what [`render`] gives.
pub fn emit(out: Output, json: &Value, view: &dyn View) {
    let h = render(out, json, view);
    let _ = std::io::stdout().lock().write_all(h.stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(h.stderr.as_bytes());
}

pub fn color_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A table with the house style.
pub fn table(headers: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY)
        .set_header(headers.to_vec());
    t
}

/// A status word, coloured on a terminal.
pub fn paint_status(s: &str) -> String {
    if !color_enabled() {
        return s.to_string();
    }
    let code = match s {
        "completed" | "reachable" | "true" => "32",
        "failed" | "timed_out" | "unreachable" | "auth_failed" | "host_key_mismatch"
        | "timeout" | "false" => "31",
        "running" => "36",
        "canceled" => "33",
        "queued" => "90",
        _ => return s.to_string(),
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// An optional value, `-` when absent.
pub fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), T::to_string)
}

/// An optional time as the API writes it (RFC 3339), `-` when absent.
pub fn opt_time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), remora_domain::time::ms_to_rfc3339)
}

/// "12s ago", "5m ago", "3h ago", else the date.
pub fn ago(ms: i64) -> String {
    ago_at(ms, remora_domain::time::now_ms())
}

fn ago_at(ms: i64, now: i64) -> String {
    let d = (now - ms).max(0) / 1000;
    match d {
        0..=59 => format!("{d}s ago"),
        60..=3599 => format!("{}m ago", d / 60),
        3600..=86_399 => format!("{}h ago", d / 3600),
        _ => remora_domain::time::ms_to_rfc3339(ms)
            .chars()
            .take(10)
            .collect(),
    }
}

/// How long a job ran (or has been running): `-` before it started.
pub fn duration(started: Option<i64>, finished: Option<i64>) -> String {
    duration_at(started, finished, remora_domain::time::now_ms())
}

fn duration_at(started: Option<i64>, finished: Option<i64>, now: i64) -> String {
    let Some(st) = started else {
        return "-".into();
    };
    let ms = (finished.unwrap_or(now) - st).max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// Cut to `max` characters, the last one an ellipsis.
pub fn clip(s: String, max: usize) -> String {
    if s.chars().count() > max {
        s.chars().take(max - 1).collect::<String>() + "…"
    } else {
        s
    }
}

/// A `FIELD VALUE` table of the named fields of `v`'s wire form, in that
/// order: strings as they are, null as `-`, the rest as JSON.
pub fn fields(v: &impl serde::Serialize, keys: &[&str]) -> comfy_table::Table {
    let wire = serde_json::to_value(v).unwrap_or(Value::Null);
    let mut t = table(&["FIELD", "VALUE"]);
    for k in keys {
        let cell = match &wire[*k] {
            Value::Null => "-".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        t.add_row(vec![k.to_string(), cell]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Two;
    impl View for Two {
        fn human(&self) -> Human {
            Human::line("two lines").note("and a note")
        }
    }

    #[test]
    fn json_output_is_the_reply_as_sent_and_table_output_the_view() {
        let reply = json!({ "id": "j1", "unknown_to_the_cli": [1, 2] });
        let j = render(Output::Json, &reply, &Two);
        assert_eq!(
            serde_json::from_str::<Value>(&j.stdout).unwrap(),
            reply,
            "every field survives"
        );
        assert!(j.stdout.ends_with("}\n") && j.stdout.contains("\n  \"id\""));
        assert_eq!(j.stderr, "", "no notes in JSON mode");
        let t = render(Output::Table, &reply, &Two);
        assert_eq!(t.stdout, "two lines\n");
        assert_eq!(t.stderr, "and a note\n");
    }

    #[test]
    fn tables_end_with_a_newline_and_hold_their_cells() {
        let mut t = table(&["A", "B"]);
        t.add_row(vec!["x", "y"]);
        let h = Human::table(t);
        assert!(h.stdout.ends_with('\n'));
        assert!(h.stdout.contains('A') && h.stdout.contains('y'));
    }

    #[test]
    fn fields_prints_strings_bare_null_as_dash_and_the_rest_as_json() {
        let v = json!({ "s": "txt", "n": null, "a": ["x"], "b": true, "i": 6 });
        let out = fields(&v, &["s", "n", "a", "b", "i", "missing"]).to_string();
        let rows: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().filter(|c| *c != "│").collect())
            .filter(|r: &Vec<&str>| r.len() == 2)
            .collect();
        assert_eq!(
            rows,
            vec![
                vec!["FIELD", "VALUE"],
                vec!["s", "txt"],
                vec!["n", "-"],
                vec!["a", "[\"x\"]"],
                vec!["b", "true"],
                vec!["i", "6"],
                vec!["missing", "-"],
            ]
        );
    }

    #[test]
    fn durations_and_ages() {
        assert_eq!(duration_at(None, None, 5_000), "-");
        assert_eq!(duration_at(Some(1_000), Some(1_250), 0), "250ms");
        assert_eq!(duration_at(Some(0), Some(2_500), 0), "2.5s");
        assert_eq!(duration_at(Some(0), None, 125_000), "2m05s");
        assert_eq!(duration_at(Some(10), Some(0), 0), "0ms", "never negative");
        assert_eq!(ago_at(0, 12_000), "12s ago");
        assert_eq!(ago_at(0, 300_000), "5m ago");
        assert_eq!(ago_at(0, 3 * 3_600_000), "3h ago");
        assert_eq!(ago_at(0, 2 * 86_400_000), "1970-01-01");
    }

    #[test]
    fn small_cells() {
        assert_eq!(opt::<i64>(&None), "-");
        assert_eq!(opt(&Some(3)), "3");
        assert_eq!(opt_time(Some(1_500)), "1970-01-01T00:00:01.5Z");
        assert_eq!(clip("abcdef".into(), 4), "abc…");
        assert_eq!(clip("abcd".into(), 4), "abcd");
        // Not a terminal under the test runner: no escape codes.
        assert_eq!(paint_status("failed"), "failed");
    }
}
