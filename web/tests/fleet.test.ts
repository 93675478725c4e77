import { describe, expect, it } from "vitest";
import {
  checkPolicy,
  emptyPolicy,
  exitBars,
  filterFromQuery,
  filterServers,
  filterToQuery,
  groupCollapses,
  groupView,
  isTagOnly,
  notCompleted,
  pagesFor,
  parseLimit,
  resolveLimit,
  SERVER_PAGE,
  serverPageParams,
  targetOf,
  type GroupLike,
} from "@/lib/fleet";
import type { Server } from "@/lib/types";

const server = (over: Partial<Server>): Server => ({
  auth_type: "password",
  created_at: "2026-01-01T00:00:00Z",
  has_password: true,
  has_private_key: false,
  hostname: "10.0.0.1",
  id: "s",
  is_active: true,
  max_concurrency: 4,
  name: "s",
  port: 22,
  tags: [],
  updated_at: "2026-01-01T00:00:00Z",
  user: "root",
  ...over,
});

describe("parseLimit", () => {
  it("reads counts and percentages", () => {
    expect(parseLimit("")).toEqual({ ok: true, limit: null });
    expect(parseLimit("  ")).toEqual({ ok: true, limit: null });
    expect(parseLimit("5")).toEqual({ ok: true, limit: { kind: "count", n: 5 } });
    expect(parseLimit(" 10% ")).toEqual({ ok: true, limit: { kind: "percent", p: 10 } });
    expect(parseLimit("10 %")).toEqual({ ok: true, limit: { kind: "percent", p: 10 } });
    expect(parseLimit("100%")).toEqual({ ok: true, limit: { kind: "percent", p: 100 } });
  });
  it("refuses what the API refuses, with its words", () => {
    expect(parseLimit("0")).toEqual({ ok: false, error: "a count must be at least 1" });
    expect(parseLimit("0%")).toMatchObject({ ok: false, error: expect.stringContaining("between 1% and 100%") });
    expect(parseLimit("101%")).toMatchObject({ ok: false, error: expect.stringContaining("between 1% and 100%") });
    expect(parseLimit("x%")).toMatchObject({ ok: false, error: expect.stringContaining("not a percentage") });
    expect(parseLimit("-3")).toMatchObject({ ok: false, error: expect.stringContaining("neither a count") });
    expect(parseLimit("2.5")).toMatchObject({ ok: false });
    expect(parseLimit("1.5%")).toMatchObject({ ok: false });
  });
});

describe("resolveLimit", () => {
  it("rounds percentages up, at least 1, and caps counts", () => {
    expect(resolveLimit({ kind: "percent", p: 10 }, 5000)).toBe(500);
    expect(resolveLimit({ kind: "percent", p: 10 }, 15)).toBe(2);
    expect(resolveLimit({ kind: "percent", p: 1 }, 3)).toBe(1);
    expect(resolveLimit({ kind: "count", n: 50 }, 7)).toBe(7);
    expect(resolveLimit({ kind: "count", n: 5 }, 40)).toBe(5);
  });
});

describe("checkPolicy", () => {
  it("sends only the fields that are set", () => {
    expect(checkPolicy(emptyPolicy, 10).body).toEqual({});
    const c = checkPolicy({ maxParallel: "10%", failThreshold: "3", onFail: "abort" }, 40);
    expect(c.body).toEqual({ max_parallel: "10%", fail_threshold: 3, on_fail_threshold: "abort" });
    expect(c.errors).toEqual({});
    expect(c.summary[0]).toBe("at most 4 of 40 hosts at once");
    expect(c.summary[1]).toContain("after 3 failed hosts: cancel the running ones");
  });
  it("on_fail_threshold goes with a threshold only", () => {
    expect(checkPolicy({ maxParallel: "2", failThreshold: "", onFail: "abort" }, 4).body).toEqual({ max_parallel: 2 });
  });
  it("reports each bad field and the host limit", () => {
    const c = checkPolicy({ maxParallel: "0", failThreshold: "200%", onFail: "stop" }, 12_000, 10_000);
    expect(c.errors.maxParallel).toBe("a count must be at least 1");
    expect(c.errors.failThreshold).toContain("between 1% and 100%");
    expect(c.errors.hosts).toContain("over the API's limit of 10,000");
    expect(checkPolicy(emptyPolicy, 10_000, 10_000).errors.hosts).toBeUndefined();
  });
});

