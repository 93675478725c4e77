"use client";
// Jobs: the filtered, sorted, paged list (state in the URL) and its CSV export.
import * as React from "react";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { saveBlob } from "@/lib/api";
import { fetchJobs, jobsQuery, serversQuery } from "@/lib/queries";
import { exportFileName, fetchAllJobs, hasFilters, jobsQueryFor } from "@/lib/jobs-list";
import { useJobsUrl } from "@/lib/use-jobs-url";
import { jobsToCsv } from "@/lib/csv";
import { useLive } from "@/components/events";
import { JobsFilterForm, JobsPagination, JobsTable } from "@/components/jobs-table";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Button } from "@/components/ui/button";

function JobsPageInner() {
  const router = useRouter();
  const live = useLive();
  const { state: f, set, clear } = useJobsUrl();
  const [search, setSearch] = React.useState(f.search ?? "");
  const [actionError, setActionError] = React.useState<unknown>(null);

  // Debounce the text filter.
  React.useEffect(() => {
    if (search === (f.search ?? "")) return;
    const t = setTimeout(() => set({ search }), 300);
    return () => clearTimeout(t);
  }, [search, f.search, set]);

  const query = jobsQueryFor(f);
  const jobs = useQuery({ ...jobsQuery(query), refetchInterval: live ? 30_000 : 5000 });
  const servers = useQuery(serversQuery());
  const serverName = React.useCallback(
    (id: string) => servers.data?.servers.find((s) => s.id === id)?.name ?? id.slice(0, 8),
    [servers.data],
  );
  const rows = jobs.data?.jobs ?? [];
  const pg = jobs.data?.pagination;
  const [exporting, setExporting] = React.useState(false);

  async function exportCsv() {
    setExporting(true);
    setActionError(null);
    try {
      const all = await fetchAllJobs(query, (q) => fetchJobs(q));
      saveBlob(new Blob([jobsToCsv(all, serverName)], { type: "text/csv" }), exportFileName(new Date()));
    } catch (e) {
      setActionError(e);
    } finally {
      setExporting(false);
    }
  }

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
      <JobsFilterForm state={f} search={search} onSearch={setSearch} onChange={set} servers={servers.data?.servers ?? []} />
      {actionError ? <div className="mb-4"><ErrorState error={actionError} title="The action failed" /></div> : null}
      {jobs.isError ? (
        <ErrorState error={jobs.error} onRetry={() => jobs.refetch()} title="Could not load jobs" />
      ) : jobs.isPending ? (
        <LoadingRows rows={8} label="Loading jobs" />
      ) : rows.length === 0 ? (
        <EmptyState title={hasFilters(f) ? "No job matches these filters" : "No jobs yet"}>
          {hasFilters(f) ? (
            <Button variant="outline" size="sm" onClick={() => { setSearch(""); clear(); }}>
              Clear filters
            </Button>
          ) : (
            <Link className="underline" href="/execute/">Run a command</Link>
          )}
        </EmptyState>
      ) : (
        <JobsTable rows={rows} sort={f} onSort={set} serverName={serverName} onError={setActionError} />
      )}
      {pg && pg.total > 0 ? <JobsPagination pagination={pg} limit={f.limit} onChange={set} /> : null}
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
