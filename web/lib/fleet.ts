// Fleet runs' pure parts: the batch policy's count-or-percent fields (parsed
// and validated as the API does, crates/domain/src/batch.rs), the servers
// page's filter and its "run on all matching" target, and the batch page's
// view models (grouped output, exit-code histogram, grid pages).

import type { Server } from "./types";

/** A batch policy limit: a host count or a share of the targets. */
export type Limit = { kind: "count"; n: number } | { kind: "percent"; p: number };

/** `"5"` → 5 hosts, `"10%"` → a tenth; `""` → no limit. Messages match the API's. */
export function parseLimit(text: string): { ok: true; limit: Limit | null } | { ok: false; error: string } {
  const t = text.trim();
  if (t === "") return { ok: true, limit: null };
  if (t.endsWith("%")) {
    const body = t.slice(0, -1).trim();
    if (!/^\d+$/.test(body)) return { ok: false, error: `"${text}" is not a percentage like "10%"` };
    const p = Number(body);
    if (p < 1 || p > 100) return { ok: false, error: `percentage "${text}" must be between 1% and 100%` };
    return { ok: true, limit: { kind: "percent", p } };
  }
  if (!/^\d+$/.test(t)) return { ok: false, error: `"${text}" is neither a count nor a percentage like "10%"` };
  const n = Number(t);
  if (n === 0) return { ok: false, error: "a count must be at least 1" };
  if (!Number.isSafeInteger(n)) return { ok: false, error: `"${text}" is too large` };
  return { ok: true, limit: { kind: "count", n } };
}

/** The limit as hosts of a batch of `total`: a percentage rounds up (at least 1), a count is capped at `total`. */
export function resolveLimit(l: Limit, total: number): number {
  const t = Math.max(1, total);
  return l.kind === "count" ? Math.min(l.n, t) : Math.max(1, Math.ceil((t * l.p) / 100));
}

/** The value to send: a number for a count, the `"N%"` string for a share. */
export const limitValue = (l: Limit): number | string => (l.kind === "count" ? l.n : `${l.p}%`);

export interface PolicyInput {
  maxParallel: string;
  failThreshold: string;
  onFail: "stop" | "abort";
}

export const emptyPolicy: PolicyInput = { maxParallel: "", failThreshold: "", onFail: "stop" };

export interface PolicyCheck {
  /** Fields for `POST /jobs` (only those set). */
  body: { max_parallel?: number | string; fail_threshold?: number | string; on_fail_threshold?: "stop" | "abort" };
  errors: { maxParallel?: string; failThreshold?: string; hosts?: string };
  /** What the policy means for `hosts` targets, in words. */
  summary: string[];
}

/** Validate a batch policy for `hosts` targets (at most `maxHosts` per submission) as the API would. */
export function checkPolicy(p: PolicyInput, hosts: number, maxHosts?: number): PolicyCheck {
  const out: PolicyCheck = { body: {}, errors: {}, summary: [] };
  if (maxHosts !== undefined && hosts > maxHosts) {
    out.errors.hosts = `${hosts.toLocaleString("en")} hosts is over the API's limit of ${maxHosts.toLocaleString("en")} per submission (REMORA_MAX_BATCH_HOSTS)`;
  }
  const mp = parseLimit(p.maxParallel);
  if (!mp.ok) out.errors.maxParallel = mp.error;
  else if (mp.limit) {
    out.body.max_parallel = limitValue(mp.limit);
    out.summary.push(`at most ${resolveLimit(mp.limit, hosts)} of ${hosts} hosts at once`);
  }
  const ft = parseLimit(p.failThreshold);
  if (!ft.ok) out.errors.failThreshold = ft.error;
  else if (ft.limit) {
    out.body.fail_threshold = limitValue(ft.limit);
    out.body.on_fail_threshold = p.onFail;
    const n = resolveLimit(ft.limit, hosts);
    out.summary.push(
      p.onFail === "abort"
        ? `after ${n} failed host${n === 1 ? "" : "s"}: cancel the running ones and start no more`
        : `after ${n} failed host${n === 1 ? "" : "s"}: start no more, let running ones finish`,
    );
  }
  return out;
}