describe("server filter and target", () => {
  const list = [
    server({ id: "a", name: "web-1", tags: ["web"], last_status: "reachable" }),
    server({ id: "b", name: "web-2", tags: ["web"], last_status: "unreachable" }),
    server({ id: "c", name: "db-1", tags: ["db"], hostname: "10.0.9.9" }),
    server({ id: "d", name: "web-old", tags: ["web"], is_active: false }),
  ];
  it("searches names, addresses and tags; filters tag and status", () => {
    expect(filterServers(list, { q: "WEB", tag: "", status: "" }).map((s) => s.id)).toEqual(["a", "b", "d"]);
    expect(filterServers(list, { q: "10.0.9", tag: "", status: "" }).map((s) => s.id)).toEqual(["c"]);
    expect(filterServers(list, { q: "", tag: "db", status: "" }).map((s) => s.id)).toEqual(["c"]);
    expect(filterServers(list, { q: "", tag: "", status: "reachable" }).map((s) => s.id)).toEqual(["a"]);
    expect(filterServers(list, { q: "", tag: "", status: "unreachable" }).map((s) => s.id)).toEqual(["b"]);
    expect(filterServers(list, { q: "", tag: "", status: "unchecked" }).map((s) => s.id)).toEqual(["c", "d"]);
    expect(filterServers(list, { q: "", tag: "", status: "inactive" }).map((s) => s.id)).toEqual(["d"]);
  });
  it("a tag alone targets the tag; anything else lists the active matches", () => {
    expect(targetOf(list, { q: "", tag: "web", status: "" })).toEqual({ tag: "web", count: 2 });
    expect(targetOf(list, { q: "web", tag: "", status: "" })).toEqual({ server_ids: ["a", "b"], count: 2 });
    expect(targetOf(list, { q: "", tag: "web", status: "reachable" })).toEqual({ server_ids: ["a"], count: 1 });
    expect(targetOf(list, { q: "", tag: "", status: "inactive" })).toEqual({ server_ids: [], count: 0 });
  });
  it("pages the list on the server with the filter as query parameters", () => {
    expect(serverPageParams({ q: "", tag: "", status: "" }, 0)).toEqual({ offset: 0, limit: SERVER_PAGE });
    expect(serverPageParams({ q: " web ", tag: "prod", status: "reachable" }, 3, 50)).toEqual({ offset: 150, limit: 50, q: "web", tag: "prod", status: "reachable" });
    expect(serverPageParams({ q: "  ", tag: "", status: "" }, -1, 10)).toEqual({ offset: 0, limit: 10 });
    expect(isTagOnly({ q: "", tag: "web", status: "" })).toBe(true);
    expect(isTagOnly({ q: "x", tag: "web", status: "" })).toBe(false);
    expect(isTagOnly({ q: "", tag: "web", status: "inactive" })).toBe(false);
    expect(isTagOnly({ q: "", tag: "", status: "" })).toBe(false);
  });
  it("round-trips through the address", () => {
    const f = { q: "web", tag: "prod", status: "reachable" as const };
    expect(filterFromQuery(new URLSearchParams(filterToQuery(f)))).toEqual(f);
    expect(filterToQuery({ q: " ", tag: "", status: "" })).toBe("");
    expect(filterFromQuery(new URLSearchParams("status=bogus")).status).toBe("");
  });
});

describe("grouped output view", () => {
  const hosts = (n: number) => Array.from({ length: n }, (_, i) => ({ server_id: `s${i}`, server_name: i === 1 ? null : `h${i}`, job_id: `j${i}` }));
  const g = (over: Partial<GroupLike>): GroupLike => ({
    hash: "h",
    exit_code: 0,
    stdout: "ok\n",
    stderr: "",
    stdout_bytes: 3,
    stderr_bytes: 0,
    count: 3,
    hosts: hosts(3),
    ...over,
  });
  it("shows a small group whole", () => {
    const v = groupView(g({}), 12, false);
    expect(v.title).toBe("3 hosts · exit 0");
    expect(v.hosts).toEqual(["h0", "s1", "h2"]);
    expect(v.hiddenHosts).toBe(0);
    expect(v.stdout).toBe("ok\n");
    expect(v.share).toBe(0.25);
    expect(groupCollapses(v)).toBe(false);
  });
  it("collapses long host lists and long output, and expands them", () => {
    const long = Array.from({ length: 50 }, (_, i) => `line ${i}`).join("\n") + "\n";
    const big = g({ count: 5000, hosts: hosts(5000), stdout: long, stdout_bytes: long.length, stderr: "e1\ne2", stderr_bytes: 5 });
    const v = groupView(big, 5000, false, 24, 30);
    expect(v.title).toBe("5,000 hosts · exit 0");
    expect(v.hosts).toHaveLength(24);
    expect(v.hiddenHosts).toBe(4976);
    expect(v.stdout.split("\n")).toHaveLength(30);
    expect(v.stderr).toBe("e1\ne2");
    expect(v.hiddenLines).toBe(20);
    expect(groupCollapses(v)).toBe(true);
    const open = groupView(big, 5000, true);
    expect(open.hosts).toHaveLength(5000);
    expect(open.stdout).toBe(long);
    expect(open.hiddenLines).toBe(0);
  });
  it("names a missing exit code and empty output", () => {
    const v = groupView(g({ exit_code: null, stdout: "", stdout_bytes: 0 }), 3, false);
    expect(v.exitLabel).toBe("no exit code");
    expect(v.empty).toBe(true);
  });
});

describe("exit histogram, grid pages, rerun count", () => {
  it("orders 0 first, codes numerically, none last", () => {
    const bars = exitBars({ "255": 10, none: 4, "0": 20, "2": 0, "10": 5 });
    expect(bars.map((b) => b.code)).toEqual(["0", "10", "255", "none"]);
    expect(bars[0].width).toBe(1);
    expect(bars[1].width).toBe(0.25);
    expect(bars[3].label).toBe("no exit code");
    expect(exitBars({})).toEqual([]);
  });
  it("maps a visible range to pages", () => {
    expect(pagesFor(0, 40, 200)).toEqual([0]);
    expect(pagesFor(190, 230, 200)).toEqual([0, 1]);
    expect(pagesFor(4990, 4999, 200)).toEqual([24]);
    expect(pagesFor(0, -1, 200)).toEqual([0]);
  });
  it("counts the hosts a rerun of failed would take", () => {
    expect(notCompleted({ completed: 5, failed: 2, timed_out: 1, canceled: 3, queued: 0 })).toBe(6);
  });
});
