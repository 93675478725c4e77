"use client";
// One server: its address, auth and jump chain, and its host-key trust: the pinned key and when it
// was first seen, and a pending mismatch (pinned vs presented) to accept or keep.
import * as React from "react";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import { serversQuery } from "@/lib/queries";
import { useCanWrite } from "@/lib/use-role";
import { queryKeys } from "@/lib/query-keys";
import { formatTime, relativeTime } from "@/lib/format";
import { chainText, jumpChain, keyTypeNote, type ScannedKey } from "@/lib/hostkeys";
import type { Server } from "@/lib/types";
import { ServerFormDialog } from "@/components/server-form";
import { ServerCredential } from "@/components/servers/CredentialPicker";
import { ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { ServerStatusBadge } from "@/components/status-badge";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";

function Meta({ label, children, testId }: { label: string; children: React.ReactNode; testId?: string }) {
  return (
    <div>
      <dt className="text-xs text-muted-foreground">{label}</dt>
      <dd className="mt-0.5 break-words text-sm" data-testid={testId}>
        {children}
      </dd>
    </div>
  );
}

function HostKeyCard({ server }: { server: Server }) {
  const qc = useQueryClient();
  // "Keep" writes nothing: the pin stays and connections keep refusing the presented key.
  const [kept, setKept] = React.useState<string | null>(null);
  const canWrite = useCanWrite();
  const accept = useMutation({
    mutationFn: () => api.post<Server>(`/api/v1/servers/${server.id}/host-key/accept`, { fingerprint: server.host_key_presented }),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.servers }),
  });
  // The type is read from the host on request (a scan connects out: an operator's action).
  const probe = useMutation({
    mutationFn: () => api.post<{ keys: ScannedKey[] }>("/api/v1/servers/host-keys/scan", { servers: [server.id] }).then((r) => r.keys[0]),
  });
  const pending = server.host_key_presented && kept !== server.host_key_presented ? server.host_key_presented : null;
  return (
    <Card data-testid="host-key">
      <CardHeader>
        <CardTitle>Host key</CardTitle>
      </CardHeader>
      <CardContent>
        <dl className="grid gap-3 sm:grid-cols-3">
          <Meta label="Pinned fingerprint" testId="host-key-pinned">
            {server.host_key_fingerprint ? (
              <span className="break-all font-mono text-xs">{server.host_key_fingerprint}</span>
            ) : (
              <span className="text-muted-foreground">not pinned: the first connection pins the key it sees</span>
            )}
          </Meta>
          <Meta label="Type" testId="host-key-type">
            {probe.data ? (
              <span className="font-mono text-xs">{keyTypeNote(probe.data)}</span>
            ) : probe.isError ? (
              <span className="text-xs text-destructive">{(probe.error as Error).message}</span>
            ) : server.host_key_fingerprint && canWrite ? (
              <Button size="sm" variant="outline" onClick={() => probe.mutate()} disabled={probe.isPending} title="The API stores fingerprints only: the type is read from the host">
                {probe.isPending ? "Reading…" : "Read the key type from the host"}
              </Button>
            ) : (
              "—"
            )}
          </Meta>
          <Meta label="First seen" testId="host-key-first-seen">
            {server.host_key_first_seen_at ? (
              <span title={formatTime(server.host_key_first_seen_at)}>
                {formatTime(server.host_key_first_seen_at)} ({relativeTime(server.host_key_first_seen_at)})
              </span>
            ) : (
              "—"
            )}
          </Meta>
        </dl>
        {pending ? (
          <div role="alert" className="mt-4 grid gap-3 rounded-md border border-destructive/40 bg-destructive/5 p-3 text-sm" data-testid="host-key-mismatch">
            <p className="font-medium">
              The host presented a different key than the pinned one. Jobs on {server.name} fail with host_key_mismatch until you decide. This is expected after a
              reinstall or key rotation, and is also what a man-in-the-middle looks like: compare with the host&apos;s own fingerprint first.
            </p>
            <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1">
              <dt className="text-muted-foreground">Pinned</dt>
              <dd className="break-all font-mono text-xs" data-testid="mismatch-pinned">
                {server.host_key_fingerprint}
              </dd>
              <dt className="text-muted-foreground">Presented</dt>
              <dd className="break-all font-mono text-xs" data-testid="mismatch-presented">
                {pending}
              </dd>
            </dl>
            {accept.isError ? <ErrorState error={accept.error} title="Not accepted" /> : null}
            {canWrite ? (
              <div className="flex gap-2">
                <Button variant="outline" onClick={() => setKept(pending)}>
                  Keep the pinned key
                </Button>
                <Button variant="destructive" onClick={() => accept.mutate()} disabled={accept.isPending}>
                  {accept.isPending ? "Accepting…" : "Accept the presented key"}
                </Button>
              </div>
            ) : (
              <p className="text-xs text-muted-foreground" data-testid="host-key-read-only">
                This token is read-only: an operator accepts or keeps the key.
              </p>
            )}
          </div>
        ) : kept && server.host_key_presented === kept ? (
          <p className="mt-4 text-sm" role="status" data-testid="host-key-kept">
            Kept the pinned key. The presented key ({kept}) stays refused; it is asked about again on this page.
          </p>
        ) : null}
      </CardContent>
    </Card>
  );
}

