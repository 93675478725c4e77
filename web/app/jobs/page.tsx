"use client";
import * as React from "react";
import Link from "next/link";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { api, saveBlob } from "@/lib/api";
import { jobsQuery, serversQuery, type JobFilters } from "@/lib/queries";
import { JOB_STATUSES, type Job, type JobList } from "@/lib/types";
import { formatDuration, formatTime, jobDurationMs, jobLabel, parseTime, relativeTime } from "@/lib/format";
import { jobsToCsv } from "@/lib/csv";
import { useLive } from "@/components/events";
import { JobActionButtons } from "@/components/job-actions";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { JobStatusBadge } from "@/components/status-badge";
import { Button } from "@/components/ui/button";
import { Field, Input, Select } from "@/components/ui/input";
import { Table, Td, Th } from "@/components/ui/table";

const SORTABLE = ["created_at", "started_at", "finished_at", "priority", "status"] as const;

function readFilters(sp: URLSearchParams): JobFilters & { from?: string; to?: string } {
  return {
    page: Math.max(1, Number(sp.get("page")) || 1),
    limit: Number(sp.get("limit")) || 25,
    status: sp.get("status") ?? undefined,
    server_id: sp.get("server_id") ?? undefined,
    search: sp.get("search") ?? undefined,
    sort_by: sp.get("sort_by") ?? "created_at",
    sort_order: sp.get("sort_order") === "asc" ? "asc" : "desc",
    from: sp.get("from") ?? undefined,
    to: sp.get("to") ?? undefined,
  };
}

/** Date inputs give local days; the API wants RFC 3339 instants. */
function dayBound(day: string | undefined, end: boolean): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (Number.isNaN(d.getTime())) return undefined;
  if (end) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

