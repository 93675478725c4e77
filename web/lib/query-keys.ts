// The one place query keys are spelled: every query's key and every
// invalidation come from here. Keys nest, so invalidating a prefix (e.g.
// `queryKeys.jobs.all`) reaches every list under it.

/** Query string of the jobs list (`GET /api/v1/jobs`). */
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

export const queryKeys = {
  jobs: {
    /** Every jobs list, whatever its filters. */
    all: ["jobs"] as const,
    list: (f: JobFilters) => ["jobs", f] as const,
  },
  job: {
    /** Every single-job query. */
    all: ["job"] as const,
    one: (id: string) => ["job", id] as const,
  },
  batch: {
    all: ["batch"] as const,
    one: (id: string) => ["batch", id] as const,
    /** Counts, progress and policy without the jobs (what the batch page polls). */
    head: (id: string) => ["batch", id, "head"] as const,
    /** One page of the host grid under a filter. */
    page: (id: string, status: string, search: string, page: number) => ["batch", id, "page", status, search, page] as const,
    groups: (id: string) => ["batch", id, "groups"] as const,
  },
  servers: ["servers"] as const,
  workers: ["workers"] as const,
  tokens: ["tokens"] as const,
  system: ["system"] as const,
  systemInfo: ["system", "info"] as const,
  templates: {
    all: ["templates"] as const,
    one: (id: string, version?: number) => ["templates", id, version ?? "current"] as const,
    versions: (id: string) => ["templates", id, "versions"] as const,
    triggers: (id: string) => ["templates", id, "triggers"] as const,
  },
  schedules: {
    all: ["schedules"] as const,
    one: (id: string) => ["schedules", id] as const,
    runs: (id: string) => ["schedules", id, "runs"] as const,
  },
  notifications: {
    all: ["notifications"] as const,
    one: (id: string) => ["notifications", id] as const,
    deliveries: (id: string) => ["notifications", id, "deliveries"] as const,
  },
  retention: ["retention"] as const,
  credentials: {
    all: ["credentials"] as const,
    one: (id: string) => ["credentials", id] as const,
  },
  trustedCas: ["trusted-cas"] as const,
  me: ["me"] as const,
};
