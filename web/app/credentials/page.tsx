"use client";
// Credentials: keys (with an optional user certificate) and passwords that many servers log in
// with; create, rotate (every server using one picks the new version at its next connection) and
// delete (refused while servers use it: the API's 409 names them). Secrets are never shown.
import * as React from "react";
import Link from "next/link";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import { certificateDisplay } from "@/lib/credentials";
import { relativeTime, formatTime } from "@/lib/format";
import { credentialQuery, credentialsQuery } from "@/lib/queries";
import { queryKeys } from "@/lib/query-keys";
import type { Credential } from "@/lib/types";
import { useCanWrite } from "@/lib/use-role";
import { CertBadge } from "@/components/credentials/cert-badge";
import { CredentialForm } from "@/components/credentials/credential-form";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { Table, Td, Th } from "@/components/ui/table";

const flags = (c: Credential) =>
  [
    c.has_private_key && "key",
    c.has_passphrase && "passphrase",
    c.has_password && "password",
    c.has_sudo_password && "sudo password",
  ].filter(Boolean) as string[];

export default function CredentialsPage() {
  const q = useQuery(credentialsQuery());
  const canWrite = useCanWrite();
  const [creating, setCreating] = React.useState(false);
  const [rotating, setRotating] = React.useState<Credential | null>(null);
  const [deleting, setDeleting] = React.useState<Credential | null>(null);
  const [users, setUsers] = React.useState<Credential | null>(null);
  const [done, setDone] = React.useState<{ c: Credential; from?: number } | null>(null);
  const [own, setOwn] = React.useState(false);
  const all = q.data?.credentials ?? [];
  const privateCount = all.filter((c) => c.owner_server_id).length;
  const list = own ? all : all.filter((c) => !c.owner_server_id);
  const expiring = list.filter((c) => c.certificate && certificateDisplay(c.certificate).state !== "valid").length;
  return (
    <div>
      <PageHeader
        title="Credentials"
        description="A key (with its passphrase and an optional OpenSSH user certificate) or a password, plus an optional sudo password, shared by many servers. Secrets are encrypted, write-only and never shown."
        actions={canWrite ? <Button onClick={() => setCreating(true)}>New credential</Button> : null}
      />
      {done ? (
        <div role="status" data-testid="credential-saved" className="mb-4 rounded-md border border-emerald-500/40 bg-emerald-500/5 p-3 text-sm">
          {done.from !== undefined ? (
            <>
              <span className="font-medium">{done.c.name}</span> rotated: version {done.from} → {done.c.version}. It applies to {done.c.servers === 1 ? "its 1 server" : `its ${done.c.servers} servers`} at each one&apos;s next connection.
            </>
          ) : (
            <>
              <span className="font-medium">{done.c.name}</span> created (version {done.c.version}). Pick it in a server&apos;s form under Authentication.
            </>
          )}
          <Button size="sm" variant="ghost" className="ml-2" onClick={() => setDone(null)}>
            Dismiss
          </Button>
        </div>
      ) : null}
      {q.isError ? (
        <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load credentials" />
      ) : q.isPending ? (
        <LoadingRows label="Loading credentials" />
      ) : (
        <>
          <div className="mb-3 flex flex-wrap items-center gap-3 text-sm">
            <span className="text-muted-foreground" data-testid="credentials-count">
              {list.length} credential{list.length === 1 ? "" : "s"}
            </span>
            {expiring ? <Badge tone="amber">{expiring} certificate{expiring === 1 ? "" : "s"} expired, not yet valid or expiring soon</Badge> : null}
            {privateCount ? (
              <label className="ml-auto flex items-center gap-2">
                <input type="checkbox" checked={own} onChange={(e) => setOwn(e.target.checked)} /> Show servers&apos; own credentials ({privateCount})
              </label>
            ) : null}
          </div>
          {list.length === 0 ? (
            <EmptyState title="No shared credentials">
              Create one key or password and point many servers at it: rotating it then updates all of them.
            </EmptyState>
          ) : (
            <Table aria-label="Credentials">
              <thead>
                <tr>
                  <Th>Name</Th>
                  <Th>Kind</Th>
                  <Th>Fingerprint</Th>
                  <Th>Stored</Th>
                  <Th>Certificate</Th>
                  <Th>Version</Th>
                  <Th>Servers</Th>
                  <Th>Updated</Th>
                  <Th>
                    <span className="sr-only">Actions</span>
                  </Th>
                </tr>
              </thead>
              <tbody>
                {list.map((c) => (
                  <tr key={c.id} data-credential={c.name} className="hover:bg-muted/40">
                    <Td className="font-medium">
                      {c.name}
                      {c.owner_server_id ? <Badge className="ml-2">server&apos;s own</Badge> : null}
                    </Td>
                    <Td>
                      <Badge tone={c.kind === "key" ? "blue" : "neutral"} className="whitespace-nowrap">{c.kind === "key" ? `key${c.key_type ? ` · ${c.key_type}` : ""}` : "password"}</Badge>
                    </Td>
                    <Td className="max-w-[14rem] truncate font-mono text-xs" title={c.fingerprint ?? undefined}>
                      {c.fingerprint ?? "—"}
                    </Td>
                    <Td>
                      <div className="flex flex-wrap gap-1">
                        {flags(c).map((f) => (
                          <Badge key={f} tone="gray">
                            {f}
                          </Badge>
                        ))}
                      </div>
                    </Td>
                    <Td>
                      {c.certificate ? (
                        <div className="grid gap-1">
                          <CertBadge cert={c.certificate} />
                          <span className="text-xs text-muted-foreground" title={`key id ${c.certificate.key_id}; signed by ${c.certificate.signed_by}`}>
                            {c.certificate.principals.length ? c.certificate.principals.join(", ") : "any principal"} · until {c.certificate.valid_before === "forever" ? "forever" : formatTime(c.certificate.valid_before)}
                          </span>
                        </div>
                      ) : (
                        <span className="text-muted-foreground">—</span>
                      )}
                    </Td>
                    <Td className="tabular-nums" data-testid="version">
                      v{c.version}
                    </Td>
                    <Td className="tabular-nums">
                      {c.servers ? (
                        <Button size="sm" variant="ghost" onClick={() => setUsers(c)} aria-label={`Servers using ${c.name}`}>
                          {c.servers}
                        </Button>
                      ) : (
                        0
                      )}
                    </Td>
                    <Td className="whitespace-nowrap text-xs" title={formatTime(c.updated_at)}>
                      {relativeTime(c.updated_at)}
                    </Td>
                    <Td>
                      {canWrite ? (
                        <div className="flex gap-1">
                          <Button size="sm" variant="outline" onClick={() => setRotating(c)} aria-label={`Rotate ${c.name}`}>
                            Rotate
                          </Button>
                          {c.owner_server_id ? null : (
                            <Button size="sm" variant="ghost" className="text-destructive" onClick={() => setDeleting(c)} aria-label={`Delete ${c.name}`}>
                              Delete
                            </Button>
                          )}
                        </div>
                      ) : null}
                    </Td>
                  </tr>
                ))}
              </tbody>
            </Table>
          )}
        </>
      )}
      {creating ? (
        <Dialog open onClose={() => setCreating(false)} title="New credential" className="max-w-2xl">
          <CredentialForm
            current={null}
            onCancel={() => setCreating(false)}
            onDone={(c) => {
              setCreating(false);
              setDone({ c });
            }}
          />
        </Dialog>
      ) : null}
      {rotating ? (
        <Dialog open onClose={() => setRotating(null)} title={`Rotate ${rotating.name}`} description={`Now at version ${rotating.version}. Give the new secrets; empty fields keep what is stored.`} className="max-w-2xl">
          <CredentialForm
            current={rotating}
            onCancel={() => setRotating(null)}
            onDone={(c) => {
              setDone({ c, from: rotating.version });
              setRotating(null);
            }}
          />
        </Dialog>
      ) : null}
      {users ? <UsersDialog credential={users} onClose={() => setUsers(null)} /> : null}
      {deleting ? <DeleteCredentialDialog credential={deleting} onClose={() => setDeleting(null)} /> : null}
    </div>
  );
}

