"use client";
import * as React from "react";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { batchQuery, serversQuery } from "@/lib/queries";
import { formatDuration, jobDurationMs, jobLabel } from "@/lib/format";
import { JOB_STATUSES } from "@/lib/types";
import { ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { JobStatusBadge } from "@/components/status-badge";
import { Card } from "@/components/ui/card";

function BatchView() {
  const id = useSearchParams().get("id");
  const batch = useQuery({ ...batchQuery(id ?? ""), enabled: !!id });
  const servers = useQuery(serversQuery());
  if (!id) return <ErrorState error={new Error("No batch id in the address (expected /batches/view/?id=…).")} />;
  if (batch.isError) return <ErrorState error={batch.error} onRetry={() => batch.refetch()} title="Could not load the batch" />;
  if (!batch.data) return <LoadingRows rows={4} label="Loading batch" />;
  const b = batch.data;
  const name = (sid: string) => servers.data?.servers.find((s) => s.id === sid)?.name ?? sid.slice(0, 8);
  return (
    <div>
      <div className="mb-2 text-sm text-muted-foreground">
        <Link href="/jobs/" className="hover:underline">
          Jobs
        </Link>{" "}
        / batch
      </div>
      <PageHeader
        title={b.jobs[0] ? jobLabel(b.jobs[0]) : "Batch"}
        description={
          <span className="flex flex-wrap items-center gap-2">
            <span className="font-mono text-xs">{b.batch_id}</span>·<span>{b.jobs.length} servers</span>
            {JOB_STATUSES.filter((s) => b.summary[s]).map((s) => (
              <span key={s} className="flex items-center gap-1">
                <JobStatusBadge status={s} /> {b.summary[s]}
              </span>
            ))}
          </span>
        }
      />
      <ul className="grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-3 xl:grid-cols-4" aria-label="Servers in this batch">
        {b.jobs.map((j) => (
          <li key={j.id}>
            <Link href={`/jobs/view/?id=${j.id}`} className="block focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring">
              <Card className="p-4 transition-colors hover:border-ring/60">
                <div className="flex items-center justify-between gap-2">
                  <span className="truncate font-medium">{name(j.server_id)}</span>
                  <JobStatusBadge status={j.status} />
                </div>
                <div className="mt-2 flex justify-between text-xs text-muted-foreground">
                  <span>exit {j.exit_code ?? "—"}</span>
                  <span>{formatDuration(jobDurationMs(j))}</span>
                </div>
                {j.error ? <p className="mt-2 line-clamp-2 text-xs text-destructive">{j.error}</p> : null}
              </Card>
            </Link>
          </li>
        ))}
      </ul>
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
