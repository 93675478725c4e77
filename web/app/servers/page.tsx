"use client";
// Servers: the list with each host's last check, and its add, edit, test, check-all and delete;
// search, tag and status filters over a virtualised table (thousands of servers), and
// "run on all matching", which opens Execute with the filter as the target.
import * as React from "react";
import { useRouter } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { serversQuery, systemInfoQuery } from "@/lib/queries";
import { emptyServerFilter, filterFromQuery, filterServers, filterToQuery, targetOf, type ServerFilter, type ServerStatusFilter } from "@/lib/fleet";
import type { Server, ServerCheck } from "@/lib/types";
import { formatTime, relativeTime } from "@/lib/format";
import { useServerActions } from "@/lib/use-server-actions";
import { AcceptKeyDialog, DeleteServerDialog, TestResult } from "@/components/server-dialogs";
import { ServerFormDialog } from "@/components/server-form";
import { ImportDialog } from "@/components/servers/ImportDialog";
import { useCanWrite } from "@/lib/use-role";
import Link from "next/link";
import { ServerCredential } from "@/components/servers/CredentialPicker";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { ServerStatusBadge } from "@/components/status-badge";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { Input, Select } from "@/components/ui/input";
import { Table, Td, Th } from "@/components/ui/table";

const ROW = 49;

