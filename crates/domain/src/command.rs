//! How a job reaches the remote host: the exec string, the program on stdin and the process sweeps.
//!
//! sshd hands the exec request's string to the user's **login shell** (`$SHELL -c STRING`), and
//! login shells disagree on quoting (fish treats `\` and `(`…`)` specially, csh/tcsh expand `!`
//! even inside single quotes and reject newlines). So Remora sends the same constant string for
//! every job, [`EXEC`]: one single-quoted word free of `\`, `!` and newlines, which every login
//! shell (sh, dash, bash, zsh, ksh, fish, csh/tcsh, BusyBox ash) passes to `/bin/sh` unchanged.
//! That `/bin/sh` reads **one line** from the channel's stdin with `read -r` (byte by byte on a
//! pipe, so nothing after the line is consumed) and `eval`s it. That line, [`program`], is POSIX
//! sh only, and does the work:
//!
//! 1. starts the session-loss watchdog (see [`watchdog`]) in the background;
//! 2. exports `REMORA_JOB=<job id>` (every descendant, `setsid` ones included, carries it and
//!    is found again through `/proc/<pid>/environ`: [`kill_marked`]) and the job's `env`;
//! 3. runs the job: a command job's text with `eval` (its args single-quoted and appended), a
//!    script job's interpreter with `exec`, reading the rest of stdin — the script — to EOF.
//!
//! The line holds no literal newline: text is quoted by [`sh_quote_line`], which writes a
//! newline as `'"$nl"'`. Nothing of the job is in argv of a process until `/bin/sh` parses it,
//! so a command is not bound by the kernel's 128 KiB limit per argument, and the exec request
//! stays one small packet whatever the job's size (stdin is streamed within the channel window).

use std::path::Path;

/// The exec string of every job (see the module docs).
pub const EXEC: &str = "exec /bin/sh -c 'IFS= read -r l && eval \"$l\"'";

/// Default limit of a script job's script, bytes (`REMORA_MAX_SCRIPT_BYTES`).
pub const DEFAULT_MAX_SCRIPT_BYTES: usize = 1024 * 1024;
/// Default limit of a command job's text, `command` plus `args`, bytes
/// (`REMORA_MAX_COMMAND_BYTES`).
pub const DEFAULT_MAX_COMMAND_BYTES: usize = 256 * 1024;

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

/// Like [`sh_quote`], but on one line: a newline becomes `'"$nl"'`, which needs `nl` to hold a
/// newline ([`program`] sets it).
pub fn sh_quote_line(s: &str) -> String {
    sh_quote(s).replace('\n', "'\"$nl\"'")
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

/// How an interpreter is told "the script is on stdin, then these args": `-s --` for sh-like
/// shells, `-` for python, perl, ruby and node (keyed by the file name, so `/usr/bin/python3`
/// and `python3` agree). The table is in docs/jobs.md.
pub fn stdin_script_flags(shell: &str) -> &'static [&'static str] {
    let name = Path::new(shell)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(shell);
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    match stem {
        "python" | "perl" | "ruby" | "node" | "php" => &["-"],
        _ => &["-s", "--"],
    }
}

/// The text a script job runs: the chosen interpreter reading its script on stdin.
pub fn script_line(shell: &str, args: &[String]) -> String {
    let mut s = sh_quote(shell);
    for f in stdin_script_flags(shell) {
        s.push(' ');
        s.push_str(f);
    }
    for a in args {
        s.push(' ');
        s.push_str(&sh_quote(a));
    }
    s
}

/// The text a job runs: [`command_line`] or [`script_line`] of its spec.
/// (A script job's script itself goes on stdin after the program: [`stdin_of`].)
pub fn job_line(spec: &crate::JobSpec) -> String {
    match spec {
        crate::JobSpec::Command { command, args } => command_line(command, args),
        crate::JobSpec::Script { shell, args, .. } => script_line(shell, args),
    }
}

/// What follows the program line on the channel's stdin before EOF: a script job's script,
/// nothing for a command job.
pub fn stdin_of(spec: &crate::JobSpec) -> Option<&str> {
    match spec {
        crate::JobSpec::Command { .. } => None,
        crate::JobSpec::Script { script, .. } => Some(script),
    }
}

/// A job whose text cannot or may not be sent (checked by the API before anything is queued,
/// and again by the worker).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("`{field}` is {len} bytes, over the limit of {limit} bytes ({env})")]
    TooLarge {
        field: &'static str,
        len: usize,
        limit: usize,
        env: &'static str,
    },
    #[error("`{0}` contains a NUL byte, which no shell can hold")]
    Nul(&'static str),
    #[error("env name `{0}` is not valid (expected [A-Za-z_][A-Za-z0-9_]*)")]
    EnvName(String),
    #[error("`{field}` has {count} entries, over the limit of {limit} ({env})")]
    TooMany {
        field: &'static str,
        count: usize,
        limit: usize,
        env: &'static str,
    },
}

