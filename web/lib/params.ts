// Template parameters in the browser: the checks the API makes
// (remora-domain template.rs: check_value and check_specs), so the run form
// and the parameter builder say what is wrong before sending; the API's own
// 422 is mapped back onto the field it names.

import { ApiError } from "./api";
import type { ParamSpec, ParamType } from "./types";

/** Longest value of any parameter, bytes (MAX_PARAM_VALUE). */
export const MAX_PARAM_VALUE = 64 * 1024;
/** Longest parameter name (MAX_PARAM_NAME). */
export const MAX_PARAM_NAME = 64;
/** Most parameters per template (MAX_PARAMS). */
export const MAX_PARAMS = 64;
export const PARAM_TYPES: ParamType[] = ["string", "integer", "boolean", "choice", "text", "secret"];
export const PARAM_TYPE_LABELS: Record<ParamType, string> = {
  string: "String",
  integer: "Integer",
  boolean: "Boolean",
  choice: "Choice",
  text: "Multi-line text",
  secret: "Secret",
};

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/** A value as the run form holds it: text for every type, a boolean for a checkbox. */
export type FormValue = string | boolean;

export function envName(name: string): string {
  return `REMORA_PARAM_${name.toUpperCase()}`;
}

function fullMatch(pattern: string): RegExp | null {
  // The API uses Rust's regex; most patterns mean the same in JS. One JS
  // cannot compile is left to the API to judge.
  try {
    return new RegExp(`^(?:${pattern})$`, "u");
  } catch {
    return null;
  }
}

