// queryOptions factories: one place for each query's key and fetcher, so
// pages and mutations agree on what to invalidate.

import { queryOptions } from "@tanstack/react-query";
import { api, ApiError } from "./api";
import type { ApiToken, Batch, Job, JobList, JobStatus, PemFile, Server, ServerStatus, SystemInfo, Worker } from "./types";
import { JOB_STATUSES, isFinal } from "./types";

export interface JobFilters {
  page: number;
  limit: number;
  status?: string;
  server_id?: string;
  search?: string;
  sort_by?: string;
  sort_order?: "asc" | "desc";
  /** RFC 3339 bounds on created_at. */
  created_after?: string;
  created_before?: string;
}

export const jobsQuery = (f: JobFilters) =>
  queryOptions({
    queryKey: ["jobs", f],
    queryFn: ({ signal }) => api.get<JobList>("/api/v1/jobs", { ...f }, signal),
    placeholderData: (prev) => prev,
  });

export const jobQuery = (id: string) =>
  queryOptions({
    queryKey: ["job", id],
    queryFn: ({ signal }) => api.get<Job>(`/api/v1/jobs/${encodeURIComponent(id)}`, undefined, signal),
    refetchInterval: (q) => (q.state.data && !isFinal(q.state.data.status) ? 5000 : false),
  });

/** The batch grid: `/batches/{id}`, or the jobs list filtered by batch when that route is missing. */
export const batchQuery = (id: string) =>
  queryOptions({
    queryKey: ["batch", id],
    queryFn: async ({ signal }): Promise<Batch> => {
      try {
        return await api.get<Batch>(`/api/v1/batches/${encodeURIComponent(id)}`, undefined, signal);
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 404 || e.code !== "not_found" || !/route/.test(e.message)) throw e;
        const list = await api.get<JobList>("/api/v1/jobs", { batch_id: id, limit: 200, sort_by: "created_at", sort_order: "asc" }, signal);
        const summary: Batch["summary"] = {};
        for (const j of list.jobs) summary[j.status] = (summary[j.status] ?? 0) + 1;
        return { batch_id: id, jobs: list.jobs, summary };
      }
    },
    refetchInterval: (q) => (q.state.data?.jobs.some((j) => !isFinal(j.status)) ? 3000 : false),
  });

export const serversQuery = () =>
  queryOptions({
    queryKey: ["servers"],
    queryFn: ({ signal }) => api.get<{ servers: Server[]; total: number }>("/api/v1/servers", undefined, signal),
    staleTime: 10_000,
  });

export const serverStatusQuery = () =>
  queryOptions({
    queryKey: ["servers", "status"],
    queryFn: ({ signal }) => api.get<{ servers: ServerStatus[] }>("/api/v1/servers/status", undefined, signal),
    enabled: false,
  });

export const pemFilesQuery = () =>
  queryOptions({
    queryKey: ["pem-files"],
    queryFn: ({ signal }) => api.get<{ pem_files: PemFile[] }>("/api/v1/pem-files", undefined, signal),
  });

export const workersQuery = () =>
  queryOptions({
    queryKey: ["workers"],
    queryFn: ({ signal }) => api.get<{ workers: Worker[] }>("/api/v1/workers", undefined, signal),
    refetchInterval: 10_000,
  });

export const tokensQuery = () =>
  queryOptions({
    queryKey: ["tokens"],
    queryFn: ({ signal }) => api.get<{ tokens: ApiToken[] }>("/api/v1/tokens", undefined, signal),
  });

/**
 * Overview numbers: `/system/enhanced` (with throughput). While that route is
 * missing, counts come from the jobs list's totals and workers/servers lists.
 */
export const systemQuery = () =>
  queryOptions({
    queryKey: ["system"],
    queryFn: async ({ signal }): Promise<SystemInfo & { derived?: boolean }> => {
      try {
        return await api.get<SystemInfo>("/api/v1/system/enhanced", undefined, signal);
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 404) throw e;
      }
      const [totals, workers, servers] = await Promise.all([
        Promise.all(
          JOB_STATUSES.map((s) =>
            api.get<JobList>("/api/v1/jobs", { status: s, limit: 1 }, signal).then((l) => [s, l.pagination.total] as const),
          ),
        ),
        api.get<{ workers: Worker[] }>("/api/v1/workers", undefined, signal),
        api.get<{ servers: Server[] }>("/api/v1/servers", undefined, signal),
      ]);
      const by_status = Object.fromEntries(totals) as Record<JobStatus, number>;
      const done = by_status.completed + by_status.failed + by_status.timed_out;
      return {
        version: "",
        derived: true,
        jobs: { total: totals.reduce((a, [, n]) => a + n, 0), by_status },
        servers: { total: servers.servers.length, active: servers.servers.filter((s) => s.is_active).length },
        workers: { up: workers.workers.filter((w) => w.up).length, down: workers.workers.filter((w) => !w.up).length },
        queue_depth: by_status.queued,
        success_rate: done ? by_status.completed / done : null,
      };
    },
    refetchInterval: 15_000,
  });
