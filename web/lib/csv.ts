import type { Job } from "./types";
import { jobDurationMs, jobLabel } from "./format";

/** RFC 4180 field quoting; also defuses spreadsheet formulas. */
export function csvField(v: unknown): string {
  let s = v === null || v === undefined ? "" : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_COLUMNS = [
  "id",
  "status",
  "server",
  "command",
  "priority",
  "exit_code",
  "exit_signal",
  "error",
  "created_at",
  "started_at",
  "finished_at",
  "duration_ms",
  "attempt",
  "batch_id",
] as const;

export function jobsToCsv(jobs: Job[], serverName: (id: string) => string): string {
  const rows = [CSV_COLUMNS.join(",")];
  for (const j of jobs) {
    rows.push(
      [
        j.id,
        j.status,
        serverName(j.server_id),
        jobLabel(j),
        j.priority,
        j.exit_code,
        j.exit_signal,
        j.error,
        j.created_at,
        j.started_at,
        j.finished_at,
        j.started_at && j.finished_at ? jobDurationMs(j) : "",
        j.attempt,
        j.batch_id,
      ]
        .map(csvField)
        .join(","),
    );
  }
  return rows.join("\r\n") + "\r\n";
}