function UsersDialog({ credential: c, onClose }: { credential: Credential; onClose: () => void }) {
  const detail = useQuery(credentialQuery(c.id));
  return (
    <Dialog open onClose={onClose} title={`Servers using ${c.name}`} description="A rotation reaches each of them at its next connection.">
      {detail.isError ? (
        <ErrorState error={detail.error} title="Could not load the servers" />
      ) : detail.isPending ? (
        <LoadingRows rows={2} label="Loading servers" />
      ) : (
        <ul className="grid gap-1 text-sm" data-testid="credential-server-list">
          {detail.data.server_names.map((n) => (
            <li key={n}>
              <Link href={`/servers/?q=${encodeURIComponent(n)}`} className="text-primary hover:underline">
                {n}
              </Link>
            </li>
          ))}
        </ul>
      )}
      <div className="mt-4 flex justify-end">
        <Button onClick={onClose}>Done</Button>
      </div>
    </Dialog>
  );
}

function DeleteCredentialDialog({ credential: c, onClose }: { credential: Credential; onClose: () => void }) {
  const qc = useQueryClient();
  const detail = useQuery(credentialQuery(c.id));
  const del = useMutation({
    mutationFn: () => api.del<void>(`/api/v1/credentials/${encodeURIComponent(c.id)}`),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: queryKeys.credentials.all });
      onClose();
    },
    // A 409 names the servers; refresh the list of them shown below.
    onError: () => detail.refetch(),
  });
  const users = detail.data?.server_names ?? [];
  return (
    <Dialog open onClose={onClose} title={`Delete ${c.name}?`} description="Only a credential no server uses can be deleted; its encrypted secrets are removed.">
      {del.isError ? <ErrorState error={del.error} title="Not deleted" /> : null}
      {users.length ? (
        <div className="mt-3 text-sm" data-testid="credential-users">
          <p className="font-medium">Used by {users.length === 1 ? "1 server" : `${users.length} servers`}: point them at another credential first.</p>
          <ul className="mt-1 flex flex-wrap gap-1">
            {users.map((n) => (
              <li key={n}>
                <Badge>{n}</Badge>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <div className="mt-4 flex justify-end gap-2">
        <Button variant="outline" onClick={onClose}>
          Cancel
        </Button>
        <Button variant="destructive" disabled={del.isPending} onClick={() => del.mutate()}>
          Delete credential
        </Button>
      </div>
    </Dialog>
  );
}
