"use client";
import * as React from "react";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import { scheduleQuery, scheduleRunsQuery } from "@/lib/queries";
import { queryKeys } from "@/lib/query-keys";
import { formatTime } from "@/lib/format";
import type { ScheduleRun } from "@/lib/types";
import { ScheduleForm, inZone } from "@/components/recurring/schedule-form";
import { PauseButton, ScheduleState, cronWords } from "@/components/recurring/schedule-bits";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Badge, type Tone } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Dialog } from "@/components/ui/dialog";
import { Table, Td, Th } from "@/components/ui/table";

const RUN_TONES: Record<string, Tone> = { started: "green", firing: "blue", pending: "blue", skipped: "amber", missed: "gray", failed: "red" };

function Meta({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div>
      <dt className="text-xs text-muted-foreground">{label}</dt>
      <dd className="mt-0.5 break-words text-sm">{children}</dd>
    </div>
  );
}

function RunJobs({ r }: { r: ScheduleRun }) {
  if (r.batch_id)
    return (
      <Link className="text-primary hover:underline" href={`/batches/view/?id=${r.batch_id}`}>
        batch of {r.job_ids.length}
      </Link>
    );
  if (r.job_ids.length === 0) return <span className="text-muted-foreground">—</span>;
  return (
    <span className="flex flex-wrap gap-2">
      {r.job_ids.map((id) => (
        <Link key={id} className="font-mono text-xs text-primary hover:underline" href={`/jobs/view/?id=${id}`}>
          {id.slice(0, 8)}
        </Link>
      ))}
    </span>
  );
}