/// The size limits of a job's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimits {
    pub max_script_bytes: usize,
    pub max_command_bytes: usize,
    /// Most `env` variables of one job (`REMORA_MAX_ENV_VARS`).
    pub max_env_vars: usize,
    /// Largest `env` of one job, names plus values, bytes (`REMORA_MAX_ENV_BYTES`).
    pub max_env_bytes: usize,
}

/// Default of `REMORA_MAX_ENV_VARS`.
pub const DEFAULT_MAX_ENV_VARS: usize = 128;
/// Default of `REMORA_MAX_ENV_BYTES`.
pub const DEFAULT_MAX_ENV_BYTES: usize = 64 * 1024;

impl Default for TextLimits {
    fn default() -> Self {
        TextLimits {
            max_script_bytes: DEFAULT_MAX_SCRIPT_BYTES,
            max_command_bytes: DEFAULT_MAX_COMMAND_BYTES,
            max_env_vars: DEFAULT_MAX_ENV_VARS,
            max_env_bytes: DEFAULT_MAX_ENV_BYTES,
        }
    }
}

/// True for a valid env name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_env_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
}

/// Check a spec against `limits`: a script job's `script` against `max_script_bytes`, the
/// command text (`command`, or a script job's `shell`, plus every arg) against
/// `max_command_bytes`; no NUL anywhere.
pub fn check_spec(spec: &crate::JobSpec, limits: TextLimits) -> Result<(), TextError> {
    let (field, head, args) = match spec {
        crate::JobSpec::Command { command, args } => ("command", command, args),
        crate::JobSpec::Script {
            script,
            shell,
            args,
        } => {
            if script.len() > limits.max_script_bytes {
                return Err(TextError::TooLarge {
                    field: "script",
                    len: script.len(),
                    limit: limits.max_script_bytes,
                    env: "REMORA_MAX_SCRIPT_BYTES",
                });
            }
            if script.contains('\0') {
                return Err(TextError::Nul("script"));
            }
            ("shell", shell, args)
        }
    };
    if head.contains('\0') {
        return Err(TextError::Nul(field));
    }
    if args.iter().any(|a| a.contains('\0')) {
        return Err(TextError::Nul("args"));
    }
    let len = head.len() + args.iter().map(|a| a.len() + 1).sum::<usize>();
    if len > limits.max_command_bytes {
        return Err(TextError::TooLarge {
            field: if field == "shell" { "args" } else { "command" },
            len,
            limit: limits.max_command_bytes,
            env: "REMORA_MAX_COMMAND_BYTES",
        });
    }
    Ok(())
}

/// Check a job's `env`: valid names, no NUL in values.
pub fn check_env(env: &[(String, String)]) -> Result<(), TextError> {
    for (k, v) in env {
        if !valid_env_name(k) {
            return Err(TextError::EnvName(k.clone()));
        }
        if v.contains('\0') {
            return Err(TextError::Nul("env"));
        }
    }
    Ok(())
}

/// [`check_env`], and the count and size of `env` against `limits`.
pub fn check_env_within(env: &[(String, String)], limits: TextLimits) -> Result<(), TextError> {
    check_env(env)?;
    if env.len() > limits.max_env_vars {
        return Err(TextError::TooMany {
            field: "env",
            count: env.len(),
            limit: limits.max_env_vars,
            env: "REMORA_MAX_ENV_VARS",
        });
    }
    let len: usize = env.iter().map(|(k, v)| k.len() + v.len()).sum();
    if len > limits.max_env_bytes {
        return Err(TextError::TooLarge {
            field: "env",
            len,
            limit: limits.max_env_bytes,
            env: "REMORA_MAX_ENV_BYTES",
        });
    }
    Ok(())
}

/// Shell snippet that sets `rj_p` to the pids of every process of the login user carrying the
/// job marker `token` (empty when none, or when there is no `/proc`).
///
/// One `grep -lz` over `/proc/*/environ` finds them (a few ms); where grep lacks `-z` (BusyBox)
/// a loop with `tr` per process does (slower: two forks per process on the host).
fn find_marked(token: &str) -> String {
    format!(
        "rj_m='REMORA_JOB={token}'; rj_p=; \
         if printf 'x\\000' | grep -qzx x 2>/dev/null; then \
           rj_p=$(grep -lzx \"$rj_m\" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); \
         else for d in /proc/[0-9]*; do \
           if tr '\\000' '\\n' < \"$d/environ\" 2>/dev/null | grep -qx \"$rj_m\"; then rj_p=\"$rj_p ${{d#/proc/}}\"; fi; \
         done; fi"
    )
}

/// Shell snippet that sends `signal` to every process of the login user carrying the job
/// marker `token`. Run on a second channel to cancel, and by the watchdog.
pub fn kill_marked(token: &str, signal: &str) -> String {
    assert_token(token);
    format!(
        "{}; [ -n \"$rj_p\" ] && kill -{signal} $rj_p 2>/dev/null; true",
        find_marked(token)
    )
}

