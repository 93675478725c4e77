"use client";
import * as React from "react";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { download } from "@/lib/api";
import { jobQuery, serversQuery } from "@/lib/queries";
import { formatBytes, formatDuration, formatTime, jobDurationMs, jobLabel } from "@/lib/format";
import { isFinal } from "@/lib/types";
import { useJobStream } from "@/lib/use-job-stream";
import { JobActionButtons } from "@/components/job-actions";
import { LogViewer, type LogTab } from "@/components/log-viewer";
import { ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { JobStatusBadge } from "@/components/status-badge";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardTitle } from "@/components/ui/card";
import { Tabs } from "@/components/ui/tabs";

function Meta({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div>
      <dt className="text-xs text-muted-foreground">{label}</dt>
      <dd className="mt-0.5 break-words text-sm">{children}</dd>
    </div>
  );
}

function useNow(active: boolean) {
  const [now, setNow] = React.useState(() => Date.now());
  React.useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

function JobView() {
  const id = useSearchParams().get("id");
  const job = useQuery({ ...jobQuery(id ?? ""), enabled: !!id });
  const servers = useQuery(serversQuery());
  const stream = useJobStream(id);
  const [tab, setTab] = React.useState<LogTab>("combined");
  const [follow, setFollow] = React.useState(true);
  const [actionError, setActionError] = React.useState<unknown>(null);
  const j = job.data;
  const now = useNow(!!j && !isFinal(j.status));

  React.useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (e.key === "f" && !/^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) && !e.ctrlKey && !e.metaKey) setFollow((f) => !f);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  if (!id) return <ErrorState error={new Error("No job id in the address (expected /jobs/view/?id=…).")} />;
  if (job.isError) return <ErrorState error={job.error} onRetry={() => job.refetch()} title="Could not load the job" />;
  if (!j) return <LoadingRows rows={6} label="Loading job" />;
  const server = servers.data?.servers.find((s) => s.id === j.server_id);
  const m = stream.model;

  return (
    <div>
      <div className="mb-2 text-sm text-muted-foreground">
        <Link href="/jobs/" className="hover:underline">
          Jobs
        </Link>
        {j.batch_id ? (
          <>
            {" / "}
            <Link href={`/batches/view/?id=${j.batch_id}`} className="hover:underline">
              batch {j.batch_id.slice(0, 8)}
            </Link>
          </>
        ) : null}
      </div>
      <PageHeader
        title={jobLabel(j) || "Job"}
        description={
          <span className="flex flex-wrap items-center gap-2">
            <JobStatusBadge status={j.status} />
            <span className="font-mono text-xs">{j.id}</span>
            {j.truncated ? <Badge tone="amber">output truncated</Badge> : null}
            {j.cancel_requested && !isFinal(j.status) ? <Badge tone="amber">cancel requested</Badge> : null}
          </span>
        }
        actions={<JobActionButtons job={j} size="default" onError={setActionError} />}
      />
      {actionError ? (
        <div className="mb-4">
          <ErrorState error={actionError} title="The action failed" />
        </div>
      ) : null}
      {j.error ? (
        <div role="alert" className="mb-4 rounded-md border border-destructive/40 bg-destructive/5 p-3 text-sm">
          <span className="font-medium text-destructive">{j.error_code ?? "error"}: </span>
          {j.error}
        </div>
      ) : null}
      <Card className="mb-4">
        <CardContent className="pt-4">
          <dl className="grid grid-cols-2 gap-4 md:grid-cols-4 xl:grid-cols-6">
            <Meta label="Server">{server ? <span>{server.name} <span className="text-muted-foreground">({server.user}@{server.hostname})</span></span> : j.server_id}</Meta>
            <Meta label="Exit code">
              <span data-testid="exit-code">{j.exit_code ?? "—"}</span>
            </Meta>
            <Meta label="Signal">{j.exit_signal ?? "—"}</Meta>
            <Meta label="Duration">{formatDuration(jobDurationMs(j, now))}</Meta>
            <Meta label="Created">{formatTime(j.created_at)}</Meta>
            <Meta label="Started">{formatTime(j.started_at)}</Meta>
            <Meta label="Finished">{formatTime(j.finished_at)}</Meta>
            <Meta label="Worker">{j.worker_id ? <span className="font-mono text-xs">{j.worker_id}</span> : "—"}</Meta>
            <Meta label="Attempt">
              {j.attempt} of {j.max_retries + 1}
            </Meta>
            <Meta label="Priority">{j.priority}</Meta>
            <Meta label="Timeout">{j.timeout ? `${j.timeout} s` : "none"}</Meta>
            <Meta label="Output">
              {formatBytes(j.stdout_bytes)} out · {formatBytes(j.stderr_bytes)} err
            </Meta>
          </dl>
          {j.kind === "script" ? (
            <details className="mt-4">
              <summary className="cursor-pointer text-sm font-medium">Script ({j.shell})</summary>
              <pre className="mt-2 max-h-64 overflow-auto rounded-md bg-muted p-3 font-mono text-xs">{j.script}</pre>
            </details>
          ) : null}
        </CardContent>
      </Card>
      <Card>
        <div className="flex flex-wrap items-center justify-between gap-2 p-4 pb-2">
          <CardTitle className="flex items-center gap-2">
            Output
            {stream.connected && !stream.ended ? <Badge tone="blue">live</Badge> : null}
          </CardTitle>
          <div className="flex flex-wrap items-center gap-2">
            <Tabs
              label="Output stream"
              value={tab}
              onChange={setTab}
              items={[
                { value: "combined", label: `Combined (${m.combined.length})` },
                { value: "stdout", label: `stdout (${m.stdout.length})` },
                { value: "stderr", label: `stderr (${m.stderr.length})` },
              ]}
            />
            <label className="flex items-center gap-2 text-sm">
              <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} className="h-4 w-4 accent-[hsl(var(--primary))]" />
              Follow
            </label>
            <Button size="sm" variant="outline" onClick={() => download(`/api/v1/jobs/${j.id}/stdout`, `${j.id}.stdout.txt`).catch(setActionError)}>
              Download stdout
            </Button>
            <Button size="sm" variant="outline" onClick={() => download(`/api/v1/jobs/${j.id}/stderr`, `${j.id}.stderr.txt`).catch(setActionError)}>
              Download stderr
            </Button>
          </div>
        </div>
        <CardContent>
          {stream.error ? (
            <div className="mb-2">
              <ErrorState error={stream.error} title="The live stream is unavailable" />
            </div>
          ) : null}
          <LogViewer
            model={m}
            version={stream.version}
            tab={tab}
            follow={follow}
            onFollowChange={setFollow}
            height="min(65vh, 640px)"
            emptyText={isFinal(j.status) ? (stream.ended ? "This job printed nothing." : "Loading output…") : "Waiting for output…"}
          />
          {j.truncated ? (
            <p className="mt-2 text-xs text-amber-700 dark:text-amber-300">
              The output reached the per-job cap and was truncated; the stored copy ends at the truncation marker.
            </p>
          ) : null}
        </CardContent>
      </Card>
    </div>
  );
}

export default function JobPage() {
  return (
    <React.Suspense fallback={<LoadingRows rows={6} />}>
      <JobView />
    </React.Suspense>
  );
}
