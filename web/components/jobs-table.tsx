"use client";
// The jobs list's parts: filter form, sortable table, pagination. State stays
// with the caller (the jobs page keeps it in the URL).
import Link from "next/link";
import type { JobsUrlState, SortKey } from "@/lib/jobs-list";
import { formatDuration, formatTime, jobDurationMs, jobLabel, relativeTime } from "@/lib/format";
import { JOB_STATUSES, type Job, type Pagination, type Server } from "@/lib/types";
import { JobActionButtons } from "@/components/job-actions";
import { JobStatusBadge } from "@/components/status-badge";
import { Button } from "@/components/ui/button";
import { Field, Input, Select } from "@/components/ui/input";
import { Table, Td, Th } from "@/components/ui/table";

type Patch = (patch: Record<string, string | number | undefined>) => void;

export function JobsFilterForm({
  state: f,
  search,
  onSearch: setSearch,
  onChange: set,
  servers,
}: {
  state: JobsUrlState;
  search: string;
  onSearch: (s: string) => void;
  onChange: Patch;
  servers: Server[];
}) {
  return (
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
          {servers.map((s) => (
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
  );
}

export function JobsTable({
  rows,
  sort: f,
  onSort: set,
  serverName,
  onError: setActionError,
}: {
  rows: Job[];
  sort: Pick<JobsUrlState, "sort_by" | "sort_order">;
  onSort: Patch;
  serverName: (id: string) => string;
  onError: (e: unknown) => void;
}) {
  const sortHeader = (key: SortKey, label: string, className?: string) => {
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
  );
}

export function JobsPagination({ pagination: pg, limit, onChange: set }: { pagination: Pagination; limit: number; onChange: Patch }) {
  return (
    <nav className="mt-4 flex flex-wrap items-center justify-between gap-3 text-sm" aria-label="Pagination">
      <span className="text-muted-foreground">
        Page {pg.page} of {Math.max(pg.total_pages, 1)}{pg.total_exact === false ? "+" : ""} · {pg.total}{pg.total_exact === false ? "+" : ""} total
      </span>
      <div className="flex items-center gap-2">
        <label htmlFor="f-limit" className="text-muted-foreground">
          Rows
        </label>
        <Select id="f-limit" className="h-8 w-20" value={limit} onChange={(e) => set({ limit: e.target.value })}>
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
  );
}