/// Shell snippet that prints `left N` (N marked processes still exist) or `noproc` (the host
/// has no `/proc`: nothing can be confirmed). Run right after the final sweep's `kill -KILL`:
/// a process that has the signal but was not yet scheduled to die still shows its marker, so
/// the count looks again, 0.1 s apart (1 s where `sleep` takes whole seconds only), for up to
/// ten times before it reports survivors.
pub fn count_marked(token: &str) -> String {
    assert_token(token);
    format!(
        "if [ -d /proc/self ]; then rj_n=0; while :; do {}; set -- $rj_p; \
           if [ $# -eq 0 ] || [ $rj_n -ge 10 ]; then break; fi; rj_n=$((rj_n + 1)); \
           sleep 0.1 2>/dev/null || sleep 1; done; echo \"left $#\"; else echo noproc; fi",
        find_marked(token)
    )
}

/// What [`count_marked`] printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Every marked process is gone.
    AllGone,
    /// This many marked processes survived.
    Left(usize),
    /// The host has no `/proc`; nothing could be confirmed.
    Unconfirmed,
}

impl Sweep {
    pub fn parse(out: &str) -> Sweep {
        let t = out.trim();
        match t.strip_prefix("left ").and_then(|n| n.trim().parse().ok()) {
            Some(0) => Sweep::AllGone,
            Some(n) => Sweep::Left(n),
            None => Sweep::Unconfirmed,
        }
    }
    /// The end of a stopped job's final message.
    pub fn describe(self) -> String {
        match self {
            Sweep::AllGone => "the remote process tree was killed (every process confirmed gone)".into(),
            Sweep::Left(n) => format!("the remote process tree was killed, but {n} process(es) carrying the job's marker were still there"),
            Sweep::Unconfirmed => "the remote process group was signaled; the host has no /proc, so it could not be confirmed that every process is gone".into(),
        }
    }
}

fn assert_token(token: &str) {
    assert!(
        !token.is_empty() && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "a job token is [A-Za-z0-9-]+"
    );
}

/// The session-loss watchdog, a background subshell of the program's `/bin/sh` (pid `rj_me`,
/// parent at start `rj_pp`). Once a second (the first time after a second: a short job costs
/// the host one fork and one `sleep` for it) it reads the shell's parent pid from
/// `/proc/<pid>/stat` (or `ps -o ppid=` without `/proc`). When the SSH session process is gone
/// the shell is re-parented (to init or a subreaper) — the shell's own state, observable by the
/// user whoever owns the session process (Dropbear's stays root, so `kill -0 $PPID` cannot
/// tell). It then kills every process carrying the marker (or, without `/proc`, the shell's
/// process group) and exits. It ends by itself once the shell is gone. It is started before
/// the marker is exported, so a sweep never kills it mid-way; it is unmarked and exits within a
/// second of the job.
pub fn watchdog(token: &str) -> String {
    let kill = kill_marked(token, "KILL");
    format!(
        "( while sleep 1; kill -0 $rj_me 2>/dev/null; do \
             if [ -r /proc/$rj_me/stat ]; then IFS= read -r rj_s < /proc/$rj_me/stat; rj_s=${{rj_s##*) }}; set -- $rj_s; rj_q=$2; \
             else rj_q=$(ps -o ppid= -p $rj_me 2>/dev/null); rj_q=${{rj_q:-$rj_pp}}; fi; \
             if [ $rj_q != $rj_pp ]; then \
               if [ -d /proc/$rj_me ]; then {kill}; else kill -KILL -$rj_me 2>/dev/null; fi; exit 0; \
             fi; \
           done ) </dev/null >/dev/null 2>&1 &"
    )
}

/// The session-loss watchdog of a command job without pty or sudo ([`watches_stdin`]): a
/// background subshell that reads the channel's stdin, which the worker never ends for such a
/// job (the job itself reads `/dev/null`). sshd closes that pipe when the job's shell exits or
/// when the session process goes (worker killed, connection lost): a read that ends while the
/// shell (pid `rj_me`) is still alive is a lost session, and the subshell kills every process
/// carrying the marker (or, without `/proc`, the shell's process group). No polling: it costs
/// the host one fork per job and notices a lost session at once. (A non-interactive shell
/// gives a background list `/dev/null` as stdin before its own redirections, so the channel
/// reaches it through fd 9, closed again in the job's shell.)
pub fn stdin_watchdog(token: &str) -> String {
    let kill = kill_marked(token, "KILL");
    format!(
        "exec 9<&0; ( while IFS= read -r rj_s; do :; done; \
           if kill -0 $rj_me 2>/dev/null; then \
             if [ -d /proc/$rj_me ]; then {kill}; else kill -KILL -$rj_me 2>/dev/null; fi; \
           fi ) <&9 >/dev/null 2>&1 9<&- & exec 9<&-;"
    )
}

