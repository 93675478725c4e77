"use client";
// One host's output of a batch, fetched only when asked for (`GET /jobs/{id}/logs`).
import * as React from "react";
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { jobLogsQuery } from "@/lib/queries";
import type { BatchCell } from "@/lib/types";
import { ErrorState, LoadingRows } from "@/components/states";
import { JobStatusBadge } from "@/components/status-badge";
import { Dialog } from "@/components/ui/dialog";

export function HostOutputDialog({ cell, onClose }: { cell: BatchCell; onClose: () => void }) {
  const logs = useQuery(jobLogsQuery(cell.job_id));
  const name = cell.server_name ?? cell.server_id;
  return (
    <Dialog open onClose={onClose} title={`Output: ${name}`} description={<span className="font-mono text-xs">job {cell.job_id}</span>} className="max-w-3xl">
      {logs.isError ? (
        <ErrorState error={logs.error} title="Could not load the output" />
      ) : !logs.data ? (
        <LoadingRows rows={3} label="Loading output" />
      ) : (
        <div className="grid gap-2" data-testid="host-output">
          <div className="flex flex-wrap items-center gap-3 text-sm">
            <JobStatusBadge status={logs.data.status} />
            <span>exit {logs.data.exit_code ?? "—"}</span>
            {logs.data.exit_signal ? <span>signal {logs.data.exit_signal}</span> : null}
            {logs.data.truncated ? <span className="text-xs text-amber-700">output truncated</span> : null}
          </div>
          {logs.data.error ? <p className="text-sm text-destructive">{logs.data.error}</p> : null}
          <pre className="max-h-80 overflow-auto rounded bg-muted p-2 font-mono text-xs" aria-label="stdout">
            {logs.data.stdout || <span className="italic text-muted-foreground">no stdout</span>}
          </pre>
          {logs.data.stderr ? (
            <pre className="max-h-60 overflow-auto rounded bg-red-500/10 p-2 font-mono text-xs" aria-label="stderr">
              {logs.data.stderr}
            </pre>
          ) : null}
        </div>
      )}
      <div className="mt-3 text-right text-sm">
        <Link className="text-primary hover:underline" href={`/jobs/view/?id=${cell.job_id}`}>
          Open the job page
        </Link>
      </div>
    </Dialog>
  );
}
