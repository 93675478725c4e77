"use client";
import * as React from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "@/lib/api";
import { retentionQuery } from "@/lib/queries";
import { queryKeys } from "@/lib/query-keys";
import type { RetentionPolicy } from "@/lib/types";
import { ErrorState, LoadingRows } from "@/components/states";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Field, Input } from "@/components/ui/input";

/** The API's bounds (remora-store retention.rs). */
export const MAX_DAYS = 36_500;
export const MIN_OUTPUT_BYTES = 1024;
const STATUSES = ["completed", "failed", "timed_out", "canceled"] as const;
type S = (typeof STATUSES)[number];
const FIELDS = [...STATUSES.map((s) => `jobs_days.${s}`), "output_max_bytes", "export_before_delete"];

const str = (n: number | null | undefined) => (n == null ? "" : String(n));

/** The form's text as a policy, or the first error by field (the API's `validate`). */
export function toPolicy(days: Record<S, string>, outputMax: string, exportBefore: boolean): { policy: RetentionPolicy; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const jobs_days: Record<string, number | null> = {};
  for (const s of STATUSES) {
    const t = days[s].trim();
    if (!t) {
      jobs_days[s] = null;
      continue;
    }
    const n = Number(t);
    if (!/^\d+$/.test(t) || n < 1 || n > MAX_DAYS) errors[`jobs_days.${s}`] = `jobs_days.${s} must be between 1 and ${MAX_DAYS} days, or empty to keep forever`;
    jobs_days[s] = n;
  }
  let output_max_bytes: number | null = null;
  if (outputMax.trim()) {
    const n = Number(outputMax.trim());
    if (!/^\d+$/.test(outputMax.trim()) || n < MIN_OUTPUT_BYTES) errors.output_max_bytes = `output_max_bytes must be at least ${MIN_OUTPUT_BYTES}, or empty to keep all output`;
    output_max_bytes = n;
  }
  return { policy: { jobs_days, output_max_bytes, export_before_delete: exportBefore }, errors };
}

/** Settings → Retention: days per final status, largest output kept, export before delete. */
export function RetentionCard() {
  const qc = useQueryClient();
  const q = useQuery(retentionQuery());
  return (
    <Card className="lg:col-span-3" id="retention">
      <CardHeader>
        <CardTitle>Retention</CardTitle>
        <p className="text-sm text-muted-foreground">
          A background task deletes finished jobs older than these days (with their output) in small batches, and trims stored output to the size kept. Empty keeps forever.
        </p>
      </CardHeader>
      <CardContent>
        {q.isError ? (
          <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load the retention policy" />
        ) : q.isPending ? (
          <LoadingRows rows={3} label="Loading the retention policy" />
        ) : (
          <RetentionForm policy={q.data} onSaved={(p) => qc.setQueryData(queryKeys.retention, p)} />
        )}
      </CardContent>
    </Card>
  );
}

function RetentionForm({ policy, onSaved }: { policy: RetentionPolicy; onSaved: (p: RetentionPolicy) => void }) {
  const [days, setDays] = React.useState<Record<S, string>>(() => ({
    completed: str(policy.jobs_days?.completed),
    failed: str(policy.jobs_days?.failed),
    timed_out: str(policy.jobs_days?.timed_out),
    canceled: str(policy.jobs_days?.canceled),
  }));
  const [outputMax, setOutputMax] = React.useState(str(policy.output_max_bytes));
  const [exportBefore, setExportBefore] = React.useState(!!policy.export_before_delete);
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [saved, setSaved] = React.useState(false);
  const save = useMutation({
    mutationFn: (p: RetentionPolicy) => api.put<RetentionPolicy>("/api/v1/settings/retention", p),
    onSuccess: (p) => {
      setSaved(true);
      onSaved(p);
    },
  });
  const apiErr = save.error instanceof ApiError ? save.error : null;
  const fieldErr = (f: string) => errors[f] ?? (apiErr?.field === f ? apiErr.message : null);
  return (
    <form
      className="grid gap-4"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setSaved(false);
        const r = toPolicy(days, outputMax, exportBefore);
        setErrors(r.errors);
        if (Object.keys(r.errors).length === 0) save.mutate(r.policy);
      }}
    >
      <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
        {STATUSES.map((s) => (
          <Field key={s} label={`Keep ${s.replace("_", " ")} jobs (days)`} htmlFor={`ret-${s}`} error={fieldErr(`jobs_days.${s}`)} hint="empty = forever">
            <Input id={`ret-${s}`} inputMode="numeric" value={days[s]} onChange={(e) => setDays((d) => ({ ...d, [s]: e.target.value }))} />
          </Field>
        ))}
      </div>
      <div className="grid gap-4 sm:grid-cols-2">
        <Field label="Largest output kept per job (bytes)" htmlFor="ret-output" error={fieldErr("output_max_bytes")} hint={`The first bytes are kept, the rest dropped; at least ${MIN_OUTPUT_BYTES}; empty = all`}>
          <Input id="ret-output" inputMode="numeric" value={outputMax} onChange={(e) => setOutputMax(e.target.value)} />
        </Field>
        <div className="grid content-end gap-1 pb-1">
          <label className="flex items-center gap-2 text-sm" htmlFor="ret-export">
            <input id="ret-export" type="checkbox" className="h-4 w-4" checked={exportBefore} onChange={(e) => setExportBefore(e.target.checked)} aria-describedby="ret-export-msg" />
            Export each job as NDJSON before deleting it
          </label>
          <p id="ret-export-msg" className={fieldErr("export_before_delete") ? "text-xs text-destructive" : "text-xs text-muted-foreground"} role={fieldErr("export_before_delete") ? "alert" : undefined}>
            {fieldErr("export_before_delete") ?? "One file per day in REMORA_RETENTION_EXPORT_DIR (the /jobs/export line format)."}
          </p>
        </div>
      </div>
      {save.isError && !(apiErr && FIELDS.includes(apiErr.field ?? "")) ? <ErrorState error={save.error} title="The policy was not saved" /> : null}
      <div className="flex items-center gap-3">
        <Button type="submit" disabled={save.isPending}>
          {save.isPending ? "Saving…" : "Save retention policy"}
        </Button>
        {saved ? (
          <span role="status" className="text-sm text-emerald-700 dark:text-emerald-300">
            Saved; the next maintenance pass applies it.
          </span>
        ) : null}
      </div>
    </form>
  );
}