function JobsPageInner() {
  const sp = useSearchParams();
  const router = useRouter();
  const pathname = usePathname();
  const live = useLive();
  const f = readFilters(new URLSearchParams(sp.toString()));
  const [search, setSearch] = React.useState(f.search ?? "");
  const [actionError, setActionError] = React.useState<unknown>(null);

  const set = React.useCallback(
    (patch: Record<string, string | number | undefined>) => {
      const next = new URLSearchParams(sp.toString());
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined || v === "") next.delete(k);
        else next.set(k, String(v));
      }
      if (!("page" in patch)) next.delete("page");
      router.replace(`${pathname}?${next.toString()}`, { scroll: false });
    },
    [sp, router, pathname],
  );

  // Debounce the text filter.
  React.useEffect(() => {
    if (search === (f.search ?? "")) return;
    const t = setTimeout(() => set({ search }), 300);
    return () => clearTimeout(t);
  }, [search, f.search, set]);

  const query: JobFilters = {
    page: f.page,
    limit: f.limit,
    status: f.status,
    server_id: f.server_id,
    search: f.search,
    sort_by: f.sort_by,
    sort_order: f.sort_order,
    created_after: dayBound(f.from, false),
    created_before: dayBound(f.to, true),
  };
  const jobs = useQuery({ ...jobsQuery(query), refetchInterval: live ? 30_000 : 5000 });
  const servers = useQuery(serversQuery());
  const serverName = React.useCallback(
    (id: string) => servers.data?.servers.find((s) => s.id === id)?.name ?? id.slice(0, 8),
    [servers.data],
  );
  // The date range is also applied here, so rows match it even where the API ignores the bounds.
  const inRange = (j: Job) => {
    const t = parseTime(j.created_at) ?? 0;
    const a = parseTime(query.created_after ?? null);
    const b = parseTime(query.created_before ?? null);
    return (a === null || t >= a) && (b === null || t < b);
  };
  const rows = (jobs.data?.jobs ?? []).filter(inRange);
  const pg = jobs.data?.pagination;
  const [exporting, setExporting] = React.useState(false);

  async function exportCsv() {
    setExporting(true);
    setActionError(null);
    try {
      const all: Job[] = [];
      for (let page = 1; page <= 100; page++) {
        const l = await api.get<JobList>("/api/v1/jobs", { ...query, page, limit: 200 });
        all.push(...l.jobs.filter(inRange));
        if (!l.pagination.has_next) break;
      }
      saveBlob(new Blob([jobsToCsv(all, serverName)], { type: "text/csv" }), `remora-jobs-${new Date().toISOString().slice(0, 19)}.csv`);
    } catch (e) {
      setActionError(e);
    } finally {
      setExporting(false);
    }
  }

  const sortHeader = (key: (typeof SORTABLE)[number], label: string, className?: string) => {
    const on = f.sort_by === key;
    return (
      <Th className={className} aria-sort={on ? (f.sort_order === "asc" ? "ascending" : "descending") : "none"}>
        <button
          className="inline-flex items-center gap-1 hover:text-foreground"
          onClick={() => set({ sort_by: key, sort_order: on && f.sort_order === "desc" ? "asc" : "desc" })}
        >
          {label}
          <span aria-hidden>{on ? (f.sort_order === "asc" ? "▲" : "▼") : "↕"}</span>
        </button>
      </Th>
    );
  };

  return (
    <div>
      <PageHeader
        title="Jobs"
        description={pg ? `${pg.total}${pg.total_exact === false ? "+" : ""} job${pg.total === 1 ? "" : "s"} match${live ? " · live" : ""}` : "Every command and script run."}
        actions={
          <>
            <Button variant="outline" onClick={exportCsv} disabled={exporting}>
              {exporting ? "Exporting…" : "Export CSV"}
            </Button>
            <Button onClick={() => router.push("/execute/")}>
              New job
            </Button>
          </>
        }
      />
      <form className="mb-4 grid grid-cols-2 gap-3 md:grid-cols-3 xl:grid-cols-6" onSubmit={(e) => e.preventDefault()} aria-label="Job filters">
        <Field label="Search" htmlFor="f-search" className="col-span-2">
          <Input id="f-search" data-search type="search" placeholder="command, script, id…  ( / )" value={search} onChange={(e) => setSearch(e.target.value)} />
        </Field>
        <Field label="Status" htmlFor="f-status">
          <Select id="f-status" value={f.status ?? ""} onChange={(e) => set({ status: e.target.value })}>
            <option value="">All statuses</option>
            {JOB_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replace("_", " ")}
              </option>
            ))}
          </Select>
        </Field>
        <Field label="Server" htmlFor="f-server">
          <Select id="f-server" value={f.server_id ?? ""} onChange={(e) => set({ server_id: e.target.value })}>
            <option value="">All servers</option>
            {(servers.data?.servers ?? []).map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </Select>
        </Field>
        <Field label="Created from" htmlFor="f-from">
          <Input id="f-from" type="date" value={f.from ?? ""} onChange={(e) => set({ from: e.target.value })} />
        </Field>
        <Field label="Created to" htmlFor="f-to">
          <Input id="f-to" type="date" value={f.to ?? ""} onChange={(e) => set({ to: e.target.value })} />
        </Field>
      </form>
      {actionError ? <div className="mb-4"><ErrorState error={actionError} title="The action failed" /></div> : null}
      {jobs.isError ? (
        <ErrorState error={jobs.error} onRetry={() => jobs.refetch()} title="Could not load jobs" />
      ) : jobs.isPending ? (
        <LoadingRows rows={8} label="Loading jobs" />
      ) : rows.length === 0 ? (
        <EmptyState title={f.status || f.search || f.server_id || f.from || f.to ? "No job matches these filters" : "No jobs yet"}>
          {f.status || f.search || f.server_id || f.from || f.to ? (
            <Button variant="outline" size="sm" onClick={() => { setSearch(""); router.replace(pathname); }}>
              Clear filters
            </Button>
          ) : (
            <Link className="underline" href="/execute/">Run a command</Link>
          )}
        </EmptyState>
      ) : (
        <Table aria-label="Jobs">
          <thead>
            <tr>
              {sortHeader("status", "Status")}
              <Th>Server</Th>
              <Th>Command</Th>
              {sortHeader("created_at", "Created")}
              {sortHeader("started_at", "Started", "hidden 2xl:table-cell")}
              <Th>Duration</Th>
              <Th>Exit</Th>
              {sortHeader("priority", "Prio")}
              <Th>
                <span className="sr-only">Actions</span>
              </Th>
            </tr>
          </thead>
          <tbody>
            {rows.map((j) => (
              <tr key={j.id} className="hover:bg-muted/40" data-job-id={j.id}>
                <Td>
                  <JobStatusBadge status={j.status} />
                </Td>
                <Td className="whitespace-nowrap">{serverName(j.server_id)}</Td>
                <Td className="max-w-[22rem]">
                  <Link href={`/jobs/view/?id=${j.id}`} className="block truncate font-mono text-xs hover:underline" title={jobLabel(j)}>
                    {jobLabel(j)}
                  </Link>
                </Td>
                <Td className="whitespace-nowrap text-xs" title={formatTime(j.created_at)}>
                  {relativeTime(j.created_at)}
                </Td>
                <Td className="hidden whitespace-nowrap text-xs 2xl:table-cell">{formatTime(j.started_at)}</Td>
                <Td className="whitespace-nowrap tabular-nums">{formatDuration(jobDurationMs(j))}</Td>
                <Td className="tabular-nums">{j.exit_code ?? (j.exit_signal ? `SIG${j.exit_signal}` : "—")}</Td>
                <Td className="tabular-nums">{j.priority}</Td>
                <Td>
                  <JobActionButtons job={j} onError={setActionError} />
                </Td>
              </tr>
            ))}
          </tbody>
        </Table>
      )}
      {pg && pg.total > 0 ? (
        <nav className="mt-4 flex flex-wrap items-center justify-between gap-3 text-sm" aria-label="Pagination">
          <span className="text-muted-foreground">
            Page {pg.page} of {Math.max(pg.total_pages, 1)}{pg.total_exact === false ? "+" : ""} · {pg.total}{pg.total_exact === false ? "+" : ""} total
          </span>
          <div className="flex items-center gap-2">
            <label htmlFor="f-limit" className="text-muted-foreground">
              Rows
            </label>
            <Select id="f-limit" className="h-8 w-20" value={f.limit} onChange={(e) => set({ limit: e.target.value })}>
              {[10, 25, 50, 100, 200].map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </Select>
            <Button size="sm" variant="outline" disabled={!pg.has_prev} onClick={() => set({ page: pg.page - 1 })}>
              Previous
            </Button>
            <Button size="sm" variant="outline" disabled={!pg.has_next} onClick={() => set({ page: pg.page + 1 })}>
              Next
            </Button>
          </div>
        </nav>
      ) : null}
    </div>
  );
}

export default function JobsPage() {
  return (
    <React.Suspense fallback={<LoadingRows rows={8} />}>
      <JobsPageInner />
    </React.Suspense>
  );
}
