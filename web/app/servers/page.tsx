"use client";
import * as React from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import { serversQuery } from "@/lib/queries";
import type { BulkStatus, Server, ServerCheck } from "@/lib/types";
import { formatTime, relativeTime } from "@/lib/format";
import { ServerFormDialog } from "@/components/server-form";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { ServerStatusBadge } from "@/components/status-badge";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { Table, Td, Th } from "@/components/ui/table";
import { queryKeys } from "@/lib/query-keys";

function TestResult({ server, result, onAccept }: { server: Server; result: ServerCheck; onAccept: () => void }) {
  return (
    <div className="grid gap-3 text-sm" data-testid="test-result">
      <div className="flex items-center gap-2">
        {result.ok ? <Badge tone="green">connected</Badge> : <Badge tone="red">failed</Badge>}
        {result.latency_ms != null ? <span className="tabular-nums">{result.latency_ms} ms</span> : null}
      </div>
      {result.error ? (
        <p role="alert" className="rounded-md border border-destructive/40 bg-destructive/5 p-2">
          {result.error_code ? <span className="font-mono text-xs">{result.error_code}: </span> : null}
          {result.error}
        </p>
      ) : null}
      <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1">
        <dt className="text-muted-foreground">Host key</dt>
        <dd className="break-all font-mono text-xs">{result.host_key_fingerprint ?? "—"}</dd>
        <dt className="text-muted-foreground">Key status</dt>
        <dd>
          {result.host_key_status === "mismatch" ? (
            <Badge tone="red">changed since it was pinned</Badge>
          ) : result.host_key_status === "new" ? (
            <Badge tone="blue">new: pinned on first use</Badge>
          ) : result.host_key_status === "pinned" ? (
            <Badge tone="green">matches the pinned key</Badge>
          ) : (
            "—"
          )}
        </dd>
        {result.host_key_status === "mismatch" ? (
          <>
            <dt className="text-muted-foreground">Pinned</dt>
            <dd className="break-all font-mono text-xs">{server.host_key_fingerprint ?? "—"}</dd>
          </>
        ) : null}
      </dl>
      {result.host_key_status === "mismatch" ? (
        <Button variant="destructive" onClick={onAccept}>
          Review and accept the new key…
        </Button>
      ) : null}
    </div>
  );
}

