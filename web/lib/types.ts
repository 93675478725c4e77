// The API's shapes under the app's names. Every type is an alias onto
// api-types.gen.ts, generated from the API's OpenAPI document
// (scripts/gen-types.sh; CI fails when it drifts). Times are RFC 3339 strings.

import type { components } from "./api-types.gen";

type Schemas = components["schemas"];

export type JobStatus = Schemas["JobStatus"];
export type JobKind = Schemas["JobKind"];
export type Job = Schemas["Job"];
export type Pagination = Schemas["Pagination"];
export type JobList = Schemas["JobList"];
/** `POST /jobs` and `/jobs/script`: one job, or a batch for several servers. */
export type Created = Schemas["Created"];
export type Batch = Schemas["BatchView"];

export type Server = Schemas["Server"];
export type ServerList = Schemas["ServerList"];
/** One server's check (`POST /servers/{id}/test`, and each row of the bulk check). */
export type ServerCheck = Schemas["CheckResult"];
export type BulkStatus = Schemas["BulkStatus"];
export type PemFile = Schemas["PemFile"];

export type Worker = Schemas["WorkerInfo"];
export type WorkerList = Schemas["WorkerList"];
export type ThroughputPoint = Schemas["MinutePoint"];
/** `GET /system/enhanced`: the overview's counts plus per-minute throughput. */
export type SystemInfo = Schemas["SystemEnhanced"];
/** `GET /system/info`: the counts and the API's limits (`max_batch_hosts`). */
export type SystemCounts = Schemas["SystemInfo"];
export type BatchCell = Schemas["BatchCell"];
export type BatchGroups = Schemas["BatchGroups"];
export type OutputGroup = Schemas["OutputGroup"];
export type JobLogs = Schemas["Logs"];

export type ApiToken = Schemas["TokenRow"];
/** A new token: the secret is in `token`, shown once. */
export type TokenCreated = Schemas["TokenCreated"];
export type TokenList = Schemas["TokenList"];

/** Every job status, in the order the dashboard lists them. */
export const JOB_STATUSES = ["queued", "running", "completed", "failed", "canceled", "timed_out"] as const satisfies readonly JobStatus[];
// Fails to compile when the API adds a status this list lacks.
type Missing = Exclude<JobStatus, (typeof JOB_STATUSES)[number]>;
const _everyStatus: [Missing] extends [never] ? true : Missing = true;
void _everyStatus;

export const isFinal = (s: JobStatus | string | undefined) => !!s && s !== "queued" && s !== "running";

// Recurring work: templates, schedules, notifications, retention (issue 13).
export type ParamType = Schemas["ParamType"];
export type ParamSpec = Schemas["ParamSpec"];
export type Targets = Schemas["Targets"];
export type TemplateDef = Schemas["TemplateDef"];
/** A template at one version (`GET /templates/{id}`, `?version=`). */
export type Template = Schemas["TemplateRow"];
export type Trigger = Schemas["TriggerRow"];
/** A new trigger: the token is in `token`, shown once. */
export type TriggerCreated = Schemas["TriggerCreated"];
export type Overlap = Schemas["Overlap"];
/** A schedule with its cron in words and its next 5 run times. */
export type Schedule = Schemas["ScheduleView"];
export type ScheduleBody = Schemas["ScheduleBody"];
export type ScheduleRun = Schemas["ScheduleRun"];
export type NotificationTarget = Schemas["TargetView"];
export type NotificationTargetCreated = Schemas["TargetCreated"];
export type NotificationTargetBody = Schemas["TargetBody"];
export type TargetList = Schemas["TargetList"];
export type Delivery = Schemas["Delivery"];
export type DeliveryAttempt = Schemas["Attempt"];
export type DeliveryList = Schemas["DeliveryList"];
export type RetentionPolicy = Schemas["RetentionPolicy"];

/** The events a notification target can subscribe to (the API's `EVENTS`). */
export const NOTIFY_EVENTS = [
  "job.completed",
  "job.failed",
  "job.timed_out",
  "job.canceled",
  "batch.finished",
  "schedule.skipped",
  "host_key.mismatch",
  "worker.down",
] as const;
/** Job statuses a target's filter can name: the final ones. */
export const FINAL_STATUSES = ["completed", "failed", "timed_out", "canceled"] as const satisfies readonly JobStatus[];

// Connectivity (issue 12): shared credentials and trusted certificate authorities.
/** A credential without its secrets (`GET /credentials`). */
export type Credential = Schemas["CredentialView"];
/** One credential with the names of the servers that use it (`GET /credentials/{id}`). */
export type CredentialDetail = Schemas["CredentialDetail"];
export type CredentialList = Schemas["CredentialList"];
export type CredentialBody = Schemas["CredentialBody"];
export type CertificateInfo = Schemas["CertificateInfo"];
export type TrustedCa = Schemas["TrustedCa"];
export type TrustedCaList = Schemas["TrustedCaList"];
/** The calling token's role (`GET /me`). */
export type Me = Schemas["Me"];
