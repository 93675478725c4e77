"use client";
// Host-key review: scan the keys a selection of servers presents now (a tag, or the servers an
// import just named: ?ids=), tick the ones to trust (new keys are ticked, mismatches are not) and
// pin exactly those fingerprints in one call. A read-only token (role from GET /me) sees the stored
// pins and pending mismatches but can neither scan nor accept.
import * as React from "react";
import Link from "next/link";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "@/lib/api";
import { meQuery, serversQuery } from "@/lib/queries";
import { queryKeys } from "@/lib/query-keys";
import { formatTime } from "@/lib/format";
import {
  acceptable,
  acceptBody,
  defaultSelection,
  reviewState,
  stateCounts,
  storedKeys,
  toggle,
  toggleState,
  type ReviewState,
  type ScannedKey,
} from "@/lib/hostkeys";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Badge, type Tone } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Select } from "@/components/ui/input";
import { Table, Td, Th } from "@/components/ui/table";

const STATE_TONES: Record<ReviewState, Tone> = { new: "blue", matches: "green", mismatch: "red", unreachable: "gray", "not scanned": "neutral" };
const forbidden = (e: unknown) => e instanceof ApiError && e.status === 403;

export default function HostKeysPage() {
  const qc = useQueryClient();
  const servers = useQuery(serversQuery());
  const all = React.useMemo(() => servers.data?.servers ?? [], [servers.data]);
  const tags = React.useMemo(() => Array.from(new Set(all.flatMap((s) => s.tags))).sort(), [all]);
  const [sel, setSelSource] = React.useState<{ ids: string[] } | { tag: string } | null>(null);
  React.useEffect(() => {
    const q = new URLSearchParams(window.location.search);
    const ids = (q.get("ids") ?? "").split(",").filter(Boolean);
    setSelSource(ids.length ? { ids } : q.get("tag") ? { tag: q.get("tag")! } : { ids: [] });
  }, []);
  const chosen = React.useMemo(() => {
    if (!sel) return [];
    if ("tag" in sel) return all.filter((s) => s.tags.includes(sel.tag));
    if (sel.ids.length) {
      const want = new Set(sel.ids);
      return all.filter((s) => want.has(s.id));
    }
    return all.filter((s) => !s.host_key_fingerprint || s.host_key_presented);
  }, [all, sel]);

  const [keys, setKeys] = React.useState<ScannedKey[] | null>(null);
  const [ticked, setTicked] = React.useState<Set<string>>(new Set());
  const [done, setDone] = React.useState<number | null>(null);
  const scan = useMutation({
    mutationFn: (ids: string[]) => api.post<{ keys: ScannedKey[] }>("/api/v1/servers/host-keys/scan", { servers: ids }),
    onSuccess: (r) => {
      setKeys(r.keys);
      setTicked(defaultSelection(r.keys));
    },
  });
  // The role from GET /me; a 403 on the scan (an API without /me, a token demoted meanwhile) too.
  const me = useQuery(meQuery());
  const viewer = me.data?.role === "viewer";
  const readOnly = viewer || forbidden(scan.error);
  const accept = useMutation({
    mutationFn: () => api.post<{ accepted: number }>("/api/v1/servers/host-keys/accept", acceptBody(keys ?? [], ticked)),
    onSuccess: (r) => {
      setDone(r.accepted);
      qc.invalidateQueries({ queryKey: queryKeys.servers });
      scan.mutate(chosen.map((s) => s.id));
    },
  });
  const ids = chosen.map((s) => s.id).join(",");
  const ready = servers.isSuccess && sel !== null && !me.isPending;
  // Scan whenever the selection changes (a read-only token gets its 403 once and sees the stored state).
  React.useEffect(() => {
    if (!ready) return;
    setKeys(null);
    // A viewer cannot scan (it connects out: a write for the API); it sees the stored state.
    if (ids && !viewer) scan.mutate(ids.split(","));
    // Not on `scan`: the mutation object is new every render; only the selection triggers a scan.
  }, [ready, ids, viewer]);

  const shown = keys ?? (readOnly ? storedKeys(chosen) : null);
  const counts = shown ? stateCounts(shown) : null;
  const selBody = keys ? acceptBody(keys, ticked).keys.length : 0;
  const label = !sel ? "" : "tag" in sel ? `servers tagged ${sel.tag}` : sel.ids.length ? `the ${sel.ids.length} servers of the import` : "unpinned servers and pending mismatches";

  return (
    <div>
      <PageHeader
        title="Host-key review"
        description="Compare each presented fingerprint with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) before trusting it. New keys are ticked; a mismatch is never ticked for you."
        actions={
          <Link href="/servers/" className="inline-flex h-9 items-center rounded-md border border-input px-4 text-sm font-medium hover:bg-accent">
            All servers
          </Link>
        }
      />
      <div className="mb-3 flex flex-wrap items-center gap-2">
        <div className="w-56">
          <Select
            aria-label="Servers to review"
            className="h-9"
            value={sel && "tag" in sel ? sel.tag : ""}
            onChange={(e) => {
              const tag = e.target.value;
              setSelSource(tag ? { tag } : { ids: [] });
              setDone(null);
              window.history.replaceState(null, "", `${window.location.pathname}${tag ? `?tag=${encodeURIComponent(tag)}` : ""}`);
            }}
          >
            <option value="">{sel && "ids" in sel && sel.ids.length ? "The imported servers" : "Unpinned or mismatched"}</option>
            {tags.map((t) => (
              <option key={t} value={t}>
                tag: {t}
              </option>
            ))}
          </Select>
        </div>
        <span className="text-sm text-muted-foreground" data-testid="review-selection">
          {chosen.length} {label}
        </span>
        <Button variant="outline" size="sm" onClick={() => scan.mutate(chosen.map((s) => s.id))} disabled={!chosen.length || scan.isPending || readOnly}>
          {scan.isPending ? "Scanning…" : "Scan again"}
        </Button>
      </div>
      {readOnly ? (
        <p role="note" className="mb-3 rounded-md border border-amber-500/40 bg-amber-500/10 p-2 text-sm" data-testid="review-read-only">
          This token is read-only: it sees the stored pins and pending mismatches, but scanning (which connects to the hosts) and accepting need an operator.
        </p>
      ) : null}
      {scan.isError && !readOnly ? <ErrorState error={scan.error} title="The scan failed" /> : null}
      {servers.isError ? (
        <ErrorState error={servers.error} onRetry={() => servers.refetch()} title="Could not load servers" />
      ) : !ready || (scan.isPending && !keys) ? (
        <LoadingRows rows={4} label={ready ? "Scanning host keys" : "Loading servers"} />
      ) : !chosen.length ? (
        <EmptyState title="Nothing to review">
          <p>No server is unpinned or has a pending mismatch. Pick a tag to scan its servers.</p>
        </EmptyState>
      ) : shown ? (
        <>
          <div className="mb-2 flex flex-wrap items-center gap-2 text-sm" data-testid="review-counts">
            {(Object.keys(STATE_TONES) as ReviewState[])
              .filter((s) => counts![s] > 0)
              .map((s) => (
                <Badge key={s} tone={STATE_TONES[s]}>
                  {counts![s]} {s}
                </Badge>
              ))}
            {keys && counts!.mismatch > 0 ? (
              <Button size="sm" variant="ghost" onClick={() => setTicked(toggleState(keys, ticked, "mismatch", true))}>
                Tick the mismatches too
              </Button>
            ) : null}
          </div>
          <Table aria-label="Host keys">
            <thead>
              <tr>
                <Th>
                  <span className="sr-only">Accept</span>
                </Th>
                <Th>Server</Th>
                <Th>State</Th>
                <Th>Presented now</Th>
                <Th>Pinned</Th>
                <Th>First seen</Th>
              </tr>
            </thead>
            <tbody>
              {shown.map((k) => {
                const st = reviewState(k);
                const can = !!keys && acceptable(k) && !readOnly;
                return (
                  <tr key={k.server_id} data-server={k.name} data-state={st}>
                    <Td>
                      <input
                        type="checkbox"
                        className="h-4 w-4"
                        aria-label={`Accept the key of ${k.name}`}
                        checked={ticked.has(k.server_id)}
                        disabled={!can}
                        onChange={(e) => keys && setTicked(toggle(keys, ticked, k.server_id, e.target.checked))}
                      />
                    </Td>
                    <Td className="whitespace-nowrap font-medium">
                      <Link className="hover:underline" href={`/servers/view/?id=${k.server_id}`}>
                        {k.name}
                      </Link>
                    </Td>
                    <Td>
                      <Badge tone={STATE_TONES[st]}>{st}</Badge>
                      {k.error ? <div className="max-w-xs truncate text-xs text-destructive" title={k.error}>{k.error}</div> : null}
                    </Td>
                    <Td className="break-all font-mono text-xs">
                      {k.presented ?? "—"}
                      {k.key_type ? <div className="text-muted-foreground">{k.key_type}</div> : null}
                    </Td>
                    <Td className="break-all font-mono text-xs">{k.pinned ?? <span className="text-muted-foreground">not pinned</span>}</Td>
                    <Td className="whitespace-nowrap text-xs">{k.first_seen_at ? formatTime(k.first_seen_at) : "—"}</Td>
                  </tr>
                );
              })}
            </tbody>
          </Table>
          {accept.isError ? (
            <div className="mt-3">
              <ErrorState error={accept.error} title="Nothing was accepted" />
            </div>
          ) : null}
          {done !== null ? (
            <p role="status" className="mt-3 text-sm" data-testid="review-done">
              Pinned {done} host key{done === 1 ? "" : "s"}.
            </p>
          ) : null}
          <div className="mt-4 flex justify-end">
            <Button onClick={() => accept.mutate()} disabled={readOnly || !selBody || accept.isPending} title={readOnly ? "Needs an operator token" : undefined}>
              {accept.isPending ? "Accepting…" : `Accept ${selBody} checked key${selBody === 1 ? "" : "s"}`}
            </Button>
          </div>
        </>
      ) : null}
    </div>
  );
}