function ScheduleView() {
  const id = useSearchParams().get("id");
  const router = useRouter();
  const qc = useQueryClient();
  const q = useQuery({ ...scheduleQuery(id ?? ""), enabled: !!id });
  const runs = useQuery({ ...scheduleRunsQuery(id ?? ""), enabled: !!id });
  const [editing, setEditing] = React.useState(false);
  const [deleting, setDeleting] = React.useState(false);
  const [actionError, setActionError] = React.useState<unknown>(null);
  const del = useMutation({
    mutationFn: () => api.del(`/api/v1/schedules/${encodeURIComponent(id ?? "")}`),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: queryKeys.schedules.all });
      router.push("/schedules/");
    },
  });
  if (!id) return <ErrorState error={new Error("No schedule id in the address (expected /schedules/view/?id=…).")} />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load the schedule" />;
  if (q.isPending) return <LoadingRows rows={6} label="Loading the schedule" />;
  const s = q.data;
  const history = runs.data ?? [];
  return (
    <div>
      <PageHeader
        title={s.name}
        description={<span data-testid="schedule-words">{cronWords(s)}</span>}
        actions={
          <>
            <Link href="/schedules/" className="inline-flex h-9 items-center rounded-md border border-input px-4 text-sm font-medium hover:bg-accent">
              All schedules
            </Link>
            <PauseButton s={s} onError={setActionError} size="default" />
            <Button variant="outline" onClick={() => setEditing(true)}>
              Edit
            </Button>
            <Button variant="outline" className="text-destructive" onClick={() => setDeleting(true)}>
              Delete
            </Button>
          </>
        }
      />
      {actionError ? <ErrorState error={actionError} title="The schedule was not changed" /> : null}
      <div className="grid gap-6 lg:grid-cols-[1fr_360px]">
        <Card>
          <CardHeader>
            <CardTitle>Run history</CardTitle>
          </CardHeader>
          <CardContent>
            {runs.isError ? (
              <ErrorState error={runs.error} onRetry={() => runs.refetch()} title="Could not load the run history" />
            ) : runs.isPending ? (
              <LoadingRows rows={3} label="Loading runs" />
            ) : history.length === 0 ? (
              <EmptyState title="No runs yet">The first run is due {s.next_runs[0] ? inZone(s.next_runs[0], s.timezone) : "—"}.</EmptyState>
            ) : (
              <Table aria-label="Run history">
                <thead>
                  <tr>
                    <Th>Due</Th>
                    <Th>Outcome</Th>
                    <Th>Jobs</Th>
                    <Th>Reason</Th>
                  </tr>
                </thead>
                <tbody>
                  {history.map((r) => (
                    <tr key={`${r.due_at}`} data-run-status={r.status}>
                      <Td className="whitespace-nowrap text-xs">{inZone(r.due_at, s.timezone)}</Td>
                      <Td>
                        <Badge tone={RUN_TONES[r.status] ?? "neutral"}>{r.status}</Badge>
                      </Td>
                      <Td>
                        <RunJobs r={r} />
                      </Td>
                      <Td className="text-xs text-muted-foreground">{r.reason ?? ""}</Td>
                    </tr>
                  ))}
                </tbody>
              </Table>
            )}
          </CardContent>
        </Card>
        <div className="grid content-start gap-6">
          <Card>
            <CardHeader>
              <CardTitle>Next 5 runs ({s.timezone})</CardTitle>
            </CardHeader>
            <CardContent>
              {!s.enabled ? <p className="mb-2 text-xs text-muted-foreground">Paused: none of these fire until it is resumed.</p> : null}
              <ol className="grid gap-1 text-sm" aria-label="Next runs">
                {s.next_runs.map((t) => (
                  <li key={t} className="font-mono text-xs" title={`${t} (UTC)`}>
                    {inZone(t, s.timezone)}
                  </li>
                ))}
              </ol>
            </CardContent>
          </Card>
          <Card>
            <CardContent className="pt-4">
              <dl className="grid grid-cols-2 gap-3">
                <Meta label="State">
                  <ScheduleState s={s} />
                </Meta>
                <Meta label="Template">
                  {s.template ? (
                    <Link className="text-primary hover:underline" href={`/templates/view/?id=${encodeURIComponent(s.template_id)}`}>
                      {s.template}
                    </Link>
                  ) : (
                    "deleted"
                  )}
                </Meta>
                <Meta label="Cron">
                  <code className="font-mono text-xs">{s.cron}</code>
                </Meta>
                <Meta label="Overlap">{s.overlap}</Meta>
                <Meta label="Catch-up">{s.catch_up ? "one run" : "none"}</Meta>
                <Meta label="Jitter">{s.jitter_secs ? `up to ${s.jitter_secs} s` : "none"}</Meta>
                <Meta label="Created">{formatTime(s.created_at)}</Meta>
                <Meta label="Updated">{formatTime(s.updated_at)}</Meta>
              </dl>
            </CardContent>
          </Card>
        </div>
      </div>
      {editing ? (
        <Dialog open onClose={() => setEditing(false)} title={`Edit ${s.name}`} className="max-w-3xl">
          <ScheduleForm
            initial={s}
            onCancel={() => setEditing(false)}
            onDone={(n) => {
              qc.setQueryData(queryKeys.schedules.one(s.id), n);
              setEditing(false);
            }}
          />
        </Dialog>
      ) : null}
      {deleting ? (
        <Dialog open onClose={() => setDeleting(false)} title={`Delete “${s.name}”?`} description="Its run history goes with it; the jobs it started stay.">
          {del.isError ? <ErrorState error={del.error} title="Not deleted" /> : null}
          <div className="mt-4 flex justify-end gap-2">
            <Button variant="outline" onClick={() => setDeleting(false)}>
              Cancel
            </Button>
            <Button variant="destructive" disabled={del.isPending} onClick={() => del.mutate()}>
              Delete schedule
            </Button>
          </div>
        </Dialog>
      ) : null}
    </div>
  );
}

export default function ScheduleViewPage() {
  return (
    <React.Suspense fallback={<LoadingRows rows={6} />}>
      <ScheduleView />
    </React.Suspense>
  );
}
