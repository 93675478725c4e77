import { describe, expect, it } from "vitest";
import { dayBound, EXPORT_MAX_PAGES, EXPORT_PAGE_SIZE, exportFileName, fetchAllJobs, hasFilters, jobsQueryFor, patchJobsUrl, readJobsUrl } from "@/lib/jobs-list";
import { queryKeys, type JobFilters } from "@/lib/query-keys";
import type { JobList } from "@/lib/types";
import { job } from "./fixtures";

describe("jobs page URL state", () => {
  it("reads defaults from an empty query string", () => {
    expect(readJobsUrl(new URLSearchParams())).toEqual({
      page: 1,
      limit: 25,
      status: undefined,
      server_id: undefined,
      search: undefined,
      sort_by: "created_at",
      sort_order: "desc",
      from: undefined,
      to: undefined,
    });
  });
  it("reads every filter and clamps a bad page", () => {
    const s = readJobsUrl(new URLSearchParams("page=0&limit=200&status=failed&server_id=s1&search=up&sort_by=priority&sort_order=asc&from=2026-01-02&to=2026-01-03"));
    expect(s).toMatchObject({ page: 1, limit: 200, status: "failed", server_id: "s1", search: "up", sort_by: "priority", sort_order: "asc", from: "2026-01-02", to: "2026-01-03" });
    expect(readJobsUrl(new URLSearchParams("page=x&sort_order=sideways"))).toMatchObject({ page: 1, sort_order: "desc" });
  });
  it("patches the query string: empty removes, any change but the page resets it", () => {
    const cur = new URLSearchParams("page=3&status=failed&search=up");
    expect(patchJobsUrl(cur, { status: "" }).toString()).toBe("search=up");
    expect(patchJobsUrl(cur, { status: "completed" }).toString()).toBe("status=completed&search=up");
    expect(patchJobsUrl(cur, { page: 4 }).toString()).toBe("page=4&status=failed&search=up");
    expect(cur.toString()).toBe("page=3&status=failed&search=up");
  });
  it("knows when a filter is set", () => {
    expect(hasFilters(readJobsUrl(new URLSearchParams("page=2&sort_by=status")))).toBe(false);
    for (const q of ["status=failed", "search=x", "server_id=s", "from=2026-01-01", "to=2026-01-01"]) {
      expect(hasFilters(readJobsUrl(new URLSearchParams(q)))).toBe(true);
    }
  });
});

describe("date bounds", () => {
  it("turns a local day into its midnight, and the range's end into the next midnight", () => {
    const start = new Date(dayBound("2026-02-28", false)!);
    expect([start.getFullYear(), start.getMonth(), start.getDate(), start.getHours(), start.getMinutes()]).toEqual([2026, 1, 28, 0, 0]);
    const end = new Date(dayBound("2026-02-28", true)!);
    expect([end.getFullYear(), end.getMonth(), end.getDate(), end.getHours()]).toEqual([2026, 2, 1, 0]);
    expect(dayBound("2026-12-31", true)).toBe(new Date(2027, 0, 1).toISOString());
  });
  it("ignores an empty or malformed day", () => {
    expect(dayBound(undefined, false)).toBeUndefined();
    expect(dayBound("", true)).toBeUndefined();
    expect(dayBound("not-a-day", false)).toBeUndefined();
  });
  it("builds the API query from the URL state", () => {
    const q = jobsQueryFor(readJobsUrl(new URLSearchParams("status=failed&from=2026-01-02&to=2026-01-02")));
    expect(q).toEqual({
      page: 1,
      limit: 25,
      status: "failed",
      server_id: undefined,
      search: undefined,
      sort_by: "created_at",
      sort_order: "desc",
      created_after: new Date(2026, 0, 2).toISOString(),
      created_before: new Date(2026, 0, 3).toISOString(),
    });
  });
});

describe("CSV export fetch", () => {
  const page = (n: number, pages: number): JobList => ({
    jobs: [job({ id: `j${n}a` }), job({ id: `j${n}b` })],
    pagination: { page: n, limit: EXPORT_PAGE_SIZE, total: pages * 2, total_exact: true, total_pages: pages, has_next: n < pages, has_prev: n > 1 },
  });
  const base: JobFilters = { page: 7, limit: 25, status: "failed", sort_by: "created_at", sort_order: "desc" };

  it("reads pages from the first until has_next is false, keeping the filters", async () => {
    const asked: JobFilters[] = [];
    const all = await fetchAllJobs(base, async (q) => {
      asked.push(q);
      return page(q.page, 3);
    });
    expect(all.map((j) => j.id)).toEqual(["j1a", "j1b", "j2a", "j2b", "j3a", "j3b"]);
    expect(asked.map((q) => q.page)).toEqual([1, 2, 3]);
    for (const q of asked) expect(q).toMatchObject({ status: "failed", limit: EXPORT_PAGE_SIZE, sort_by: "created_at" });
  });
  it("stops at its page cap", async () => {
    let calls = 0;
    const all = await fetchAllJobs(base, async (q) => {
      calls++;
      return page(q.page, 10_000);
    });
    expect(calls).toBe(EXPORT_MAX_PAGES);
    expect(all).toHaveLength(EXPORT_MAX_PAGES * 2);
  });
  it("passes an API error on", async () => {
    await expect(fetchAllJobs(base, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
  });
  it("names the file after the UTC time", () => {
    expect(exportFileName(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)))).toBe("remora-jobs-2026-01-02T03:04:05.csv");
  });
});

describe("query keys", () => {
  it("nest every list and item under the prefix its invalidation uses", () => {
    const f: JobFilters = { page: 1, limit: 25 };
    expect(queryKeys.jobs.list(f).slice(0, 1)).toEqual([...queryKeys.jobs.all]);
    expect(queryKeys.job.one("x").slice(0, 1)).toEqual([...queryKeys.job.all]);
    expect(queryKeys.batch.one("b").slice(0, 1)).toEqual([...queryKeys.batch.all]);
    // A job's key is not under the jobs lists' prefix: refreshing lists leaves open job pages alone.
    expect(queryKeys.job.all[0]).not.toBe(queryKeys.jobs.all[0]);
  });
});
