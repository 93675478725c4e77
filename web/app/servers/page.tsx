"use client";
// Servers: the list with each host's last check, and its add, edit, test, check-all and delete.
import * as React from "react";
import { useQuery } from "@tanstack/react-query";
import { serversQuery } from "@/lib/queries";
import type { Server, ServerCheck } from "@/lib/types";
import { formatTime, relativeTime } from "@/lib/format";
import { useServerActions } from "@/lib/use-server-actions";
import { AcceptKeyDialog, DeleteServerDialog, TestResult } from "@/components/server-dialogs";
import { ServerFormDialog } from "@/components/server-form";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { ServerStatusBadge } from "@/components/status-badge";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { Table, Td, Th } from "@/components/ui/table";

export default function ServersPage() {
  const servers = useQuery(serversQuery());
  const [editing, setEditing] = React.useState<Server | "new" | null>(null);
  const [deleting, setDeleting] = React.useState<Server | null>(null);
  const [testing, setTesting] = React.useState<Server | null>(null);
  const [accepting, setAccepting] = React.useState<{ server: Server; fingerprint: string | null } | null>(null);
  const [bulk, setBulk] = React.useState<Record<string, ServerCheck>>({});
  const [pageError, setPageError] = React.useState<unknown>(null);

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

      {accepting ? <AcceptKeyDialog accepting={accepting} accept={accept} onAccept={() => accept.mutate(accepting)} onClose={() => setAccepting(null)} /> : null}

      {deleting ? <DeleteServerDialog server={deleting} del={del} onDelete={() => del.mutate(deleting)} onClose={() => setDeleting(null)} /> : null}
    </div>
  );
}
