// The jobs page's state outside React: its URL query string, the date
// inputs' local days as RFC 3339 bounds, and the paged fetch behind the CSV export.

import type { JobFilters } from "./query-keys";
import type { Job, JobList } from "./types";

export const SORTABLE = ["created_at", "started_at", "finished_at", "priority", "status"] as const;
export type SortKey = (typeof SORTABLE)[number];

/** What the jobs page keeps in its URL: the list's filters plus the date inputs' days. */
export interface JobsUrlState extends Omit<JobFilters, "created_after" | "created_before"> {
  /** `YYYY-MM-DD`, a local day. */
  from?: string;
  to?: string;
}

export const DEFAULT_LIMIT = 25;

export function readJobsUrl(sp: URLSearchParams): JobsUrlState {
  return {
    page: Math.max(1, Number(sp.get("page")) || 1),
    limit: Number(sp.get("limit")) || DEFAULT_LIMIT,
    status: sp.get("status") ?? undefined,
    server_id: sp.get("server_id") ?? undefined,
    search: sp.get("search") ?? undefined,
    sort_by: sp.get("sort_by") ?? "created_at",
    sort_order: sp.get("sort_order") === "asc" ? "asc" : "desc",
    from: sp.get("from") ?? undefined,
    to: sp.get("to") ?? undefined,
  };
}

/**
 * The query string after `patch`: an empty or undefined value removes its
 * key, and any change other than the page goes back to page 1.
 */
export function patchJobsUrl(current: URLSearchParams, patch: Record<string, string | number | undefined>): URLSearchParams {
  const next = new URLSearchParams(current.toString());
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined || v === "") next.delete(k);
    else next.set(k, String(v));
  }
  if (!("page" in patch)) next.delete("page");
  return next;
}

/** Whether any filter is set (the empty state offers to clear them). */
export const hasFilters = (s: JobsUrlState) => !!(s.status || s.search || s.server_id || s.from || s.to);

/**
 * A date input's local day as an RFC 3339 instant: its midnight, or for the
 * end of a range the next midnight (the API's `created_before` is exclusive).
 */
export function dayBound(day: string | undefined, end: boolean): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (Number.isNaN(d.getTime())) return undefined;
  if (end) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

/** The API query for the page's URL state. */
export function jobsQueryFor(s: JobsUrlState): JobFilters {
  return {
    page: s.page,
    limit: s.limit,
    status: s.status,
    server_id: s.server_id,
    search: s.search,
    sort_by: s.sort_by,
    sort_order: s.sort_order,
    created_after: dayBound(s.from, false),
    created_before: dayBound(s.to, true),
  };
}

/** Pages the export reads at most, and rows per page (the API's largest page). */
export const EXPORT_MAX_PAGES = 100;
export const EXPORT_PAGE_SIZE = 200;

/** Every job matching `query`, page by page, up to EXPORT_MAX_PAGES × EXPORT_PAGE_SIZE rows. */
export async function fetchAllJobs(query: JobFilters, fetchPage: (q: JobFilters) => Promise<JobList>): Promise<Job[]> {
  const all: Job[] = [];
  for (let page = 1; page <= EXPORT_MAX_PAGES; page++) {
    const l = await fetchPage({ ...query, page, limit: EXPORT_PAGE_SIZE });
    all.push(...l.jobs);
    if (!l.pagination.has_next) break;
  }
  return all;
}

/** The export's file name: `remora-jobs-<UTC time to the second>.csv`. */
export const exportFileName = (now: Date) => `remora-jobs-${now.toISOString().slice(0, 19)}.csv`;
