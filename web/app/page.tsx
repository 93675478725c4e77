"use client";
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { serversQuery, systemQuery, workersQuery } from "@/lib/queries";
import { JOB_STATUSES } from "@/lib/types";
import { isReachable } from "@/lib/format";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { JobStatusBadge } from "@/components/status-badge";
import { ThroughputChart } from "@/components/throughput-chart";
import { Skeleton } from "@/components/ui/skeleton";

function Stat({ label, value, hint, href }: { label: string; value: React.ReactNode; hint?: React.ReactNode; href?: string }) {
  const body = (
    <Card className="h-full transition-colors hover:border-ring/50">
      <CardHeader>
        <CardTitle className="text-muted-foreground">{label}</CardTitle>
      </CardHeader>
      <CardContent>
        <div className="text-3xl font-semibold tabular-nums">{value}</div>
        {hint ? <div className="mt-1 text-xs text-muted-foreground">{hint}</div> : null}
      </CardContent>
    </Card>
  );
  return href ? <Link href={href}>{body}</Link> : body;
}

export default function OverviewPage() {
  const sys = useQuery(systemQuery());
  const workers = useQuery(workersQuery());
  const servers = useQuery(serversQuery());
  const d = sys.data;
  const reachable = servers.data?.servers.filter((s) => isReachable(s.last_status)).length;
  return (
    <div>
      <PageHeader title="Overview" description={d?.version ? `Remora ${d.version}` : "Jobs, queue, workers and servers at a glance."} />
      {sys.isError ? <ErrorState error={sys.error} onRetry={() => sys.refetch()} /> : null}
      <div className="grid grid-cols-2 gap-4 lg:grid-cols-4">
        {sys.isPending ? (
          Array.from({ length: 4 }, (_, i) => <Skeleton key={i} className="h-28" />)
        ) : d ? (
          <>
            <Stat label="Jobs" value={d.jobs.total} href="/jobs/" hint={d.success_rate == null ? "no finished jobs yet" : `${(d.success_rate * 100).toFixed(1)}% success`} />
            <Stat label="Queue depth" value={d.queue_depth ?? "—"} href="/jobs/?status=queued" hint="jobs waiting for a worker" />
            <Stat
              label="Workers"
              value={
                <span>
                  {d.workers.up}
                  <span className="text-base font-normal text-muted-foreground"> up</span>
                  {d.workers.down ? <span className="text-base font-normal text-destructive"> · {d.workers.down} down</span> : null}
                </span>
              }
              href="/workers/"
            />
            <Stat
              label="Servers"
              value={
                <span>
                  {reachable ?? "—"}
                  <span className="text-base font-normal text-muted-foreground"> / {d.servers.total} reachable</span>
                </span>
              }
              hint={`${d.servers.active} active · from the last check`}
              href="/servers/"
            />
          </>
        ) : null}
      </div>
      <div className="mt-4 grid gap-4 lg:grid-cols-3">
        <Card className="lg:col-span-2">
          <CardHeader>
            <CardTitle>Jobs per minute, last hour</CardTitle>
          </CardHeader>
          <CardContent>
            {sys.isPending ? (
              <Skeleton className="h-40" />
            ) : d?.throughput ? (
              <ThroughputChart points={d.throughput} />
            ) : (
              <p className="py-12 text-center text-sm text-muted-foreground">
                Throughput needs <code>/api/v1/system/enhanced</code>, which this API does not serve.
              </p>
            )}
          </CardContent>
        </Card>
        <Card>
          <CardHeader>
            <CardTitle>Jobs by status</CardTitle>
          </CardHeader>
          <CardContent>
            {d ? (
              <ul className="space-y-2">
                {JOB_STATUSES.map((s) => (
                  <li key={s} className="flex items-center justify-between">
                    <Link href={`/jobs/?status=${s}`} className="hover:underline">
                      <JobStatusBadge status={s} />
                    </Link>
                    <span className="tabular-nums">{d.jobs.by_status[s] ?? 0}</span>
                  </li>
                ))}
              </ul>
            ) : (
              <LoadingRows rows={6} />
            )}
          </CardContent>
        </Card>
      </div>
      <Card className="mt-4">
        <CardHeader>
          <CardTitle>Workers</CardTitle>
        </CardHeader>
        <CardContent>
          {workers.isError ? (
            <ErrorState error={workers.error} />
          ) : !workers.data ? (
            <LoadingRows rows={2} />
          ) : workers.data.workers.length === 0 ? (
            <p className="text-sm text-muted-foreground">No worker has registered. Start one with <code>remora-worker</code> or <code>remora up</code>.</p>
          ) : (
            <ul className="flex flex-wrap gap-3">
              {workers.data.workers.map((w) => (
                <li key={w.id} className="flex items-center gap-2 rounded-md border px-3 py-2 text-sm">
                  <span className={w.up ? "h-2 w-2 rounded-full bg-emerald-500" : "h-2 w-2 rounded-full bg-red-500"} aria-hidden />
                  <span className="font-mono text-xs">{w.hostname}</span>
                  <span className="text-muted-foreground">
                    {w.running}/{w.concurrency} running · {w.up ? "up" : "down"}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </CardContent>
      </Card>
    </div>
  );
}
