"use client";
import * as React from "react";
import { useRouter } from "next/navigation";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import { serversQuery } from "@/lib/queries";
import type { Job } from "@/lib/types";
import { isFinal } from "@/lib/types";
import { queryKeys } from "@/lib/query-keys";
import { Button } from "./ui/button";
import { Dialog } from "./ui/dialog";
import { Field, Input, Select } from "./ui/input";

/** Cancel / rerun / duplicate, with the API's message on failure. */
export function useJobActions() {
  const qc = useQueryClient();
  const router = useRouter();
  const done = (job: Job) => {
    qc.setQueryData(queryKeys.job.one(job.id), job);
    qc.invalidateQueries({ queryKey: queryKeys.jobs.all });
    qc.invalidateQueries({ queryKey: queryKeys.system });
  };
  const cancel = useMutation({
    mutationFn: (id: string) => api.post<Job>(`/api/v1/jobs/${encodeURIComponent(id)}/cancel`),
    onSuccess: done,
  });
  const rerun = useMutation({
    mutationFn: (id: string) => api.post<Job>(`/api/v1/jobs/${encodeURIComponent(id)}/rerun`),
    onSuccess: (job) => {
      done(job);
      router.push(`/jobs/view/?id=${job.id}`);
    },
  });
  const duplicate = useMutation({
    mutationFn: ({ id, body }: { id: string; body: { server_id?: string; timeout?: number; priority?: number } }) =>
      api.post<Job>(`/api/v1/jobs/${encodeURIComponent(id)}/duplicate`, body),
    onSuccess: (job) => {
      done(job);
      router.push(`/jobs/view/?id=${job.id}`);
    },
  });
  return { cancel, rerun, duplicate };
}

export function JobActionButtons({ job, size = "sm", onError }: { job: Job; size?: "sm" | "default"; onError: (e: unknown) => void }) {
  const { cancel, rerun } = useJobActions();
  const [dup, setDup] = React.useState(false);
  const running = !isFinal(job.status);
  return (
    <div className="flex gap-1">
      {running ? (
        <Button
          size={size}
          variant="destructive"
          disabled={cancel.isPending || job.cancel_requested}
          onClick={() => cancel.mutate(job.id, { onError })}
          aria-label={`Cancel job ${job.id}`}
        >
          {job.cancel_requested ? "Canceling…" : "Cancel"}
        </Button>
      ) : (
        <Button size={size} variant="outline" disabled={rerun.isPending} onClick={() => rerun.mutate(job.id, { onError })} aria-label={`Rerun job ${job.id}`}>
          Rerun
        </Button>
      )}
      <Button size={size} variant="ghost" onClick={() => setDup(true)} aria-label={`Duplicate job ${job.id}`}>
        Duplicate
      </Button>
      {dup ? <DuplicateDialog job={job} onClose={() => setDup(false)} /> : null}
    </div>
  );
}

export function DuplicateDialog({ job, onClose }: { job: Job; onClose: () => void }) {
  const { duplicate } = useJobActions();
  const servers = useQuery(serversQuery());
  const [serverId, setServerId] = React.useState(job.server_id);
  const [timeout, setTimeout_] = React.useState(String(job.timeout));
  const [priority, setPriority] = React.useState(String(job.priority));
  return (
    <Dialog open onClose={onClose} title="Duplicate job" description="Run the same command again, optionally on another server or with other limits.">
      <form
        className="grid gap-4"
        onSubmit={(e) => {
          e.preventDefault();
          duplicate.mutate({ id: job.id, body: { server_id: serverId, timeout: Number(timeout), priority: Number(priority) } }, { onSuccess: onClose });
        }}
      >
        <Field label="Server" htmlFor="dup-server">
          <Select id="dup-server" value={serverId} onChange={(e) => setServerId(e.target.value)}>
            {(servers.data?.servers ?? []).map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
            {!servers.data?.servers.some((s) => s.id === job.server_id) ? <option value={job.server_id}>{job.server_id}</option> : null}
          </Select>
        </Field>
        <div className="grid grid-cols-2 gap-4">
          <Field label="Timeout (s, 0 = none)" htmlFor="dup-timeout">
            <Input id="dup-timeout" type="number" min={0} value={timeout} onChange={(e) => setTimeout_(e.target.value)} />
          </Field>
          <Field label="Priority (1–10)" htmlFor="dup-priority">
            <Input id="dup-priority" type="number" min={1} max={10} value={priority} onChange={(e) => setPriority(e.target.value)} />
          </Field>
        </div>
        {duplicate.isError ? (
          <p role="alert" className="text-sm text-destructive">
            {(duplicate.error as Error).message}
          </p>
        ) : null}
        <div className="flex justify-end gap-2">
          <Button variant="outline" onClick={onClose}>
            Close
          </Button>
          <Button type="submit" disabled={duplicate.isPending}>
            Duplicate
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
