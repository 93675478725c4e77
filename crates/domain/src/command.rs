//! How a job reaches the remote host.
//!
//! OpenSSH hands the exec request's string to the user's login shell
//! (`$SHELL -c STRING`). Remora sends one string of the form
//! `exec /bin/sh -c '<wrapper>'`, where the wrapper (POSIX sh):
//!
//! 1. starts a watchdog in the background that, once per second, checks that
//!    the SSH session process (the wrapper's parent) is alive; when the
//!    session is gone (worker died, network cut) it kills every process that
//!    carries the job's marker and exits;
//! 2. `exec`s the job with `REMORA_JOB=<token>` in its environment, so the
//!    job keeps the session's pid (an SSH `signal` request reaches it) and
//!    every descendant — including ones that called `setsid` — inherits the
//!    marker and can be found again through `/proc/<pid>/environ`.
//!
//! **Command jobs**: `command` is shell text run by `/bin/sh -c`; each element
//! of `args` is single-quoted and appended, so `command = "sh"`,
//! `args = ["-c", "exit 4"]` runs `sh '-c' 'exit 4'` and `command =
//! "echo a; exit 3"` with no args runs as written.
//! **Script jobs**: `<shell> -s -- 'arg1' 'arg2'` reads the script from the
//! channel's stdin; nothing is written to a file on the host.

/// Quote one word for POSIX sh: wrap in single quotes, and write each `'`
/// as `'\''`.
pub fn sh_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The shell text of a command job: `command` as written, then each arg quoted.
pub fn command_line(command: &str, args: &[String]) -> String {
    let mut s = command.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&sh_quote(a));
    }
    s
}

/// The text a script job runs: the chosen shell reading its script on stdin.
pub fn script_line(shell: &str, args: &[String]) -> String {
    let mut s = format!("{} -s --", sh_quote(shell));
    for a in args {
        s.push(' ');
        s.push_str(&sh_quote(a));
    }
    s
}

/// The text a job runs: [`command_line`] or [`script_line`] of its spec.
/// (A script job's script itself goes on stdin: [`stdin_of`].)
pub fn job_line(spec: &crate::JobSpec) -> String {
    match spec {
        crate::JobSpec::Command { command, args } => command_line(command, args),
        crate::JobSpec::Script { shell, args, .. } => script_line(shell, args),
    }
}

/// What a job writes to the channel's stdin before EOF: a script job's
/// script, nothing for a command job.
pub fn stdin_of(spec: &crate::JobSpec) -> Option<&str> {
    match spec {
        crate::JobSpec::Command { .. } => None,
        crate::JobSpec::Script { script, .. } => Some(script),
    }
}

/// Shell snippet that sends `signal` to every process of the login user
/// carrying the job marker `token`. Run on a second channel to cancel.
///
/// One `grep -lz` over `/proc/*/environ` finds them (a few ms); where grep
/// lacks `-z` (busybox) a loop with `tr` per process does (slower: two
/// forks per process on the host).
pub fn kill_marked(token: &str, signal: &str) -> String {
    format!(
        "rj_m='REMORA_JOB={token}'; \
         if printf 'x\\000' | grep -qzx x 2>/dev/null; then \
           rj_p=$(grep -lzx \"$rj_m\" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); \
         else rj_p=; for d in /proc/[0-9]*; do \
           if tr '\\000' '\\n' < \"$d/environ\" 2>/dev/null | grep -qx \"$rj_m\"; then rj_p=\"$rj_p ${{d#/proc/}}\"; fi; \
         done; fi; \
         [ -n \"$rj_p\" ] && kill -{signal} $rj_p 2>/dev/null; true"
    )
}

/// The full exec string for a job: wrapper + watchdog + the job itself.
/// `token` must be `[A-Za-z0-9-]` only (a job id / uuid).
pub fn exec_string(token: &str, job_line: &str) -> String {
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let kill = kill_marked(token, "KILL");
    let wrapper = format!(
        "p=$PPID; me=$$; \
         ( while kill -0 $me 2>/dev/null; do \
             if ! kill -0 $p 2>/dev/null; then {kill}; exit 0; fi; sleep 1; \
           done ) </dev/null >/dev/null 2>&1 & \
         REMORA_JOB={token} exec /bin/sh -c {job}",
        job = sh_quote(job_line)
    );
    format!("exec /bin/sh -c {}", sh_quote(&wrapper))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn quotes_single_quotes() {
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote(""), "''");
    }
    #[test]
    fn command_line_appends_quoted_args() {
        assert_eq!(
            command_line("sh", &["-c".into(), "exit 4".into()]),
            "sh '-c' 'exit 4'"
        );
        assert_eq!(command_line("echo a; exit 3", &[]), "echo a; exit 3");
    }
    #[test]
    fn script_line_reads_stdin() {
        assert_eq!(
            script_line("/bin/bash", &["x y".into()]),
            "'/bin/bash' -s -- 'x y'"
        );
    }
    #[test]
    fn job_line_follows_the_spec() {
        let c = crate::JobSpec::Command {
            command: "echo".into(),
            args: vec!["a b".into()],
        };
        assert_eq!((job_line(&c), stdin_of(&c)), ("echo 'a b'".into(), None));
        let s = crate::JobSpec::Script {
            script: "echo hi".into(),
            args: vec![],
            shell: "/bin/sh".into(),
        };
        assert_eq!(
            (job_line(&s), stdin_of(&s)),
            ("'/bin/sh' -s --".into(), Some("echo hi"))
        );
    }
    #[test]
    fn kill_marked_kills_marked_processes_only() {
        use std::process::{Command, Stdio};
        let spawn = |tok: &str| {
            Command::new("sleep")
                .arg("100")
                .env("REMORA_JOB", tok)
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
        };
        let (mut a, mut b, mut other) = (spawn("km-1"), spawn("km-1"), spawn("km-10"));
        let st = Command::new("/bin/sh")
            .arg("-c")
            .arg(kill_marked("km-1", "KILL"))
            .status()
            .unwrap();
        assert!(st.success());
        assert!(a.wait().unwrap().code().is_none(), "marked process killed");
        assert!(b.wait().unwrap().code().is_none(), "marked process killed");
        assert!(
            other.try_wait().unwrap().is_none(),
            "a different marker survives"
        );
        other.kill().unwrap();
        other.wait().unwrap();
        // Nothing marked: still succeeds.
        assert!(Command::new("/bin/sh")
            .arg("-c")
            .arg(kill_marked("km-none", "TERM"))
            .status()
            .unwrap()
            .success());
    }

    #[test]
    fn exec_string_runs_in_real_sh() {
        // Run the wrapper locally through sh to prove the quoting nests.
        let s = exec_string(
            "t-1",
            &command_line(
                "printf '%s|' \"$REMORA_JOB\"",
                &["a b".into(), "c'd".into()],
            ),
        );
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&s)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "t-1|a b|c'd|");
    }
}