/// Whether a job's watchdog is [`stdin_watchdog`] (the worker then sends no EOF on the
/// channel: the end of stdin means the session is gone): a command job without pty (a pty's
/// input is the terminal) and without sudo (whose shells [`watchdog`] polls).
pub fn watches_stdin(spec: &crate::JobSpec, sudo: bool, pty: bool) -> bool {
    matches!(spec, crate::JobSpec::Command { .. }) && !sudo && !pty
}

/// After the job's text in the program's shell: a status above 128 from a child killed by a
/// signal (the shell's `128+n`) is re-raised on the shell itself, so the SSH session ends with
/// `exit-signal` as it did when the job was `exec`ed. Only signals that kill by default are
/// re-raised (never STOP, CHLD, WINCH...); an `exit 130` written in the command text exits the
/// shell before this runs and stays an exit code. (A child that itself *exits* 128+n is
/// indistinguishable to a shell: it is reported as that signal too.)
pub const RERAISE: &str = "rj_rc=$?; if [ $rj_rc -gt 128 ] && [ $rj_rc -lt 160 ]; then \
    rj_sn=$(kill -l $((rj_rc - 128)) 2>/dev/null); rj_sn=${rj_sn#SIG}; \
    case $rj_sn in HUP|INT|QUIT|ILL|TRAP|ABRT|BUS|FPE|KILL|USR1|SEGV|USR2|PIPE|ALRM|TERM|STKFLT|XCPU|XFSZ|VTALRM|PROF|IO|POLL|PWR|SYS) \
    trap - $rj_sn; kill -s $rj_sn $$;; esac; fi; exit $rj_rc";

/// What the program is to do besides running the job (see [`program_parts`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Become<'a> {
    /// The user sudo switches to (`sudo -u`).
    pub user: &'a str,
    /// The line after the program on stdin is the sudo password.
    pub password: bool,
}

/// The marker a failed `become` prints first (on stderr, on stdout with a pty), followed by
/// the job token, `: ` and what sudo said. [`become_failure`] finds it.
pub const BECOME_FAILED: &str = "remora-become-failed";

/// sudo's message when `out` (the first bytes of a job's output) starts with the
/// [`BECOME_FAILED`] line of job `token`.
pub fn become_failure(token: &str, out: &[u8]) -> Option<String> {
    let head = format!("{BECOME_FAILED} {token}: ");
    let text = String::from_utf8_lossy(out);
    let rest = text.strip_prefix(&head)?;
    let msg: Vec<&str> = rest
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Some(msg.join("; "))
}

/// The one line sent on stdin ahead of everything else (see the module docs): watchdog,
/// marker, `env` (names must be valid: [`check_env`]), the job. Ends with `\n`.
///
/// With `stdin_watch` ([`watches_stdin`]) the watchdog is [`stdin_watchdog`] and the job reads
/// `/dev/null`; otherwise it is the polling [`watchdog`] and the job reads the channel.
pub fn program(
    token: &str,
    job_line: &str,
    env: &[(String, String)],
    exec_job: bool,
    stdin_watch: bool,
) -> String {
    assert_token(token);
    assert!(!(exec_job && stdin_watch), "an exec'ed job reads its stdin");
    let mut p = String::with_capacity(job_line.len() + 1024);
    if stdin_watch {
        p.push_str("rj_me=$$; ");
        p.push_str(&stdin_watchdog(token));
    } else {
        p.push_str("rj_me=$$; rj_pp=$PPID; ");
        p.push_str(&watchdog(token));
    }
    p.push_str(&format!(" REMORA_JOB={token}; export REMORA_JOB; "));
    let stdin = if stdin_watch { " </dev/null" } else { "" };
    push_env_and_job(
        &mut p,
        job_line,
        env,
        exec_job,
        "unset l rj_me rj_pp; ",
        stdin,
    );
    with_nl(p)
}

/// `nl` (a newline, which [`sh_quote_line`] writes as `'"$nl"'`) is set at the start of a
/// line only when the line uses it: `$(…)` costs the host a fork for every job.
fn with_nl(line: String) -> String {
    if line.contains("\"$nl\"") {
        format!("nl=$(printf '\\n_'); nl=${{nl%_}}; {line}")
    } else {
        line
    }
}

fn push_env_and_job(
    p: &mut String,
    job_line: &str,
    env: &[(String, String)],
    exec_job: bool,
    unset: &str,
    stdin: &str,
) {
    for (k, v) in env {
        assert!(valid_env_name(k), "env names are checked before");
        p.push_str(&format!("{k}={}; export {k}; ", sh_quote_line(v)));
    }
    p.push_str(unset);
    p.push_str("eval ");
    if exec_job {
        p.push_str(&sh_quote_line(&format!("exec {job_line}")));
    } else {
        p.push_str(&sh_quote_line(job_line));
        p.push_str(stdin);
        p.push_str("; ");
        p.push_str(RERAISE);
    }
    p.push('\n');
}

