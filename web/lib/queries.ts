// queryOptions factories: each query's fetcher, with its key from
// query-keys.ts (the same keys the mutations invalidate).

import { queryOptions } from "@tanstack/react-query";
import { api } from "./api";
import { queryKeys, type JobFilters } from "./query-keys";
import type { Batch, Job, JobList, ServerList, SystemInfo, TokenList, WorkerList } from "./types";
import { isFinal } from "./types";

export type { JobFilters } from "./query-keys";

/** One page of `GET /jobs` (also the CSV export's fetcher). */
export const fetchJobs = (f: JobFilters, signal?: AbortSignal) => api.get<JobList>("/api/v1/jobs", { ...f }, signal);

export const jobsQuery = (f: JobFilters) =>
  queryOptions({
    queryKey: queryKeys.jobs.list(f),
    queryFn: ({ signal }) => fetchJobs(f, signal),
    placeholderData: (prev) => prev,
  });

export const jobQuery = (id: string) =>
  queryOptions({
    queryKey: queryKeys.job.one(id),
    queryFn: ({ signal }) => api.get<Job>(`/api/v1/jobs/${encodeURIComponent(id)}`, undefined, signal),
    refetchInterval: (q) => (q.state.data && !isFinal(q.state.data.status) ? 5000 : false),
  });

/** The batch grid: `GET /batches/{id}`. */
export const batchQuery = (id: string) =>
  queryOptions({
    queryKey: queryKeys.batch.one(id),
    queryFn: ({ signal }) => api.get<Batch>(`/api/v1/batches/${encodeURIComponent(id)}`, undefined, signal),
    refetchInterval: (q) => (q.state.data?.jobs.some((j) => !isFinal(j.status)) ? 3000 : false),
  });

export const serversQuery = () =>
  queryOptions({
    queryKey: queryKeys.servers,
    queryFn: ({ signal }) => api.get<ServerList>("/api/v1/servers", undefined, signal),
    staleTime: 10_000,
  });

export const workersQuery = () =>
  queryOptions({
    queryKey: queryKeys.workers,
    queryFn: ({ signal }) => api.get<WorkerList>("/api/v1/workers", undefined, signal),
    refetchInterval: 10_000,
  });

export const tokensQuery = () =>
  queryOptions({
    queryKey: queryKeys.tokens,
    queryFn: ({ signal }) => api.get<TokenList>("/api/v1/tokens", undefined, signal),
  });

/** Overview numbers with the per-minute throughput: `GET /system/enhanced`. */
export const systemQuery = () =>
  queryOptions({
    queryKey: queryKeys.system,
    queryFn: ({ signal }) => api.get<SystemInfo>("/api/v1/system/enhanced", undefined, signal),
    refetchInterval: 15_000,
  });
