// A schedule's cron in words, in the browser: the API's own cron dialect (5
// fields or an @macro) checked here, then described by cronstrue, with the
// time zone after it ("At 02:30, every day, Europe/Berlin").

import cronstrue from "cronstrue";

/** The API's macros and the 5-field expression each stands for. */
export const CRON_MACROS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

export type CronWords = { ok: true; text: string } | { ok: false; error: string };

/** `cron` in English, with `timezone` (if given) appended; or why it is not a cron the API takes. */
export function describeCron(cron: string, timezone?: string | null): CronWords {
  const expr = cron.trim();
  if (!expr) return { ok: false, error: "Enter a cron expression, e.g. 30 2 * * * or @daily." };
  let fields = expr;
  if (expr.startsWith("@")) {
    const m = CRON_MACROS[expr.toLowerCase()];
    if (!m) return { ok: false, error: `Unknown macro ${expr}; the macros are ${Object.keys(CRON_MACROS).join(", ")}.` };
    fields = m;
  } else if (expr.split(/\s+/).length !== 5) {
    return { ok: false, error: "A cron expression has 5 fields: minute hour day-of-month month day-of-week." };
  }
  let text: string;
  try {
    text = cronstrue.toString(fields, { use24HourTimeFormat: true, verbose: true, throwExceptionOnParseError: true });
  } catch (e) {
    const msg = String((e as Error)?.message ?? e).replace(/^Error:\s*/, "");
    return { ok: false, error: msg.charAt(0).toUpperCase() + msg.slice(1) };
  }
  const tz = timezone?.trim();
  return { ok: true, text: tz ? `${text}, ${tz}` : text };
}

/** Every IANA zone this browser knows (UTC first), for the schedule form's zone picker. */
export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  const zones = intl.supportedValuesOf?.("timeZone") ?? [];
  return ["UTC", ...zones.filter((z) => z !== "UTC")];
}