// --- servers page --------------------------------------------------------------

export type ServerStatusFilter = "" | "reachable" | "unreachable" | "unchecked" | "inactive";

export interface ServerFilter {
  q: string;
  tag: string;
  status: ServerStatusFilter;
}

export const emptyServerFilter: ServerFilter = { q: "", tag: "", status: "" };

const REACHABLE = /^(ok|online|reachable|up|healthy)$/;

/** Servers matching the search (name, address, user, tags), tag and status. */
export function filterServers(servers: Server[], f: ServerFilter): Server[] {
  const q = f.q.trim().toLowerCase();
  return servers.filter((s) => {
    if (f.tag && !s.tags.includes(f.tag)) return false;
    switch (f.status) {
      case "reachable":
        if (!s.last_status || !REACHABLE.test(s.last_status)) return false;
        break;
      case "unreachable":
        if (!s.last_status || REACHABLE.test(s.last_status)) return false;
        break;
      case "unchecked":
        if (s.last_status) return false;
        break;
      case "inactive":
        if (s.is_active) return false;
        break;
    }
    if (!q) return true;
    return `${s.name} ${s.user}@${s.hostname}:${s.port} ${s.tags.join(" ")} ${s.id}`.toLowerCase().includes(q);
  });
}

/** A submission's target: every active server with a tag, or a list. */
export type Target = { tag: string; count: number } | { server_ids: string[]; count: number };

/**
 * What "run on all matching" submits: a tag alone is the API's own `tag`
 * target (every active server with it); any other filter lists the matching
 * active servers by id. Inactive servers never run.
 */
export function targetOf(servers: Server[], f: ServerFilter): Target {
  const active = filterServers(servers, f).filter((s) => s.is_active);
  if (isTagOnly(f)) return { tag: f.tag, count: active.length };
  return { server_ids: active.map((s) => s.id), count: active.length };
}

/** A tag alone submits as the API's `tag` target; any other filter as the matching servers' ids. */
export function isTagOnly(f: ServerFilter): boolean {
  return !!f.tag && !f.q.trim() && !f.status;
}

/** Servers per page of the servers table (`GET /servers?offset&limit`). */
export const SERVER_PAGE = 200;

/** Query parameters of one page of the servers list under a filter (server-side filtering). */
export function serverPageParams(f: ServerFilter, page: number, size = SERVER_PAGE): Record<string, string | number> {
  const p: Record<string, string | number> = { offset: Math.max(0, page) * size, limit: size };
  if (f.q.trim()) p.q = f.q.trim();
  if (f.tag) p.tag = f.tag;
  if (f.status) p.status = f.status;
  return p;
}

/** The filter in an address query (`/servers/?q=…&tag=…&status=…`, also Execute's prefill). */
export function filterToQuery(f: ServerFilter): string {
  const qs = new URLSearchParams();
  if (f.q.trim()) qs.set("q", f.q.trim());
  if (f.tag) qs.set("tag", f.tag);
  if (f.status) qs.set("status", f.status);
  return qs.toString();
}

const STATUSES: ServerStatusFilter[] = ["", "reachable", "unreachable", "unchecked", "inactive"];

export function filterFromQuery(p: URLSearchParams): ServerFilter {
  const st = p.get("status") ?? "";
  return { q: p.get("q") ?? "", tag: p.get("tag") ?? "", status: (STATUSES as string[]).includes(st) ? (st as ServerStatusFilter) : "" };
}

// --- batch page ----------------------------------------------------------------

export interface GroupHostLike {
  server_id: string;
  server_name?: string | null;
  job_id: string;
}

