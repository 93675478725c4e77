// queryOptions factories: each query's fetcher, with its key from
// query-keys.ts (the same keys the mutations invalidate).

import { queryOptions } from "@tanstack/react-query";
import { api } from "./api";
import { queryKeys, type JobFilters } from "./query-keys";
import type {
  Batch,
  CredentialDetail,
  CredentialList,
  Me,
  TrustedCaList,
  BatchGroups,
  DeliveryList,
  Job,
  JobLogs,
  JobList,
  NotificationTarget,
  RetentionPolicy,
  Schedule,
  ScheduleRun,
  ServerList,
  SystemCounts,
  SystemInfo,
  TargetList,
  Template,
  TokenList,
  Trigger,
  WorkerList,
} from "./types";
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

/** Grid page size of the batch page. */
export const BATCH_PAGE = 500;

/** A batch's counts, progress, ETA and policy, and its first host (for the title): polled while it runs. */
export const batchHeadQuery = (id: string) =>
  queryOptions({
    queryKey: queryKeys.batch.head(id),
    queryFn: ({ signal }) => api.get<Batch>(`/api/v1/batches/${encodeURIComponent(id)}`, { jobs: false, limit: 1 }, signal),
    refetchInterval: (q) => (q.state.data && !q.state.data.finished ? 2000 : false),
  });

/** One page of a batch's host grid (`status` / `search` filtered); refetched while the batch runs. */
export const batchPageQuery = (id: string, status: string, search: string, page: number, live: boolean) =>
  queryOptions({
    queryKey: queryKeys.batch.page(id, status, search, page),
    queryFn: ({ signal }) =>
      api.get<Batch>(`/api/v1/batches/${encodeURIComponent(id)}`, { jobs: false, status, search, offset: page * BATCH_PAGE, limit: BATCH_PAGE }, signal),
    refetchInterval: live ? 2000 : false,
    staleTime: live ? 0 : 60_000,
  });

/** Output grouped across hosts and the exit-code histogram: `GET /batches/{id}/groups`. */
export const batchGroupsQuery = (id: string, live: boolean) =>
  queryOptions({
    queryKey: queryKeys.batch.groups(id),
    queryFn: ({ signal }) => api.get<BatchGroups>(`/api/v1/batches/${encodeURIComponent(id)}/groups`, undefined, signal),
    refetchInterval: live ? 10_000 : false,
  });

export const jobLogsQuery = (id: string) =>
  queryOptions({
    queryKey: [...queryKeys.job.one(id), "logs"] as const,
    queryFn: ({ signal }) => api.get<JobLogs>(`/api/v1/jobs/${encodeURIComponent(id)}/logs`, undefined, signal),
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

/** Counts and limits (`max_batch_hosts`): `GET /system/info`. */
export const systemInfoQuery = () =>
  queryOptions({
    queryKey: queryKeys.systemInfo,
    queryFn: ({ signal }) => api.get<SystemCounts>("/api/v1/system/info", undefined, signal),
    staleTime: 60_000,
  });

const enc = encodeURIComponent;

export const templatesQuery = () =>
  queryOptions({
    queryKey: queryKeys.templates.all,
    queryFn: ({ signal }) => api.get<Template[]>("/api/v1/templates", undefined, signal),
  });

/** One template at its current version, or at `version`. */
export const templateQuery = (id: string, version?: number) =>
  queryOptions({
    queryKey: queryKeys.templates.one(id, version),
    queryFn: ({ signal }) => api.get<Template>(`/api/v1/templates/${enc(id)}`, { version }, signal),
  });

export const templateVersionsQuery = (id: string) =>
  queryOptions({
    queryKey: queryKeys.templates.versions(id),
    queryFn: ({ signal }) => api.get<Template[]>(`/api/v1/templates/${enc(id)}/versions`, undefined, signal),
  });

export const triggersQuery = (id: string) =>
  queryOptions({
    queryKey: queryKeys.templates.triggers(id),
    queryFn: ({ signal }) => api.get<Trigger[]>(`/api/v1/templates/${enc(id)}/triggers`, undefined, signal),
  });

export const schedulesQuery = () =>
  queryOptions({
    queryKey: queryKeys.schedules.all,
    queryFn: ({ signal }) => api.get<Schedule[]>("/api/v1/schedules", undefined, signal),
    refetchInterval: 30_000,
  });

export const scheduleQuery = (id: string) =>
  queryOptions({
    queryKey: queryKeys.schedules.one(id),
    queryFn: ({ signal }) => api.get<Schedule>(`/api/v1/schedules/${enc(id)}`, undefined, signal),
    refetchInterval: 30_000,
  });

export const scheduleRunsQuery = (id: string) =>
  queryOptions({
    queryKey: queryKeys.schedules.runs(id),
    queryFn: ({ signal }) => api.get<ScheduleRun[]>(`/api/v1/schedules/${enc(id)}/runs`, undefined, signal),
    refetchInterval: 15_000,
  });

export const notificationsQuery = () =>
  queryOptions({
    queryKey: queryKeys.notifications.all,
    queryFn: ({ signal }) => api.get<TargetList>("/api/v1/notifications", undefined, signal),
  });

export const notificationQuery = (id: string) =>
  queryOptions({
    queryKey: queryKeys.notifications.one(id),
    queryFn: ({ signal }) => api.get<NotificationTarget>(`/api/v1/notifications/${enc(id)}`, undefined, signal),
  });

/** The delivery log, newest first; polled while a delivery is still pending or sending. */
export const deliveriesQuery = (id: string) =>
  queryOptions({
    queryKey: queryKeys.notifications.deliveries(id),
    queryFn: ({ signal }) => api.get<DeliveryList>(`/api/v1/notifications/${enc(id)}/deliveries`, undefined, signal),
    refetchInterval: (q) => (q.state.data?.deliveries.some((d) => d.state === "pending" || d.state === "sending") ? 2000 : 10_000),
  });

export const retentionQuery = () =>
  queryOptions({
    queryKey: queryKeys.retention,
    queryFn: ({ signal }) => api.get<RetentionPolicy>("/api/v1/settings/retention", undefined, signal),
  });

export const credentialsQuery = () =>
  queryOptions({
    queryKey: queryKeys.credentials.all,
    queryFn: ({ signal }) => api.get<CredentialList>("/api/v1/credentials", undefined, signal),
  });

/** One credential with the names of the servers using it. */
export const credentialQuery = (id: string) =>
  queryOptions({
    queryKey: queryKeys.credentials.one(id),
    queryFn: ({ signal }) => api.get<CredentialDetail>(`/api/v1/credentials/${enc(id)}`, undefined, signal),
  });

export const trustedCasQuery = () =>
  queryOptions({
    queryKey: queryKeys.trustedCas,
    queryFn: ({ signal }) => api.get<TrustedCaList>("/api/v1/trusted-cas", undefined, signal),
  });

/** The signed-in token's role; it does not change while signed in. */
export const meQuery = () =>
  queryOptions({
    queryKey: queryKeys.me,
    queryFn: ({ signal }) => api.get<Me>("/api/v1/me", undefined, signal),
    staleTime: Infinity,
  });
