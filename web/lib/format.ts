import type { Job } from "./types";

export function parseTime(s: string | null | undefined): number | null {
  if (!s) return null;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}

export function formatDuration(ms: number | null): string {
  if (ms === null || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${m % 60}m`;
}

/** Run time of a job: finished − started, or now − started while running. */
export function jobDurationMs(job: Pick<Job, "started_at" | "finished_at">, now = Date.now()): number | null {
  const start = parseTime(job.started_at);
  if (start === null) return null;
  const end = parseTime(job.finished_at) ?? now;
  return end - start;
}

export function formatTime(s: string | null | undefined): string {
  const t = parseTime(s);
  if (t === null) return "—";
  return new Date(t).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function relativeTime(s: string | null | undefined, now = Date.now()): string {
  const t = parseTime(s);
  if (t === null) return "—";
  const d = Math.round((now - t) / 1000);
  if (d < 5) return "just now";
  if (d < 60) return `${d}s ago`;
  if (d < 3600) return `${Math.floor(d / 60)}m ago`;
  if (d < 86400) return `${Math.floor(d / 3600)}h ago`;
  return `${Math.floor(d / 86400)}d ago`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The command line a job runs, for tables and titles. */
export function jobLabel(job: Pick<Job, "kind" | "command" | "args" | "script" | "shell">): string {
  if (job.kind === "script") {
    const first = (job.script ?? "").split("\n").find((l) => l.trim() && !l.startsWith("#!")) ?? "";
    return `${job.shell ?? "/bin/bash"} script: ${first.trim()}`;
  }
  return [job.command ?? "", ...(job.args ?? []).map(quoteArg)].join(" ").trim();
}

function quoteArg(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** Server health words the API may use for "it answered". */
export function isReachable(status: string | null | undefined): boolean {
  return !!status && /^(ok|online|reachable|up|healthy)$/.test(status);
}

/** Arguments, one per line (so spaces need no quoting); blank lines dropped. */
export function parseArgs(text: string): string[] {
  return text.split("\n").filter((l) => l.length > 0);
}