/** Why `value` is not a valid value of `p` (the API's wording), or null. Empty values are `checkRequired`'s. */
export function checkValue(p: ParamSpec, value: FormValue | number): string | null {
  if (p.type === "boolean") {
    if (typeof value === "boolean") return null;
    const s = String(value);
    return ["true", "1", "yes", "false", "0", "no"].includes(s) ? null : `\`${s}\` is not a boolean (true or false)`;
  }
  const s = typeof value === "number" ? String(value) : String(value);
  if (new TextEncoder().encode(s).length > MAX_PARAM_VALUE) return `longer than ${MAX_PARAM_VALUE} bytes`;
  if (s.includes("\0")) return "contains a NUL byte (an environment variable cannot)";
  if (p.type !== "text" && p.type !== "secret" && s.includes("\n")) return "contains a newline (use type text)";
  switch (p.type) {
    case "integer": {
      const t = s.trim();
      if (!/^[+-]?\d+$/.test(t)) return `\`${s}\` is not an integer`;
      const n = BigInt(t);
      if (n < I64_MIN || n > I64_MAX) return `\`${s}\` is not an integer`;
      if (p.min != null && n < BigInt(p.min)) return `${n} is less than the minimum ${p.min}`;
      if (p.max != null && n > BigInt(p.max)) return `${n} is greater than the maximum ${p.max}`;
      return null;
    }
    case "choice":
      return (p.choices ?? []).includes(s) ? null : `\`${s}\` is not one of ${(p.choices ?? []).join(", ")}`;
    default: {
      const len = [...s].length;
      if (p.min != null && len < p.min) return `shorter than ${p.min} characters`;
      if (p.max != null && len > p.max) return `longer than ${p.max} characters`;
      if (p.pattern) {
        const re = fullMatch(p.pattern);
        if (re && !re.test(s)) return `${p.type === "secret" ? "the value" : `\`${s}\``} does not match /${p.pattern}/`;
      }
      return null;
    }
  }
}

/** The form's starting values: each parameter's default, or empty (false for a boolean). */
export function initialValues(specs: ParamSpec[]): Record<string, FormValue> {
  const out: Record<string, FormValue> = {};
  for (const p of specs) {
    const d = p.default as unknown;
    if (p.type === "boolean") out[p.name] = d === true || d === "true" || d === "1" || d === "yes";
    else out[p.name] = d === undefined || d === null ? "" : String(d);
  }
  return out;
}

/**
 * The run body's `params` from the form, or the errors by parameter name.
 * An empty value is left out (the API then applies the default, or refuses a
 * required parameter without one).
 */
export function buildRunParams(
  specs: ParamSpec[],
  values: Record<string, FormValue>,
): { params: Record<string, string | boolean>; errors: Record<string, string> } {
  const params: Record<string, string | boolean> = {};
  const errors: Record<string, string> = {};
  for (const p of specs) {
    const v = values[p.name];
    if (p.type === "boolean") {
      params[p.name] = v === true;
      continue;
    }
    const s = v === undefined || v === true || v === false ? "" : v;
    if (s === "") {
      if (p.required && (p.default === undefined || p.default === null)) errors[p.name] = "required";
      continue;
    }
    const err = checkValue(p, s);
    if (err) errors[p.name] = err;
    else params[p.name] = p.type === "integer" ? s.trim() : s;
  }
  return { params, errors };
}

/** The parameter an API 422 on `params` is about, with its message: `parameter \`x\`: …`. */
export function paramErrorFromApi(err: unknown): { name: string; message: string } | null {
  if (!(err instanceof ApiError) || err.field !== "params") return null;
  const m = err.message;
  let r = /^parameter `([^`]+)` is required$/.exec(m);
  if (r) return { name: r[1], message: "required" };
  r = /^parameter `([^`]+)`: ([\s\S]*)$/.exec(m);
  if (r) return { name: r[1], message: r[2] };
  r = /^unknown parameter `([^`]+)`/.exec(m);
  if (r) return { name: r[1], message: m };
  return null;
}

// --- the parameter builder ---------------------------------------------------

/** One parameter as the builder edits it: every input as text. */
export interface ParamDraft {
  name: string;
  type: ParamType;
  description: string;
  default: string;
  required: boolean;
  pattern: string;
  min: string;
  max: string;
  /** One choice a line. */
  choices: string;
}

export function emptyDraft(): ParamDraft {
  return { name: "", type: "string", description: "", default: "", required: false, pattern: "", min: "", max: "", choices: "" };
}

export function specToDraft(p: ParamSpec): ParamDraft {
  const d = p.default as unknown;
  return {
    name: p.name,
    type: p.type,
    description: p.description ?? "",
    default: d === undefined || d === null ? "" : String(d),
    required: !!p.required,
    pattern: p.pattern ?? "",
    min: p.min == null ? "" : String(p.min),
    max: p.max == null ? "" : String(p.max),
    choices: (p.choices ?? []).join("\n"),
  };
}

const VALID_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The drafts as the API's `params`, or the first error of each draft (by
 * index). Mirrors check_specs: names, duplicates (case-insensitive), bounds,
 * which options fit which type, and the default checked as a value.
 */
export function draftsToSpecs(drafts: ParamDraft[]): { specs: ParamSpec[]; errors: Record<number, string> } {
  const specs: ParamSpec[] = [];
  const errors: Record<number, string> = {};
  const seen = new Set<string>();
  if (drafts.length > MAX_PARAMS) errors[MAX_PARAMS] = `at most ${MAX_PARAMS} parameters`;
  drafts.forEach((d, i) => {
    const name = d.name.trim();
    const fail = (m: string) => {
      if (!(i in errors)) errors[i] = m;
    };
    if (!VALID_NAME.test(name) || name.length > MAX_PARAM_NAME)
      fail(`a name is [A-Za-z_][A-Za-z0-9_]*, at most ${MAX_PARAM_NAME} characters`);
    else if (seen.has(name.toUpperCase())) fail("defined twice (names are compared case-insensitively)");
    seen.add(name.toUpperCase());
    const spec: ParamSpec = { name, type: d.type };
    if (d.description.trim()) spec.description = d.description.trim();
    if (d.required) spec.required = true;
    const bounds = d.type === "integer" || d.type === "string" || d.type === "text" || d.type === "secret";
    for (const k of ["min", "max"] as const) {
      const t = d[k].trim();
      if (!t || !bounds) continue; // the builder hides min and max for choice and boolean
      if (!/^[+-]?\d+$/.test(t)) fail(`${k} \`${t}\` is not an integer`);
      else spec[k] = Number(t);
    }
    if (spec.min != null && spec.max != null && spec.min > spec.max) fail(`min ${spec.min} is greater than max ${spec.max}`);
    if (d.pattern.trim()) {
      if (d.type === "choice" || d.type === "boolean" || d.type === "integer") fail("`pattern` applies to string, text and secret");
      // Not compiled here: the API's regex dialect (Rust) is the judge, e.g. of (?i).
      else spec.pattern = d.pattern;
    }
    const choices = d.choices
      .split("\n")
      .map((c) => c.trim())
      .filter(Boolean);
    if (d.type === "choice") {
      if (choices.length === 0) fail("a choice needs `choices`");
      spec.choices = choices;
    }
    if (d.default !== "") {
      if (d.type === "secret") fail("a secret has no default (it would be stored in the template)");
      else if (d.type === "boolean") {
        if (!["true", "false"].includes(d.default)) fail("default: a boolean default is true or false");
        spec.default = (d.default === "true") as unknown as ParamSpec["default"];
      } else {
        const err = checkValue(spec, d.default);
        if (err) fail(`default: ${err}`);
        spec.default = (d.type === "integer" ? Number(d.default.trim()) : d.default) as unknown as ParamSpec["default"];
      }
    }
    specs.push(spec);
  });
  return { specs, errors };
}

/** `KEY=value` lines as the template's fixed environment. */
export function parseEnv(text: string): { env: Record<string, string>; error: string | null } {
  const env: Record<string, string> = {};
  for (const [i, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) return { env, error: `line ${i + 1}: expected KEY=value` };
    const k = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || k.toUpperCase().startsWith("REMORA_"))
      return { env, error: `env \`${k}\`: a name is [A-Za-z_][A-Za-z0-9_]* and does not start with REMORA_` };
    env[k] = line.slice(eq + 1);
  }
  return { env, error: null };
}
