// Shapes returned by remora-api (/api/v1). Times are RFC 3339 strings.

export const JOB_STATUSES = ["queued", "running", "completed", "failed", "canceled", "timed_out"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const isFinal = (s: JobStatus | string | undefined) => !!s && s !== "queued" && s !== "running";

export interface Job {
  id: string;
  kind: "command" | "script";
  command: string | null;
  args: string[];
  script: string | null;
  shell: string | null;
  server_id: string;
  batch_id: string | null;
  status: JobStatus;
  priority: number;
  timeout: number;
  exit_code: number | null;
  exit_signal: string | null;
  error: string | null;
  error_code: string | null;
  attempt: number;
  max_retries: number;
  worker_id: string | null;
  cancel_requested: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  stdout_bytes: number;
  stderr_bytes: number;
  truncated: boolean;
}

export interface Pagination {
  page: number;
  limit: number;
  /** Counted up to the server's cap; `total_exact` false means "at least". */
  total: number;
  total_exact?: boolean;
  total_pages: number;
  has_next: boolean;
  has_prev: boolean;
}

export interface JobList {
  jobs: Job[];
  pagination: Pagination;
}

export interface Server {
  id: string;
  name: string;
  hostname: string;
  port: number;
  user: string;
  auth_type: "password" | "key";
  is_active: boolean;
  tags: string[];
  max_concurrency: number;
  host_key_fingerprint: string | null;
  has_password: boolean;
  has_private_key: boolean;
  pem_file_id: string | null;
  last_status: string | null;
  last_checked_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface ServerTest {
  ok: boolean;
  latency_ms: number | null;
  host_key_fingerprint: string | null;
  host_key_status: "pinned" | "new" | "mismatch" | null;
  error: string | null;
  error_code: string | null;
}

export interface ServerStatus {
  server_id: string;
  name: string;
  status: string;
  latency_ms: number | null;
  error: string | null;
  checked_at: string | null;
}

export interface PemFile {
  id: string;
  key_type: string;
  fingerprint: string;
  size: number;
  created_at: string;
}

export interface Worker {
  id: string;
  hostname: string;
  version: string;
  concurrency: number;
  running: number;
  started_at: string;
  last_heartbeat_at: string;
  status: string;
  up: boolean;
}

export interface ThroughputPoint {
  minute: string;
  completed: number;
  /** failed + timed_out */
  failed: number;
  canceled?: number;
  total: number;
}

export interface SystemInfo {
  version: string;
  jobs: { total: number; by_status: Partial<Record<JobStatus, number>> };
  servers: { total: number; active: number };
  workers: { up: number; down: number };
  queue_depth: number | null;
  success_rate: number | null;
  throughput?: ThroughputPoint[];
}

export interface Batch {
  batch_id: string;
  jobs: Job[];
  summary: Partial<Record<JobStatus, number>>;
}

export interface ApiToken {
  id: string;
  name: string;
  role: string;
  created_at: string;
  revoked_at?: string | null;
  token?: string;
}