/// The program line of a spec: a script job `exec`s its interpreter (it keeps the session's
/// pid), a command job's text is `eval`ed by the program's shell ([`RERAISE`] after it).
/// `pty`: the job runs on a pseudo-terminal (see [`watches_stdin`]).
pub fn program_of(
    token: &str,
    spec: &crate::JobSpec,
    env: &[(String, String)],
    pty: bool,
) -> String {
    let exec_job = matches!(spec, crate::JobSpec::Script { .. });
    program(
        token,
        &job_line(spec),
        env,
        exec_job,
        watches_stdin(spec, false, pty),
    )
}

/// The lines a job's stdin starts with: the program, and for a `become` job the program the
/// sudo'ed shell reads (the worker sends the sudo password, when there is one, between the
/// two; then a script job's script).
///
/// A `become` job's program (the login user's `/bin/sh`):
/// 1. starts the watchdog and exports the marker as without `become`, reads the password line;
/// 2. starts a *lifeline*, a marked `sleep` the login user can kill;
/// 3. checks sudo: `sudo -S -p '' -u USER -- true` with the password on a pipe (or
///    `sudo -n` without one). On failure it prints the [`BECOME_FAILED`] line and exits 1:
///    the job ends `become_failed`, never waiting on a prompt (sudo sees EOF after the one line);
/// 4. runs `sudo -S -p '' -u USER -- /bin/sh -c SKIP sh <pid> <lifeline>` with its stdin a
///    pipe carrying the password, a go line `rj-go-<token>`, then the rest of the channel
///    (`cat`). SKIP reads lines up to the go line (so a password sudo did not ask for is read
///    by the shell and dropped, never run) and `eval`s the next: the second program;
/// 5. the second program (as USER) starts its own watchdog, which kills every marked process
///    (it can see USER's) once the lifeline or the first shell is gone — which is how cancel,
///    timeout and session loss reach processes the login user may not signal — exports the
///    marker and `env` (sudo resets the environment) and runs the job.
pub fn program_parts(
    token: &str,
    spec: &crate::JobSpec,
    env: &[(String, String)],
    sudo: Option<Become<'_>>,
    pty: bool,
) -> (String, Option<String>) {
    let Some(b) = sudo else {
        return (program_of(token, spec, env, pty), None);
    };
    assert_token(token);
    let user = sh_quote(b.user);
    let mut p = String::with_capacity(2048);
    p.push_str("rj_me=$$; rj_pp=$PPID; ");
    p.push_str(&watchdog(token));
    p.push_str(&format!(" REMORA_JOB={token}; export REMORA_JOB; rj_pw=; "));
    if b.password {
        p.push_str("IFS= read -r rj_pw; ");
    }
    p.push_str("sleep 2147483647 </dev/null >/dev/null 2>&1 & rj_lf=$!; ");
    let (check, feed, sudo) = if b.password {
        (
            format!("printf '%s\\n' \"$rj_pw\" | sudo -S -p '' -u {user} -- true"),
            format!("printf '%s\\n' \"$rj_pw\" rj-go-{token}"),
            format!("sudo -S -p '' -u {user}"),
        )
    } else {
        (
            format!("sudo -n -u {user} -- true"),
            format!("echo rj-go-{token}"),
            format!("sudo -n -u {user}"),
        )
    };
    p.push_str(&format!(
        "if ! rj_e=$({check} 2>&1 >/dev/null); then kill $rj_lf 2>/dev/null; \
         printf '%s\\n' \"{BECOME_FAILED} {token}: $rj_e\" >&2; exit 1; fi; "
    ));
    p.push_str(&format!(
        "{{ {feed}; unset rj_pw; exec cat; }} | {sudo} -- /bin/sh -c \
         'while IFS= read -r l; do [ \"$l\" = rj-go-{token} ] && break; done; IFS= read -r l && eval \"$l\"' \
         sh $$ $rj_lf; "
    ));
    p.push_str("rj_rc=$?; unset rj_pw; kill $rj_lf 2>/dev/null; (exit $rj_rc); ");
    p.push_str(RERAISE);
    p.push('\n');

    // The second program, run by the sudo'ed /bin/sh with $1 the first shell, $2 the lifeline.
    let kill = kill_marked(token, "KILL");
    let mut q = String::with_capacity(job_line(spec).len() + 1024);
    q.push_str("rj_me=$$; rj_op=$1; rj_lf=$2; set --; ");
    q.push_str(&format!(
        "( while sleep 1; kill -0 $rj_me 2>/dev/null; do \
             if [ -d /proc/self ]; then [ -d /proc/$rj_lf ] && [ -d /proc/$rj_op ]; else kill -0 $rj_lf 2>/dev/null; fi \
             || {{ {kill}; exit 0; }}; \
           done ) </dev/null >/dev/null 2>&1 & "
    ));
    // sudo relays TERM, HUP and INT to this shell only (not to the job's tree): caught
    // here (a caught signal is default again in the job's processes), so the shell stays
    // and its watchdog, seeing the lifeline gone, kills the whole tree.
    q.push_str(&format!(
        "trap : TERM HUP INT; REMORA_JOB={token}; export REMORA_JOB; "
    ));
    // Never `exec`: the shell must outlive the job for the watchdog (see above).
    push_env_and_job(
        &mut q,
        &job_line(spec),
        env,
        false,
        "unset l rj_me rj_op rj_lf; ",
        "",
    );
    (with_nl(p), Some(with_nl(q)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn quotes_single_quotes() {
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote_line("a\nb"), "'a'\"$nl\"'b'");
    }

    #[test]
    fn the_exec_string_is_literal_for_every_login_shell() {
        // One single-quoted word after `exec /bin/sh -c`: nothing fish, csh or sh interpret.
        let inner = EXEC
            .strip_prefix("exec /bin/sh -c '")
            .and_then(|s| s.strip_suffix('\''))
            .unwrap();
        for bad in ['\'', '\\', '!', '\n', '`', '(', ')'] {
            assert!(!inner.contains(bad), "{bad:?} in the exec string");
        }
    }

    #[test]
    fn script_flags_follow_the_interpreter() {
        assert_eq!(
            script_line("/bin/bash", &["x y".into()]),
            "'/bin/bash' -s -- 'x y'"
        );
        assert_eq!(script_line("python3", &["a".into()]), "'python3' - 'a'");
        assert_eq!(stdin_script_flags("/usr/bin/python3.11"), &["-"]);
        assert_eq!(stdin_script_flags("/usr/bin/perl"), &["-"]);
        assert_eq!(stdin_script_flags("/bin/dash"), &["-s", "--"]);
    }

    #[test]
    fn limits_name_the_variable() {
        let l = TextLimits {
            max_script_bytes: 4,
            max_command_bytes: 6,
            max_env_vars: 2,
            max_env_bytes: 5,
        };
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(check_env_within(&[kv("A", "1234")], l), Ok(()));
        let e = check_env_within(&[kv("A", "12345")], l).unwrap_err();
        assert!(e.to_string().contains("REMORA_MAX_ENV_BYTES"), "{e}");
        let e = check_env_within(&[kv("A", ""), kv("B", ""), kv("C", "")], l).unwrap_err();
        assert!(e.to_string().contains("REMORA_MAX_ENV_VARS"), "{e}");
        assert!(matches!(
            check_env_within(&[kv("1", "")], l),
            Err(TextError::EnvName(_))
        ));
        let s = |script: &str, args: &[&str]| crate::JobSpec::Script {
            script: script.into(),
            shell: "sh".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        assert_eq!(check_spec(&s("1234", &[]), l), Ok(()));
        let e = check_spec(&s("12345", &[]), l).unwrap_err();
        assert!(e.to_string().contains("REMORA_MAX_SCRIPT_BYTES"), "{e}");
        let c = |c: &str| crate::JobSpec::Command {
            command: c.into(),
            args: vec![],
        };
        assert_eq!(check_spec(&c("123456"), l), Ok(()));
        let e = check_spec(&c("1234567"), l).unwrap_err();
        assert!(e.to_string().contains("REMORA_MAX_COMMAND_BYTES"), "{e}");
        assert_eq!(check_spec(&c("a\0"), l), Err(TextError::Nul("command")));
        assert!(check_env(&[("A_1".into(), "x".into())]).is_ok());
        for bad in ["1A", "A-B", "", "Ä"] {
            assert!(check_env(&[(bad.into(), "x".into())]).is_err(), "{bad}");
        }
    }

    #[test]
    fn sweep_output_parses() {
        assert_eq!(Sweep::parse("left 0\n"), Sweep::AllGone);
        assert_eq!(Sweep::parse("left 2"), Sweep::Left(2));
        assert_eq!(Sweep::parse("noproc"), Sweep::Unconfirmed);
        assert_eq!(Sweep::parse(""), Sweep::Unconfirmed);
    }

    /// Runs EXEC under `login -c`, the program and `rest` on stdin.
    /// `close`: end stdin after `rest` (a script job, or a polling watchdog); otherwise stdin
    /// stays open until the shell exits, as the worker keeps it for a stdin watchdog.
    fn run_local(login: &[&str], program: &str, rest: &str, close: bool) -> (String, i32) {
        let mut c = Command::new(login[0]);
        c.args(&login[1..])
            .arg("-c")
            .arg(EXEC)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        let mut stdin = ch.stdin.take().unwrap();
        stdin.write_all(program.as_bytes()).unwrap();
        stdin.write_all(rest.as_bytes()).unwrap();
        let held = (!close).then_some(stdin);
        let out = ch.wait_with_output().unwrap();
        drop(held);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    #[test]
    fn the_program_runs_through_local_shells() {
        let args: Vec<String> = [
            "a b", "c'd", "$HOME", "`id`", "!x", "(id)", "*", "l1\nl2", "é", "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cmd = crate::JobSpec::Command {
            command: "printf '%s|' \"$REMORA_JOB\" \"$E\"".into(),
            args: args.clone(),
        };
        let env = vec![("E".to_string(), "q'\"$x\\\n".to_string())];
        let want = format!("t-1|q'\"$x\\\n|{}|", args.join("|"));
        let script = crate::JobSpec::Script {
            script: "printf '%s|' \"$@\"\nexit 7\n".into(),
            shell: "/bin/sh".into(),
            args: args.clone(),
        };
        let mut logins: Vec<Vec<&str>> = vec![vec!["/bin/sh"]];
        for l in [
            "/bin/bash",
            "/bin/dash",
            "/bin/zsh",
            "/bin/ksh93",
            "/usr/bin/fish",
            "/bin/tcsh",
        ] {
            if Path::new(l).exists() {
                logins.push(vec![l]);
            }
        }
        if Path::new("/bin/busybox").exists() {
            logins.push(vec!["/bin/busybox", "sh"]);
        }
        for login in &logins {
            let (out, code) = run_local(login, &program_of("t-1", &cmd, &env, false), "", false);
            assert_eq!((out.as_str(), code), (want.as_str(), 0), "{login:?}");
            // With a pty the watchdog polls, and the worker ends stdin.
            let (out, code) = run_local(login, &program_of("t-1", &cmd, &env, true), "", true);
            assert_eq!(
                (out.as_str(), code),
                (want.as_str(), 0),
                "{login:?} polling"
            );
            let (out, code) = run_local(
                login,
                &program_of("t-1", &script, &[], false),
                stdin_of(&script).unwrap(),
                true,
            );
            assert_eq!(
                (out, code),
                (format!("{}|", args.join("|")), 7),
                "{login:?} script"
            );
        }
    }

    /// Runs EXEC under /bin/sh with `input` on stdin; (stdout, exit code, signal).
    fn run_raw(input: &[u8], close: bool) -> (String, Option<i32>, Option<i32>) {
        use std::os::unix::process::ExitStatusExt;
        let mut ch = Command::new("/bin/sh")
            .arg("-c")
            .arg(EXEC)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = ch.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        let held = (!close).then_some(stdin);
        let out = ch.wait_with_output().unwrap();
        drop(held);
        (
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
            out.status.code(),
            out.status.signal(),
        )
    }

    #[test]
    fn a_command_killed_by_a_signal_ends_the_shell_by_that_signal() {
        let cmd = |c: &str| crate::JobSpec::Command {
            command: c.into(),
            args: vec![],
        };
        let run = |c: &str| {
            let (_, code, sig) = run_raw(program_of("t-2", &cmd(c), &[], false).as_bytes(), false);
            (code, sig)
        };
        assert_eq!(run("sh -c 'kill -s KILL $$'"), (None, Some(9)));
        assert_eq!(run("echo a; sh -c 'kill -s TERM $$'"), (None, Some(15)));
        assert_eq!(run("sh -c 'kill -s SEGV $$'"), (None, Some(11)));
        // An explicit exit stays an exit code; so does a plain failure.
        assert_eq!(run("exit 130"), (Some(130), None));
        assert_eq!(run("false"), (Some(1), None));
        assert_eq!(run("true"), (Some(0), None));
        // A signal that does not kill by default is not re-raised.
        assert_eq!(run("sh -c 'exit 145'"), (Some(145), None));
    }

    /// A command job's stdin watchdog: the end of the channel's stdin while the job runs is a
    /// lost session, and the job's processes (a `setsid` one too) are killed; the job itself
    /// reads `/dev/null`, not the channel; and a job that ends first leaves a background
    /// process it started alone.
    #[test]
    fn the_stdin_watchdog_kills_the_job_when_stdin_ends() {
        use std::time::{Duration, Instant};
        let cmd = |c: &str| crate::JobSpec::Command {
            command: c.into(),
            args: vec![],
        };
        let token = format!("t-w{}", std::process::id());
        let marked = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| std::fs::read(e.ok()?.path().join("environ")).ok())
                .filter(|env| {
                    env.split(|b| *b == 0)
                        .any(|v| v == format!("REMORA_JOB={token}").as_bytes())
                })
                .count()
        };
        let program = program_of(&token, &cmd("setsid sleep 1001 & sleep 1000"), &[], false);
        assert!(watches_stdin(&cmd("x"), false, false));
        let mut ch = Command::new("/bin/sh")
            .arg("-c")
            .arg(EXEC)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = ch.stdin.take().unwrap();
        stdin.write_all(program.as_bytes()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while marked() < 2 {
            assert!(Instant::now() < deadline, "the job did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(10);
        while marked() > 0 {
            assert!(
                Instant::now() < deadline,
                "the job survived the end of stdin"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = ch.wait();

        // The job reads /dev/null: `cat` ends at once though stdin stays open.
        let (out, code) = run_local(
            &["/bin/sh"],
            &program_of("t-r", &cmd("cat; echo end"), &[], false),
            "more\n",
            false,
        );
        assert_eq!((out.as_str(), code), ("end\n", 0));

        // A job that ends normally: its background process is not killed when stdin ends.
        let token2 = format!("t-b{}", std::process::id());
        let program = program_of(
            &token2,
            &cmd("setsid sleep 1002 >/dev/null 2>&1 &"),
            &[],
            false,
        );
        let (_, code) = run_local(&["/bin/sh"], &program, "", false);
        assert_eq!(code, 0);
        std::thread::sleep(Duration::from_millis(300));
        let left: Vec<i32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let env = std::fs::read(e.path().join("environ")).ok()?;
                env.split(|b| *b == 0)
                    .any(|v| v == format!("REMORA_JOB={token2}").as_bytes())
                    .then(|| e.file_name().to_str()?.parse().ok())?
            })
            .collect();
        assert_eq!(left.len(), 1, "the background sleep stays");
        for pid in left {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }

    #[test]
    fn become_failure_parses_the_marker_line() {
        let out =
            b"remora-become-failed t-3: Sorry, try again.\nsudo: 1 incorrect password attempt\n";
        assert_eq!(
            become_failure("t-3", out).as_deref(),
            Some("Sorry, try again.; sudo: 1 incorrect password attempt")
        );
        assert_eq!(become_failure("t-4", out), None);
        assert_eq!(become_failure("t-3", b"hello"), None);
    }

    /// As root, sudo asks no password: the password line is then read and dropped by the
    /// sudo'ed shell, never run nor printed; env and args still arrive verbatim.
    #[test]
    fn a_become_program_skips_a_password_sudo_did_not_ask_for() {
        if !Path::new("/usr/bin/sudo").exists() || !nix_is_root() {
            eprintln!("skipped: needs root and /usr/bin/sudo");
            return;
        }
        let cmd = crate::JobSpec::Command {
            command: "id -un; printf '%s|' \"$E\" \"$REMORA_JOB\"".into(),
            args: vec!["a'b".into(), "$x".into()],
        };
        let env = vec![("E".to_string(), "q'\"$y\\".to_string())];
        for pw in [true, false] {
            let (outer, inner) = program_parts(
                "t-5",
                &cmd,
                &env,
                Some(Become {
                    user: "nobody",
                    password: pw,
                }),
                false,
            );
            let mut input = outer.into_bytes();
            if pw {
                input.extend_from_slice(b"echo LEAKED\n");
            }
            input.extend_from_slice(inner.unwrap().as_bytes());
            let (out, code, sig) = run_raw(&input, true);
            assert_eq!(
                (out.as_str(), code, sig),
                ("nobody\nq'\"$y\\|t-5|a'b|$x|", Some(0), None),
                "password line sent: {pw}"
            );
        }
        let script = crate::JobSpec::Script {
            script: "id -un\nprintf '%s|' \"$@\"\nexit 3\n".into(),
            shell: "/bin/sh".into(),
            args: vec!["s t".into()],
        };
        let (outer, inner) = program_parts(
            "t-6",
            &script,
            &[],
            Some(Become {
                user: "root",
                password: false,
            }),
            false,
        );
        let input = format!("{outer}{}{}", inner.unwrap(), stdin_of(&script).unwrap());
        let (out, code, _) = run_raw(input.as_bytes(), true);
        assert_eq!((out.as_str(), code), ("root\ns t|", Some(3)));
        // A user sudo does not know: the marker line, exit 1, nothing of the job run.
        let (outer, inner) = program_parts(
            "t-7",
            &cmd,
            &[],
            Some(Become {
                user: "no-such-user-x",
                password: false,
            }),
            false,
        );
        let (out, code, _) = run_raw(format!("{outer}{}", inner.unwrap()).as_bytes(), true);
        assert_eq!(code, Some(1), "{out}");
        let msg = become_failure("t-7", out.as_bytes()).expect(&out);
        assert!(msg.contains("no-such-user-x"), "{msg}");
    }

    fn nix_is_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false)
    }

    #[test]
    fn kill_marked_kills_marked_processes_only() {
        let spawn = |tok: &str| {
            Command::new("sleep")
                .arg("100")
                .env("REMORA_JOB", tok)
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
        };
        let (mut a, mut b, mut other) = (spawn("km-1"), spawn("km-1"), spawn("km-10"));
        let count = |tok: &str| {
            let o = Command::new("/bin/sh")
                .arg("-c")
                .arg(count_marked(tok))
                .output()
                .unwrap();
            Sweep::parse(&String::from_utf8_lossy(&o.stdout))
        };
        assert_eq!(count("km-1"), Sweep::Left(2));
        let st = Command::new("/bin/sh")
            .arg("-c")
            .arg(kill_marked("km-1", "KILL"))
            .status()
            .unwrap();
        assert!(st.success());
        assert!(a.wait().unwrap().code().is_none(), "marked process killed");
        assert!(b.wait().unwrap().code().is_none(), "marked process killed");
        assert_eq!(count("km-1"), Sweep::AllGone);
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
}