export interface GroupLike {
  hash: string;
  exit_code?: number | null;
  stdout: string;
  stderr: string;
  stdout_bytes: number;
  stderr_bytes: number;
  count: number;
  hosts: GroupHostLike[];
}

export interface GroupView {
  hash: string;
  title: string;
  exitLabel: string;
  count: number;
  /** Share of the hosts shown, 0–1. */
  share: number;
  /** Host names shown while collapsed (all when expanded). */
  hosts: string[];
  /** Hosts left out while collapsed. */
  hiddenHosts: number;
  stdout: string;
  stderr: string;
  /** Output lines left out while collapsed. */
  hiddenLines: number;
  empty: boolean;
}

const hostName = (h: GroupHostLike) => h.server_name ?? h.server_id;

function firstLines(s: string, n: number): { text: string; hidden: number } {
  const lines = s.split("\n");
  if (s.endsWith("\n")) lines.pop();
  if (lines.length <= n) return { text: s, hidden: 0 };
  return { text: lines.slice(0, n).join("\n"), hidden: lines.length - n };
}

/**
 * The grouped-output view: each group of identical (stdout, stderr, exit code)
 * once, its hosts listed (the first `maxHosts` while collapsed) and its output
 * (the first `maxLines` lines of each stream while collapsed).
 */
export function groupView(g: GroupLike, total: number, expanded: boolean, maxHosts = 24, maxLines = 30): GroupView {
  const names = (expanded ? g.hosts : g.hosts.slice(0, maxHosts)).map(hostName);
  const out = expanded ? { text: g.stdout, hidden: 0 } : firstLines(g.stdout, maxLines);
  const err = expanded ? { text: g.stderr, hidden: 0 } : firstLines(g.stderr, maxLines);
  const exitLabel = g.exit_code === null || g.exit_code === undefined ? "no exit code" : `exit ${g.exit_code}`;
  return {
    hash: g.hash,
    title: `${g.count.toLocaleString("en")} host${g.count === 1 ? "" : "s"} · ${exitLabel}`,
    exitLabel,
    count: g.count,
    share: total > 0 ? g.count / total : 0,
    hosts: names,
    hiddenHosts: g.hosts.length - names.length,
    stdout: out.text,
    stderr: err.text,
    hiddenLines: out.hidden + err.hidden,
    empty: g.stdout_bytes === 0 && g.stderr_bytes === 0,
  };
}

/** Whether a group has anything to expand. */
export const groupCollapses = (v: GroupView) => v.hiddenHosts > 0 || v.hiddenLines > 0;

export interface Bar {
  label: string;
  code: string;
  count: number;
  /** Relative to the largest bar, 0–1. */
  width: number;
}

/** Exit-code histogram bars: `0` first, then other codes in numeric order, `none` last. */
export function exitBars(hist: Record<string, number>): Bar[] {
  const rank = (k: string) => (k === "none" ? Number.MAX_SAFE_INTEGER : k === "0" ? -Number.MAX_SAFE_INTEGER : Number(k));
  const keys = Object.keys(hist)
    .filter((k) => hist[k] > 0)
    .sort((a, b) => rank(a) - rank(b));
  const max = Math.max(1, ...keys.map((k) => hist[k]));
  return keys.map((k) => ({ code: k, label: k === "none" ? "no exit code" : `exit ${k}`, count: hist[k], width: hist[k] / max }));
}

/** Pages of the host grid the rows `[start, end]` fall in. */
export function pagesFor(start: number, end: number, pageSize: number): number[] {
  if (end < start || end < 0) return [0];
  const first = Math.floor(Math.max(0, start) / pageSize);
  const last = Math.floor(end / pageSize);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** Hosts not completed: what "rerun failed" would run again. */
export function notCompleted(summary: Record<string, number | undefined>): number {
  return (summary.failed ?? 0) + (summary.timed_out ?? 0) + (summary.canceled ?? 0);
}