export default function ServersPage() {
  const qc = useQueryClient();
  const servers = useQuery(serversQuery());
  const [editing, setEditing] = React.useState<Server | "new" | null>(null);
  const [deleting, setDeleting] = React.useState<Server | null>(null);
  const [testing, setTesting] = React.useState<Server | null>(null);
  const [accepting, setAccepting] = React.useState<{ server: Server; fingerprint: string | null } | null>(null);
  const [bulk, setBulk] = React.useState<Record<string, ServerCheck>>({});
  const [pageError, setPageError] = React.useState<unknown>(null);

  const test = useMutation({
    mutationFn: (s: Server) => api.post<ServerCheck>(`/api/v1/servers/${s.id}/test`),
    onSettled: () => qc.invalidateQueries({ queryKey: queryKeys.servers }),
  });
  const check = useMutation({
    mutationFn: () => api.get<BulkStatus>("/api/v1/servers/status"),
    onSuccess: (r) => {
      setBulk(Object.fromEntries(r.servers.map((s) => [s.server_id, s])));
      qc.invalidateQueries({ queryKey: queryKeys.servers });
    },
    onError: setPageError,
  });
  const del = useMutation({
    mutationFn: (s: Server) => api.del(`/api/v1/servers/${s.id}`),
    onSuccess: () => {
      setDeleting(null);
      qc.invalidateQueries({ queryKey: queryKeys.servers });
    },
  });
  const accept = useMutation({
    mutationFn: ({ server, fingerprint }: { server: Server; fingerprint: string | null }) =>
      api.post<Server>(`/api/v1/servers/${server.id}/host-key/accept`, fingerprint ? { fingerprint } : undefined),
    onSuccess: () => {
      setAccepting(null);
      setTesting(null);
      test.reset();
      qc.invalidateQueries({ queryKey: queryKeys.servers });
    },
  });

  const runTest = (s: Server) => {
    setTesting(s);
    test.mutate(s);
  };

  const list = servers.data?.servers ?? [];
  return (
    <div>
      <PageHeader
        title="Servers"
        description="SSH targets. Secrets are stored encrypted and never shown again."
        actions={
          <>
            <Button variant="outline" onClick={() => check.mutate()} disabled={check.isPending || list.length === 0}>
              {check.isPending ? "Checking…" : "Check all"}
            </Button>
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
      ) : list.length === 0 ? (
        <EmptyState title="No servers yet">
          <p>Add a host with a password, a pasted key or an uploaded key file.</p>
          <Button className="mt-3" onClick={() => setEditing("new")}>
            Add server
          </Button>
        </EmptyState>
      ) : (
        <Table aria-label="Servers">
          <thead>
            <tr>
              <Th>Name</Th>
              <Th>Address</Th>
              <Th>Auth</Th>
              <Th>Tags</Th>
              <Th>Status</Th>
              <Th>Host key</Th>
              <Th>
                <span className="sr-only">Actions</span>
              </Th>
            </tr>
          </thead>
          <tbody>
            {list.map((s) => {
              const b = bulk[s.id];
              return (
                <tr key={s.id} data-server={s.name} className="hover:bg-muted/40">
                  <Td className="font-medium">
                    {s.name}
                    {!s.is_active ? <Badge className="ml-2">inactive</Badge> : null}
                  </Td>
                  <Td className="whitespace-nowrap font-mono text-xs">
                    {s.user}@{s.hostname}:{s.port}
                  </Td>
                  <Td className="text-xs">{s.pem_file_id ? "key file" : s.auth_type === "key" ? "key" : "password"}</Td>
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
          </tbody>
        </Table>
      )}

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

      {accepting ? (
        <Dialog
          open
          onClose={() => setAccepting(null)}
          title="Accept the new host key?"
          description="The server presents a different host key than the one pinned. This is expected after a reinstall or key rotation, and is also what a man-in-the-middle looks like. Compare the fingerprint with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) before accepting."
        >
          <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-2 text-sm">
            <dt className="text-muted-foreground">Pinned</dt>
            <dd className="break-all font-mono text-xs">{accepting.server.host_key_fingerprint ?? "—"}</dd>
            <dt className="text-muted-foreground">Presented</dt>
            <dd className="break-all font-mono text-xs">{accepting.fingerprint ?? "(the key the server presents now)"}</dd>
          </dl>
          {accept.isError ? (
            <div className="mt-3">
              <ErrorState error={accept.error} title="Not accepted" />
            </div>
          ) : null}
          <div className="mt-4 flex justify-end gap-2">
            <Button variant="outline" onClick={() => setAccepting(null)}>
              Keep the old key
            </Button>
            <Button variant="destructive" disabled={accept.isPending} onClick={() => accept.mutate(accepting)}>
              Accept new key
            </Button>
          </div>
        </Dialog>
      ) : null}

      {deleting ? (
        <Dialog open onClose={() => setDeleting(null)} title={`Delete ${deleting.name}?`} description="The server and its stored credentials are removed. Jobs already run on it stay in the history.">
          {del.isError ? <ErrorState error={del.error} title="Not deleted" /> : null}
          <div className="mt-4 flex justify-end gap-2">
            <Button variant="outline" onClick={() => setDeleting(null)}>
              Cancel
            </Button>
            <Button variant="destructive" disabled={del.isPending} onClick={() => del.mutate(deleting)}>
              Delete server
            </Button>
          </div>
        </Dialog>
      ) : null}
    </div>
  );
}
