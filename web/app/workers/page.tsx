"use client";
import { useQuery } from "@tanstack/react-query";
import { workersQuery } from "@/lib/queries";
import { formatTime, relativeTime } from "@/lib/format";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Badge } from "@/components/ui/badge";
import { Table, Td, Th } from "@/components/ui/table";

export default function WorkersPage() {
  const q = useQuery(workersQuery());
  const workers = q.data?.workers ?? [];
  return (
    <div>
      <PageHeader title="Workers" description="Processes that reserve jobs from the queue and run them over SSH. A worker is down when its heartbeat stops." />
      {q.isError ? (
        <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load workers" />
      ) : q.isPending ? (
        <LoadingRows rows={3} label="Loading workers" />
      ) : workers.length === 0 ? (
        <EmptyState title="No workers">Start one with remora-worker, or run remora up.</EmptyState>
      ) : (
        <Table aria-label="Workers">
          <thead>
            <tr>
              <Th>State</Th>
              <Th>Host</Th>
              <Th>Id</Th>
              <Th>Version</Th>
              <Th>Running</Th>
              <Th>Started</Th>
              <Th>Last heartbeat</Th>
            </tr>
          </thead>
          <tbody>
            {workers.map((w) => (
              <tr key={w.id}>
                <Td>{w.up ? <Badge tone="green">up</Badge> : <Badge tone="red">{w.status === "up" ? "down (no heartbeat)" : w.status}</Badge>}</Td>
                <Td className="font-medium">{w.hostname}</Td>
                <Td className="font-mono text-xs">{w.id}</Td>
                <Td>{w.version}</Td>
                <Td className="tabular-nums">
                  {w.running} / {w.concurrency}
                  <div className="mt-1 h-1.5 w-24 rounded bg-muted" aria-hidden>
                    <div className="h-1.5 rounded bg-primary" style={{ width: `${Math.min(100, (w.running / Math.max(w.concurrency, 1)) * 100)}%` }} />
                  </div>
                </Td>
                <Td className="text-xs">{formatTime(w.started_at)}</Td>
                <Td className="text-xs" title={formatTime(w.last_heartbeat_at)}>
                  {relativeTime(w.last_heartbeat_at)}
                </Td>
              </tr>
            ))}
          </tbody>
        </Table>
      )}
    </div>
  );
}
