// The pure parts of host-key trust, inventory import and jump hosts in the dashboard: the
// review's states and selection, a server's jump chain, guessing an inventory's format.

import type { components } from "./api-types.gen";

type Schemas = components["schemas"];
export type ScannedKey = Schemas["ScannedKey"];
export type ImportResult = Schemas["ImportResult"];
export type ImportRow = Schemas["ImportRow"];
export type Credential = Schemas["CredentialView"];

/** What the review calls a scanned host (the scan's `match` / `mismatch` / `unpinned` / `error`). */
export type ReviewState = "new" | "matches" | "mismatch" | "unreachable" | "not scanned";

export function reviewState(k: Pick<ScannedKey, "status">): ReviewState {
  switch (k.status) {
    case "stored":
      return "not scanned";
    case "unpinned":
      return "new";
    case "match":
      return "matches";
    case "mismatch":
      return "mismatch";
    default:
      return "unreachable";
  }
}

/** What a one-server scan says of the pinned key's type (the API stores fingerprints only). */
export function keyTypeNote(k: Pick<ScannedKey, "status" | "key_type" | "error">): string {
  const t = k.key_type ?? "a";
  switch (k.status) {
    case "match":
      return `${t} (read from the host, which presents the pinned key)`;
    case "mismatch":
      return `unknown: the host now presents ${t} key that is not the pinned one`;
    case "unpinned":
      return `nothing pinned; the host presents ${t} key`;
    default:
      return `could not read it: ${k.error ?? "the host did not answer"}`;
  }
}

/** Whether accepting the host's presented key would change anything (a key was read and differs from the pin). */
export const acceptable = (k: ScannedKey) => !!k.presented && (reviewState(k) === "new" || reviewState(k) === "mismatch");

/** Checked by default: new keys only. A mismatch must be ticked by hand, after comparing. */
export function defaultSelection(keys: ScannedKey[]): Set<string> {
  return new Set(keys.filter((k) => acceptable(k) && reviewState(k) === "new").map((k) => k.server_id));
}

/** Tick or untick one host; hosts with nothing to accept cannot be ticked. */
export function toggle(keys: ScannedKey[], sel: Set<string>, id: string, on: boolean): Set<string> {
  const k = keys.find((x) => x.server_id === id);
  const next = new Set(sel);
  if (on && k && acceptable(k)) next.add(id);
  else next.delete(id);
  return next;
}

/** Tick every acceptable host of a state (or untick them all). */
export function toggleState(keys: ScannedKey[], sel: Set<string>, state: ReviewState, on: boolean): Set<string> {
  const next = new Set(sel);
  for (const k of keys) {
    if (reviewState(k) !== state) continue;
    if (on && acceptable(k)) next.add(k.server_id);
    else next.delete(k.server_id);
  }
  return next;
}

/** The body of `POST /servers/host-keys/accept` for the ticked hosts: exactly the fingerprints reviewed. */
export function acceptBody(keys: ScannedKey[], sel: Set<string>): { keys: { server: string; fingerprint: string }[] } {
  return { keys: keys.filter((k) => sel.has(k.server_id) && acceptable(k)).map((k) => ({ server: k.server_id, fingerprint: k.presented! })) };
}

/** Counts per state, in the review's order. */
export function stateCounts(keys: ScannedKey[]): Record<ReviewState, number> {
  const c: Record<ReviewState, number> = { new: 0, matches: 0, mismatch: 0, unreachable: 0, "not scanned": 0 };
  for (const k of keys) c[reviewState(k)]++;
  return c;
}

/**
 * What a read-only token can see without scanning (the scan connects out, an operator's action):
 * each server's stored pin, and a pending mismatch's presented key as recorded by a check or job.
 */
export function storedKeys(
  servers: { id: string; name: string; host_key_fingerprint?: string | null; host_key_first_seen_at?: string | null; host_key_presented?: string | null }[],
): ScannedKey[] {
  return servers.map((s) => ({
    server_id: s.id,
    name: s.name,
    pinned: s.host_key_fingerprint ?? null,
    first_seen_at: s.host_key_first_seen_at ?? null,
    presented: s.host_key_presented ?? null,
    key_type: null,
    status: s.host_key_presented ? "mismatch" : "stored",
    error: null,
  }));
}

