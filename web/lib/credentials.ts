// Pure parts of the credentials and trusted-CA pages: a user certificate's
// validity as the dashboard shows it (expired / not yet valid / expiring soon /
// valid), and the checks the API makes on names and CA host patterns, so a bad
// form is flagged before it is sent (the API's 422 still shows on its field).

import type { CertificateInfo } from "./types";

/** A certificate expiring within this long is highlighted. */
export const EXPIRING_SOON_MS = 7 * 24 * 3600 * 1000;

export type CertState = "valid" | "expiring" | "expired" | "not_yet_valid";

export interface CertDisplay {
  state: CertState;
  tone: "green" | "amber" | "red";
  /** Short badge text: "valid", "expires in 2 d", "expired", "not yet valid". */
  label: string;
  /** The whole interval in words, for the title and the detail line. */
  detail: string;
}

function span(ms: number): string {
  const m = Math.round(Math.abs(ms) / 60_000);
  if (m < 60) return `${Math.max(m, 1)} min`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.round(h / 24)} d`;
}

const day = (t: number) => new Date(t).toISOString().replace("T", " ").slice(0, 16) + " UTC";

/**
 * How a user certificate shows now: computed from its interval (so a page left open turns
 * "expired" by itself); the API's `status` is used only when the times do not parse.
 */
export function certificateDisplay(c: Pick<CertificateInfo, "valid_after" | "valid_before" | "status">, now = Date.now(), soonMs = EXPIRING_SOON_MS): CertDisplay {
  const after = Date.parse(c.valid_after);
  const forever = c.valid_before === "forever";
  const before = forever ? Number.POSITIVE_INFINITY : Date.parse(c.valid_before);
  if (Number.isNaN(after) || Number.isNaN(before)) {
    const state: CertState = c.status === "expired" ? "expired" : c.status === "not_yet_valid" ? "not_yet_valid" : "valid";
    return { state, tone: state === "valid" ? "green" : "red", label: state.replace(/_/g, " "), detail: `${c.valid_after} → ${c.valid_before}` };
  }
  const detail = `valid from ${day(after)} ${forever ? "forever" : `until ${day(before)}`}`;
  if (now < after) return { state: "not_yet_valid", tone: "red", label: "not yet valid", detail: `not valid for another ${span(after - now)}; ${detail}` };
  if (now >= before) return { state: "expired", tone: "red", label: "expired", detail: `expired ${span(now - before)} ago; ${detail}` };
  if (before - now <= soonMs) return { state: "expiring", tone: "amber", label: `expires in ${span(before - now)}`, detail };
  return { state: "valid", tone: "green", label: forever ? "valid forever" : "valid", detail };
}

/** The API's name rule for credentials and trusted CAs. */
export function nameError(name: string): string | null {
  const n = name.trim();
  if (!n) return "Give a name";
  if (n.length > 64 || !/^[A-Za-z0-9._-]+$/.test(n)) return "1–64 characters of letters, digits, -, _ or .";
  return null;
}

/** At most this many host patterns per CA (the API's MAX_PATTERNS). */
export const MAX_PATTERNS = 100;

/** Patterns as typed: one per line, or separated by commas or spaces. */
export function splitPatterns(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}

/** What the API would refuse in a trusted CA's patterns, or null when they pass. */
export function patternsError(patterns: string[]): string | null {
  if (patterns.length === 0) return "Give at least one host pattern (* trusts the CA for every host)";
  if (patterns.length > MAX_PATTERNS) return `At most ${MAX_PATTERNS} patterns`;
  for (const p of patterns) {
    if (p === "!" || p.length > 255 || /[\s,]/.test(p)) return `“${p}” is not a host pattern (no spaces or commas, at most 255 characters)`;
  }
  if (patterns.every((p) => p.startsWith("!"))) return "Only negated patterns match no host; add a positive one";
  return null;
}

/** A public key line's shape (`ssh-ed25519 AAAA… comment`); the API parses it for real. */
export function publicKeyError(line: string): string | null {
  const parts = line.trim().split(/\s+/);
  if (!line.trim()) return "Paste the CA's public key line";
  if (line.trim().includes("\n")) return "One key line only";
  if (parts.length < 2 || !/^(ssh-|ecdsa-|sk-)/.test(parts[0]) || !/^AAAA[A-Za-z0-9+/=]+$/.test(parts[1])) return "Not an OpenSSH public key line (ssh-ed25519 AAAA…)";
  if (parts[0].includes("-cert-v01@")) return "That is a certificate; paste the CA's own public key";
  return null;
}
