"use client";
// A batch (fleet run): counts by status, progress, ETA, exit-code histogram, the
// virtualised host grid with status filter and search, the grouped output, and
// cancel / rerun / export. Polls counts and the visible grid page, never every host.
import * as React from "react";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, download } from "@/lib/api";
import { batchGroupsQuery, batchHeadQuery, batchPageQuery, jobQuery } from "@/lib/queries";
import { queryKeys } from "@/lib/query-keys";
import { formatDuration, jobLabel } from "@/lib/format";
import { notCompleted } from "@/lib/fleet";
import { JOB_STATUSES, type BatchCell, type Created } from "@/lib/types";
import { ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { JobStatusBadge } from "@/components/status-badge";
import { HostGrid } from "@/components/batch/host-grid";
import { ExitHistogram, OutputGroups } from "@/components/batch/groups";
import { HostOutputDialog } from "@/components/batch/host-output";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Input, Select } from "@/components/ui/input";
import { Tabs } from "@/components/ui/tabs";

function useDebounced<T>(v: T, ms: number): T {
  const [d, setD] = React.useState(v);
  React.useEffect(() => {
    const t = setTimeout(() => setD(v), ms);
    return () => clearTimeout(t);
  }, [v, ms]);
  return d;
}

function BatchView() {
  const id = useSearchParams().get("id");
  const router = useRouter();
  const qc = useQueryClient();
  const [view, setView] = React.useState<"hosts" | "groups">("hosts");
  const head = useQuery({ ...batchHeadQuery(id ?? ""), enabled: !!id });
  const live = !!head.data && !head.data.finished;
  // The grid's first page (unfiltered) starts with the counts, not after them.
  useQuery({ ...batchPageQuery(id ?? "", "", "", 0, false), enabled: !!id });
  // The groups read every host's output: fetched only for their tab.
  const groups = useQuery({ ...batchGroupsQuery(id ?? "", live), enabled: !!id && view === "groups" });
  const firstJob = head.data?.servers[0]?.job_id;
  const job = useQuery({ ...jobQuery(firstJob ?? ""), enabled: !!firstJob });
  const [status, setStatus] = React.useState("");
  const [searchText, setSearchText] = React.useState("");
  const search = useDebounced(searchText.trim(), 200);
  const [open, setOpen] = React.useState<BatchCell | null>(null);
  const [actionError, setActionError] = React.useState<unknown>(null);

  // A finished batch: its groups are final too.
  const wasLive = React.useRef(live);
  React.useEffect(() => {
    if (wasLive.current && !live && id) qc.invalidateQueries({ queryKey: queryKeys.batch.groups(id) });
    wasLive.current = live;
  }, [live, id, qc]);

  const cancel = useMutation({
    mutationFn: () => api.post(`/api/v1/batches/${encodeURIComponent(id!)}/cancel`),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.batch.one(id!) }),
    onError: setActionError,
  });
  const rerun = useMutation({
    mutationFn: (only: "failed" | "all") => api.post<Created>(`/api/v1/batches/${encodeURIComponent(id!)}/rerun`, { only }),
    onSuccess: (res) => {
      qc.invalidateQueries({ queryKey: queryKeys.jobs.all });
      if ("batch_id" in res && res.batch_id) router.push(`/batches/view/?id=${res.batch_id}`);
    },
    onError: setActionError,
  });

  if (!id) return <ErrorState error={new Error("No batch id in the address (expected /batches/view/?id=…).")} />;
  if (head.isError) return <ErrorState error={head.error} onRetry={() => head.refetch()} title="Could not load the batch" />;
  if (!head.data) return <LoadingRows rows={4} label="Loading batch" />;
  const b = head.data;
  const failedHosts = notCompleted(b.summary);
  const pol = b.policy;
  const exportAs = (format: "ndjson" | "csv") => download(`/api/v1/batches/${encodeURIComponent(b.batch_id)}/export?format=${format}`, `remora-batch-${b.batch_id}.${format}`).catch(setActionError);

  return (
    <div>
      <div className="mb-2 text-sm text-muted-foreground">
        <Link href="/jobs/" className="hover:underline">
          Jobs
        </Link>{" "}
        / batch
      </div>
      <PageHeader
        title={job.data ? jobLabel(job.data) : "Batch"}
        description={
          <span className="flex flex-wrap items-center gap-2">
            <span className="font-mono text-xs">{b.batch_id}</span>·<span data-testid="batch-total">
              {b.total.toLocaleString("en")} host{b.total === 1 ? "" : "s"}
            </span>·
            <JobStatusBadge status={b.status} />
            {pol?.source_batch_id ? (
              <>
                · rerun of{" "}
                <Link className="font-mono text-xs hover:underline" href={`/batches/view/?id=${pol.source_batch_id}`}>
                  {pol.source_batch_id.slice(0, 8)}
                </Link>
              </>
            ) : null}
          </span>
        }
        actions={
          <>
            {b.status === "running" && pol ? (
              <Button variant="outline" className="text-destructive" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
                {cancel.isPending ? "Canceling…" : "Cancel batch"}
              </Button>
            ) : null}
            {b.finished && failedHosts > 0 ? (
              <Button onClick={() => rerun.mutate("failed")} disabled={rerun.isPending}>
                Rerun {failedHosts.toLocaleString("en")} failed
              </Button>
            ) : null}
            {b.finished ? (
              <Button variant="outline" onClick={() => rerun.mutate("all")} disabled={rerun.isPending}>
                Rerun all
              </Button>
            ) : null}
            <Button variant="outline" onClick={() => exportAs("ndjson")}>
              Export NDJSON
            </Button>
            <Button variant="outline" onClick={() => exportAs("csv")}>
              Export CSV
            </Button>
          </>
        }
      />
      {actionError ? (
        <div className="mb-4">
          <ErrorState error={actionError} title="The action failed" />
        </div>
      ) : null}

      <div className="mb-4 grid gap-4 lg:grid-cols-[2fr_1fr]">
        <Card className="p-4">
          <div className="flex flex-wrap items-baseline justify-between gap-2">
            <span className="text-sm font-medium" data-testid="batch-progress">
              {Math.floor(b.progress * 100)}% done
            </span>
            <span className="text-xs text-muted-foreground" data-testid="batch-eta">
              {b.finished ? "finished" : b.eta_ms != null ? `about ${formatDuration(b.eta_ms)} left` : "estimating…"}
            </span>
          </div>
          <div className="mt-2 h-2 overflow-hidden rounded bg-muted" role="progressbar" aria-label="Batch progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.floor(b.progress * 100)}>
            <div className="h-2 bg-primary transition-[width]" style={{ width: `${b.progress * 100}%` }} />
          </div>
          <div className="mt-3 flex flex-wrap gap-2" aria-label="Hosts by status">
            {JOB_STATUSES.map((s) => (
              <button
                key={s}
                type="button"
                onClick={() => {
                  setView("hosts");
                  setStatus((cur) => (cur === s ? "" : s));
                }}
                aria-pressed={status === s}
                data-count-status={s}
                className="flex items-center gap-1 rounded-md border px-2 py-1 text-sm hover:bg-muted/40 aria-pressed:ring-2 aria-pressed:ring-ring"
              >
                <JobStatusBadge status={s} /> <span className="tabular-nums">{(b.summary[s] ?? 0).toLocaleString("en")}</span>
              </button>
            ))}
          </div>
          {pol ? (
            <p className="mt-3 text-xs text-muted-foreground">
              Policy: {pol.max_parallel > 0 ? `at most ${pol.max_parallel} at once` : "no parallel limit"}
              {pol.fail_threshold > 0 ? ` · ${pol.on_fail} after ${pol.fail_threshold} failed` : " · no fail threshold"}
              {pol.state === "stopped" ? " · stopped by the threshold" : ""}
            </p>
          ) : null}
        </Card>
        <Card className="p-4">
          <h2 className="mb-2 text-sm font-medium">Exit codes</h2>
          <ExitHistogram hist={b.exit_codes} />
        </Card>
      </div>

      <div className="mb-3 flex flex-wrap items-center gap-3">
        <Tabs
          label="Batch view"
          value={view}
          onChange={setView}
          items={[
            { value: "hosts", label: "Hosts" },
            { value: "groups", label: groups.data ? `Grouped output (${groups.data.groups.length})` : "Grouped output" },
          ]}
        />
        {view === "hosts" ? (
          <>
            <div className="w-48">
            <Select aria-label="Filter by status" className="h-9" value={status} onChange={(e) => setStatus(e.target.value)}>
              <option value="">All statuses</option>
              {JOB_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s.replace("_", " ")} ({(b.summary[s] ?? 0).toLocaleString("en")})
                </option>
              ))}
            </Select>
            </div>
            <div className="w-72">
              <Input aria-label="Search hosts" placeholder="Search hosts…" className="h-9" value={searchText} onChange={(e) => setSearchText(e.target.value)} />
            </div>
          </>
        ) : null}
      </div>

      {view === "hosts" ? (
        <HostGrid batchId={b.batch_id} status={status} search={search} live={live} onOpen={setOpen} />
      ) : groups.isError ? (
        <ErrorState error={groups.error} onRetry={() => groups.refetch()} title="Could not group the output" />
      ) : groups.data ? (
        <OutputGroups data={groups.data} />
      ) : (
        <LoadingRows rows={3} label="Grouping output" />
      )}

      {open ? <HostOutputDialog cell={open} onClose={() => setOpen(null)} /> : null}
    </div>
  );
}

export default function BatchPage() {
  return (
    <React.Suspense fallback={<LoadingRows rows={4} />}>
      <BatchView />
    </React.Suspense>
  );
}