interface Hop {
  id: string;
  name: string;
  jump_server_id?: string | null;
}

export interface Chain {
  /** The target first, then each jump host out to the first hop. */
  names: string[];
  /** The chain comes back to a server already in it. */
  loop: boolean;
  /** A jump host id that is not in the list (deleted, or not loaded). */
  unknown: string | null;
}

/**
 * The chain of `target` (a server, or a name for one being created) when its jump host is `jump`
 * (an id; null or "" for none), following each hop's own `jump_server_id` through `servers`.
 * Stops at a loop or an unknown id; at most 64 hops are followed.
 */
export function jumpChain(servers: Hop[], target: { id?: string | null; name: string }, jump: string | null | undefined): Chain {
  const byId = new Map(servers.map((s) => [s.id, s]));
  const names = [target.name || "(this server)"];
  const seen = new Set<string>(target.id ? [target.id] : []);
  let next = jump || null;
  while (next && names.length <= 64) {
    if (seen.has(next)) return { names: [...names, byId.get(next)?.name ?? next], loop: true, unknown: null };
    const hop = byId.get(next);
    if (!hop) return { names, loop: false, unknown: next };
    seen.add(next);
    names.push(hop.name);
    next = hop.jump_server_id || null;
  }
  return { names, loop: false, unknown: null };
}

/** "target ← B ← A": read as "target, reached through B, reached through A". */
export const chainText = (c: Chain) => c.names.join(" ← ") + (c.unknown ? ` ← (unknown ${c.unknown.slice(0, 8)})` : "");

/** Hops between the target and the network (the chain's length without the target). */
export const hops = (c: Chain) => c.names.length - 1 + (c.unknown ? 1 : 0);

export const IMPORT_FORMATS = [
  { value: "ssh_config", label: "OpenSSH client config (ssh_config)" },
  { value: "csv", label: "CSV" },
  { value: "ansible", label: "Ansible inventory (INI or YAML)" },
  { value: "known_hosts", label: "known_hosts (pins host keys)" },
] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number]["value"];

/**
 * The format of an inventory from its file name, else its content (the API needs one named;
 * it tells Ansible INI from YAML itself). Null when nothing fits.
 */
export function guessFormat(fileName: string | null, content: string): ImportFormat | null {
  const n = (fileName ?? "").toLowerCase().split(/[\\/]/).pop() ?? "";
  if (n) {
    if (n.endsWith(".csv")) return "csv";
    if (n.startsWith("known_hosts")) return "known_hosts";
    if (n === "config" || n.includes("ssh_config") || n.endsWith(".conf")) return "ssh_config";
    if (n.endsWith(".ini") || n.endsWith(".yml") || n.endsWith(".yaml") || n === "hosts" || n === "inventory") return "ansible";
  }
  const lines = content
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#") && !l.startsWith(";"));
  if (!lines.length) return null;
  const first = lines[0];
  if (/^(host|match)\s+\S/i.test(first) || lines.some((l) => /^hostname\s+\S/i.test(l))) return "ssh_config";
  if (/^(\|1\||@cert-authority|@revoked)/.test(first) || /^\S+\s+(ssh-|ecdsa-sha2-|sk-)\S*\s+AAAA/.test(first)) return "known_hosts";
  if (first.startsWith("[") || first === "---" || /^[\w.-]+:$/.test(first) || lines.some((l) => /\bansible_(ssh_)?(host|port|user)\b/.test(l)))
    return "ansible";
  if (first.includes(",") && /\b(name|hostname|host)\b/i.test(first)) return "csv";
  return null;
}

/** Split "a, b c" into tags. */
export const splitTags = (s: string) =>
  s
    .split(/[,\s]+/)
    .map((t) => t.trim())
    .filter(Boolean);

/** Ids of the servers an import's rows name (what the host-key review after it scans). */
export const importedIds = (r: ImportResult) => Array.from(new Set(r.rows.filter((x) => x.server_id).map((x) => x.server_id!)));