export default function ServersPage() {
  const servers = useQuery(serversQuery());
  const [editing, setEditing] = React.useState<Server | "new" | null>(null);
  const [deleting, setDeleting] = React.useState<Server | null>(null);
  const [testing, setTesting] = React.useState<Server | null>(null);
  const [accepting, setAccepting] = React.useState<{ server: Server; fingerprint: string | null } | null>(null);
  const [bulk, setBulk] = React.useState<Record<string, ServerCheck>>({});
  const [pageError, setPageError] = React.useState<unknown>(null);
  const [importing, setImporting] = React.useState(false);
  const canWrite = useCanWrite();

  const { test, check, del, accept } = useServerActions({
    onChecked: (r) => setBulk(Object.fromEntries(r.servers.map((s) => [s.server_id, s]))),
    onCheckError: setPageError,
    onDeleted: () => setDeleting(null),
    onAccepted: () => {
      setAccepting(null);
      setTesting(null);
    },
  });
  const runTest = (s: Server) => {
    setTesting(s);
    test.mutate(s);
  };

  const router = useRouter();
  const maxHosts = useQuery(systemInfoQuery()).data?.max_batch_hosts;
  const [filter, setFilter] = React.useState<ServerFilter>(emptyServerFilter);
  React.useEffect(() => {
    setFilter(filterFromQuery(new URLSearchParams(window.location.search)));
  }, []);
  const setF = (patch: Partial<ServerFilter>) => {
    const next = { ...filter, ...patch };
    setFilter(next);
    const qs = filterToQuery(next);
    window.history.replaceState(null, "", `${window.location.pathname}${qs ? `?${qs}` : ""}`);
  };
  const all = React.useMemo(() => servers.data?.servers ?? [], [servers.data]);
  const tags = React.useMemo(() => Array.from(new Set(all.flatMap((s) => s.tags))).sort(), [all]);
  const list = React.useMemo(() => filterServers(all, filter), [all, filter]);
  const target = React.useMemo(() => targetOf(all, filter), [all, filter]);
  const overLimit = maxHosts !== undefined && target.count > maxHosts;
  const filtered = !!(filter.q.trim() || filter.tag || filter.status);

  const scroller = React.useRef<HTMLDivElement>(null);
  const v = useVirtualizer({
    count: list.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW,
    overscan: 10,
    initialRect: { width: 1200, height: 640 },
  });
  const items = v.getVirtualItems();
  const padTop = items[0]?.start ?? 0;
  const padBottom = items.length ? v.getTotalSize() - items[items.length - 1].end : 0;
  return (
    <div>
      <PageHeader
        title="Servers"
        description="SSH targets. Secrets are stored encrypted and never shown again."
        actions={
          <>
            <Button variant="outline" onClick={() => check.mutate()} disabled={check.isPending || all.length === 0}>
              {check.isPending ? "Checking…" : "Check all"}
            </Button>
            <Link href="/servers/host-keys/" className="inline-flex h-9 items-center rounded-md border border-input px-4 text-sm font-medium hover:bg-accent">
              Review host keys
            </Link>
            {canWrite ? (
              <Button variant="outline" onClick={() => setImporting(true)}>
                Import
              </Button>
            ) : null}
            <Button onClick={() => setEditing("new")}>Add server</Button>
          </>
        }
      />
      {pageError ? (
        <div className="mb-4">
          <ErrorState error={pageError} title="The check failed" />
        </div>
      ) : null}
      {servers.isError ? (
        <ErrorState error={servers.error} onRetry={() => servers.refetch()} title="Could not load servers" />
      ) : servers.isPending ? (
        <LoadingRows rows={4} label="Loading servers" />
      ) : all.length === 0 ? (
        <EmptyState title="No servers yet">
          <p>Add a host with a password, a pasted key or an uploaded key file.</p>
          <Button className="mt-3" onClick={() => setEditing("new")}>
            Add server
          </Button>
        </EmptyState>
      ) : (
        <>
        <div className="mb-3 flex flex-wrap items-center gap-2" role="search" aria-label="Filter servers">
          <div className="w-72">
            <Input aria-label="Search servers" placeholder="Search name, address, tag…" className="h-9" value={filter.q} onChange={(e) => setF({ q: e.target.value })} />
          </div>
          <div className="w-44">
          <Select aria-label="Tag" className="h-9" value={filter.tag} onChange={(e) => setF({ tag: e.target.value })}>
            <option value="">All tags</option>
            {tags.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </Select>
          </div>
          <div className="w-44">
          <Select aria-label="Status" className="h-9" value={filter.status} onChange={(e) => setF({ status: e.target.value as ServerStatusFilter })}>
            <option value="">Any status</option>
            <option value="reachable">reachable</option>
            <option value="unreachable">unreachable</option>
            <option value="unchecked">never checked</option>
            <option value="inactive">inactive</option>
          </Select>
          </div>
          {filtered ? (
            <Button size="sm" variant="ghost" onClick={() => setF(emptyServerFilter)}>
              Clear
            </Button>
          ) : null}
          <span className="text-sm text-muted-foreground" data-testid="servers-count">
            {filtered ? `${list.length.toLocaleString("en")} of ${all.length.toLocaleString("en")} servers` : `${all.length.toLocaleString("en")} servers`}
          </span>
          <span className="ml-auto flex items-center gap-2">
            {overLimit ? (
              <span role="alert" className="text-xs text-destructive">
                {target.count.toLocaleString("en")} servers is over the API&apos;s limit of {maxHosts!.toLocaleString("en")} per submission (REMORA_MAX_BATCH_HOSTS): narrow the filter.
              </span>
            ) : null}
            <Button
              onClick={() => router.push(`/execute/?from=servers${filterToQuery(filter) ? `&${filterToQuery(filter)}` : ""}`)}
              disabled={target.count === 0 || overLimit}
              title={"tag" in target ? `Every active server with the tag ${target.tag}` : "The matching active servers, by id"}
            >
              Run on all {target.count.toLocaleString("en")} matching
            </Button>
          </span>
        </div>
        {list.length === 0 ? (
          <EmptyState title="No server matches">
            <p>Change the search or the filters.</p>
          </EmptyState>
        ) : (
        <div ref={scroller} className="max-h-[calc(100vh-16rem)] min-h-[20rem] overflow-auto" data-testid="servers-scroller">
        <Table aria-label="Servers" aria-rowcount={list.length + 1}>
          <thead className="sticky top-0 z-10 bg-card">
            <tr>
              <Th>Name</Th>
              <Th>Address</Th>
              <Th>Credential</Th>
              <Th>Tags</Th>
              <Th>Status</Th>
              <Th>Host key</Th>
              <Th>
                <span className="sr-only">Actions</span>
              </Th>
            </tr>
          </thead>
          <tbody>
            {padTop > 0 ? (
              <tr aria-hidden style={{ height: padTop }}>
                <td colSpan={7} />
              </tr>
            ) : null}
            {items.map((it) => {
              const s = list[it.index];
              const b = bulk[s.id];
              return (
                <tr key={s.id} data-server={s.name} data-index={it.index} ref={v.measureElement} aria-rowindex={it.index + 2} className="hover:bg-muted/40">
                  <Td className="font-medium">
                    <Link className="hover:underline" href={`/servers/view/?id=${s.id}`}>
                      {s.name}
                    </Link>
                    {s.host_key_presented ? <Badge tone="red" className="ml-2" title="The host presented another key: review it">key changed</Badge> : null}
                    {!s.is_active ? <Badge className="ml-2">inactive</Badge> : null}
                  </Td>
                  <Td className="whitespace-nowrap font-mono text-xs">
                    {s.user}@{s.hostname}:{s.port}
                  </Td>
                  <Td className="text-xs">
                    <ServerCredential server={s} />
                  </Td>
                  <Td>
                    <div className="flex flex-wrap gap-1">
                      {s.tags.map((t) => (
                        <Badge key={t}>{t}</Badge>
                      ))}
                    </div>
                  </Td>
                  <Td className="whitespace-nowrap" title={b?.error ?? formatTime(s.last_checked_at)}>
                    <ServerStatusBadge status={b?.status ?? s.last_status} />
                    <span className="ml-2 text-xs text-muted-foreground">
                      {b?.latency_ms != null ? `${b.latency_ms} ms` : s.last_checked_at ? relativeTime(s.last_checked_at) : ""}
                    </span>
                    {b?.error ? <div className="max-w-xs truncate text-xs text-destructive">{b.error}</div> : null}
                  </Td>
                  <Td className="max-w-[14rem] truncate font-mono text-xs" title={s.host_key_fingerprint ?? "not pinned yet"}>
                    {s.host_key_fingerprint ?? <span className="text-muted-foreground">not pinned</span>}
                  </Td>
                  <Td>
                    <div className="flex gap-1">
                      <Button size="sm" variant="outline" onClick={() => runTest(s)} aria-label={`Test connection to ${s.name}`}>
                        Test
                      </Button>
                      <Button size="sm" variant="ghost" onClick={() => setEditing(s)} aria-label={`Edit ${s.name}`}>
                        Edit
                      </Button>
                      <Button size="sm" variant="ghost" className="text-destructive" onClick={() => setDeleting(s)} aria-label={`Delete ${s.name}`}>
                        Delete
                      </Button>
                    </div>
                  </Td>
                </tr>
              );
            })}
            {padBottom > 0 ? (
              <tr aria-hidden style={{ height: padBottom }}>
                <td colSpan={7} />
              </tr>
            ) : null}
          </tbody>
        </Table>
        </div>
        )}
        </>
      )}

      {importing ? <ImportDialog onClose={() => setImporting(false)} /> : null}
      {editing ? <ServerFormDialog server={editing === "new" ? null : editing} onClose={() => setEditing(null)} /> : null}

      {testing ? (
        <Dialog open onClose={() => setTesting(null)} title={`Connection test: ${testing.name}`} description={`${testing.user}@${testing.hostname}:${testing.port}`}>
          {test.isPending ? (
            <p role="status">Connecting…</p>
          ) : test.isError ? (
            <ErrorState error={test.error} title="The test could not run" />
          ) : test.data ? (
            <TestResult server={testing} result={test.data} onAccept={() => setAccepting({ server: testing, fingerprint: test.data!.host_key_fingerprint ?? null })} />
          ) : null}
          <div className="mt-4 flex justify-end gap-2">
            <Button variant="outline" onClick={() => runTest(testing)} disabled={test.isPending}>
              Test again
            </Button>
            <Button onClick={() => setTesting(null)}>Done</Button>
          </div>
        </Dialog>
      ) : null}

      {accepting ? <AcceptKeyDialog accepting={accepting} accept={accept} onAccept={() => accept.mutate(accepting)} onClose={() => setAccepting(null)} /> : null}

      {deleting ? <DeleteServerDialog server={deleting} del={del} onDelete={() => del.mutate(deleting)} onClose={() => setDeleting(null)} /> : null}
    </div>
  );
}