function ServerView() {
  const id = useSearchParams().get("id");
  const q = useQuery({
    queryKey: [...queryKeys.servers, id ?? ""],
    queryFn: ({ signal }) => api.get<Server>(`/api/v1/servers/${encodeURIComponent(id ?? "")}`, undefined, signal),
    enabled: !!id,
  });
  const all = useQuery(serversQuery()).data?.servers ?? [];
  const [editing, setEditing] = React.useState(false);
  if (!id) return <ErrorState error={new Error("No server id in the address (expected /servers/view/?id=…).")} />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load the server" />;
  if (q.isPending) return <LoadingRows rows={6} label="Loading the server" />;
  const s = q.data;
  const chain = jumpChain(all, s, s.jump_server_id);
  const jump = all.find((x) => x.id === s.jump_server_id);
  return (
    <div>
      <PageHeader
        title={s.name}
        description={
          <span className="font-mono text-xs">
            {s.user}@{s.hostname}:{s.port}
          </span>
        }
        actions={
          <>
            <Link href="/servers/" className="inline-flex h-9 items-center rounded-md border border-input px-4 text-sm font-medium hover:bg-accent">
              All servers
            </Link>
            <Button onClick={() => setEditing(true)}>Edit</Button>
          </>
        }
      />
      <div className="grid gap-4">
        <Card>
          <CardContent className="pt-5">
            <dl className="grid gap-3 sm:grid-cols-4">
              <Meta label="Status">
                <ServerStatusBadge status={s.last_status} />
                <span className="ml-2 text-xs text-muted-foreground">{s.last_checked_at ? relativeTime(s.last_checked_at) : "never checked"}</span>
              </Meta>
              <Meta label="Credential"><ServerCredential server={s} /></Meta>
              <Meta label="Tags">
                <span className="flex flex-wrap gap-1">
                  {s.tags.length ? s.tags.map((t) => <Badge key={t}>{t}</Badge>) : "—"}
                </span>
              </Meta>
              <Meta label="Active">{s.is_active ? "yes" : "no (receives no jobs)"}</Meta>
              <Meta label="Reached through" testId="jump-chain">
                {s.jump_server_id ? (
                  <>
                    <span className="font-mono text-xs">{chainText(chain)}</span>
                    {jump ? (
                      <>
                        {" "}
                        <Link className="text-xs text-primary hover:underline" href={`/servers/view/?id=${jump.id}`}>
                          open {jump.name}
                        </Link>
                      </>
                    ) : null}
                  </>
                ) : (
                  "directly (no jump host)"
                )}
              </Meta>
              <Meta label="Max concurrent jobs">{s.max_concurrency}</Meta>
              <Meta label="Created">{formatTime(s.created_at)}</Meta>
            </dl>
          </CardContent>
        </Card>
        <HostKeyCard key={s.id} server={s} />
      </div>
      {editing ? <ServerFormDialog server={s} onClose={() => setEditing(false)} /> : null}
    </div>
  );
}

export default function ServerViewPage() {
  return (
    <React.Suspense fallback={<LoadingRows rows={6} />}>
      <ServerView />
    </React.Suspense>
  );
}
