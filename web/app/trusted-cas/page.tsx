"use client";
// Trusted CAs: certificate authorities whose host certificates stand in for a pinned host key,
// each limited to host patterns (`!pattern` excludes). Adding or deleting one takes effect at each
// server's next connection.
import * as React from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "@/lib/api";
import { nameError, patternsError, publicKeyError, splitPatterns } from "@/lib/credentials";
import { formatTime, relativeTime } from "@/lib/format";
import { trustedCasQuery } from "@/lib/queries";
import { queryKeys } from "@/lib/query-keys";
import type { TrustedCa } from "@/lib/types";
import { useCanWrite } from "@/lib/use-role";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { Field, Input, Textarea } from "@/components/ui/input";
import { Table, Td, Th } from "@/components/ui/table";

export default function TrustedCasPage() {
  const q = useQuery(trustedCasQuery());
  const canWrite = useCanWrite();
  const [adding, setAdding] = React.useState(false);
  const [deleting, setDeleting] = React.useState<TrustedCa | null>(null);
  const [notice, setNotice] = React.useState<string | null>(null);
  const list = q.data?.trusted_cas ?? [];
  return (
    <div>
      <PageHeader
        title="Trusted CAs"
        description="A host presenting a certificate signed by one of these CAs, for its hostname and within the CA's host patterns, needs no pinned key. A wrong CA, principal or an expired certificate fails with host_key_untrusted."
        actions={canWrite ? <Button onClick={() => setAdding(true)}>Add CA</Button> : null}
      />
      {notice ? (
        <div role="status" data-testid="ca-notice" className="mb-4 rounded-md border border-emerald-500/40 bg-emerald-500/5 p-3 text-sm">
          {notice}
          <Button size="sm" variant="ghost" className="ml-2" onClick={() => setNotice(null)}>
            Dismiss
          </Button>
        </div>
      ) : null}
      {q.isError ? (
        <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load trusted CAs" />
      ) : q.isPending ? (
        <LoadingRows label="Loading trusted CAs" />
      ) : list.length === 0 ? (
        <EmptyState title="No trusted CAs">Hosts are verified by their pinned key (trust on first use, an accepted key or an imported known_hosts).</EmptyState>
      ) : (
        <Table aria-label="Trusted CAs">
          <thead>
            <tr>
              <Th>Name</Th>
              <Th>Key</Th>
              <Th>Host patterns</Th>
              <Th>Added</Th>
              <Th>
                <span className="sr-only">Actions</span>
              </Th>
            </tr>
          </thead>
          <tbody>
            {list.map((ca) => (
              <tr key={ca.id} data-ca={ca.name} className="hover:bg-muted/40">
                <Td className="font-medium">{ca.name}</Td>
                <Td className="max-w-[18rem]">
                  <div className="truncate font-mono text-xs" title={ca.public_key}>
                    {ca.fingerprint}
                  </div>
                  <div className="text-xs text-muted-foreground">{ca.key_type}</div>
                </Td>
                <Td>
                  <div className="flex flex-wrap gap-1">
                    {ca.patterns.map((p) =>
                      p.startsWith("!") ? (
                        <Badge key={p} tone="red" title="Excluded: the CA may not vouch for these hosts">
                          not {p.slice(1)}
                        </Badge>
                      ) : (
                        <Badge key={p} tone="blue" className="font-mono">
                          {p}
                        </Badge>
                      ),
                    )}
                  </div>
                </Td>
                <Td className="whitespace-nowrap text-xs" title={formatTime(ca.created_at)}>
                  {relativeTime(ca.created_at)}
                </Td>
                <Td>
                  {canWrite ? (
                    <Button size="sm" variant="ghost" className="text-destructive" onClick={() => setDeleting(ca)} aria-label={`Delete ${ca.name}`}>
                      Delete
                    </Button>
                  ) : null}
                </Td>
              </tr>
            ))}
          </tbody>
        </Table>
      )}
      {adding ? (
        <AddCaDialog
          onClose={() => setAdding(false)}
          onAdded={(ca) => {
            setAdding(false);
            setNotice(`${ca.name} added: hosts matching ${ca.patterns.join(" ")} are verified by it from their next connection.`);
          }}
        />
      ) : null}
      {deleting ? (
        <DeleteCaDialog
          ca={deleting}
          onClose={() => setDeleting(null)}
          onDeleted={() => {
            setNotice(`${deleting.name} removed: from each server's next connection its host certificates no longer count.`);
            setDeleting(null);
          }}
        />
      ) : null}
    </div>
  );
}

function AddCaDialog({ onClose, onAdded }: { onClose: () => void; onAdded: (ca: TrustedCa) => void }) {
  const qc = useQueryClient();
  const [name, setName] = React.useState("");
  const [key, setKey] = React.useState("");
  const [patterns, setPatterns] = React.useState("");
  const [touched, setTouched] = React.useState(false);
  const list = splitPatterns(patterns);
  const local = { name: nameError(name), public_key: publicKeyError(key), patterns: patternsError(list) };
  const add = useMutation({
    mutationFn: () => api.post<TrustedCa>("/api/v1/trusted-cas", { name: name.trim(), public_key: key.trim(), patterns: list }),
    onSuccess: (ca) => {
      qc.invalidateQueries({ queryKey: queryKeys.trustedCas });
      onAdded(ca);
    },
  });
  const err = add.error instanceof ApiError ? add.error : null;
  const fe = (f: keyof typeof local) => (touched ? local[f] : null) || (err?.field === f ? err.message : null);
  return (
    <Dialog open onClose={onClose} title="Add a trusted CA" description="The CA's public key and the hosts it may vouch for." className="max-w-2xl">
      <form
        className="grid gap-4"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setTouched(true);
          if (local.name || local.public_key || local.patterns) return;
          add.mutate();
        }}
      >
        <Field label="Name" htmlFor="ca-name" error={fe("name")}>
          <Input id="ca-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="prod-host-ca" />
        </Field>
        <Field label="CA public key" htmlFor="ca-key" error={fe("public_key")} hint="The CA's .pub line (ssh-ed25519 AAAA… comment); it cannot be changed later">
          <Textarea id="ca-key" rows={3} className="font-mono text-xs" value={key} onChange={(e) => setKey(e.target.value)} placeholder="ssh-ed25519 AAAA… host-ca" />
        </Field>
        <Field label="Host patterns" htmlFor="ca-patterns" error={fe("patterns")} hint="One per line (or comma separated): * and ? wildcards, !pattern excludes; e.g. *.prod.example.com and !db.prod.example.com">
          <Textarea id="ca-patterns" rows={3} className="font-mono text-xs" value={patterns} onChange={(e) => setPatterns(e.target.value)} placeholder={"*.prod.example.com\n!db.prod.example.com"} />
        </Field>
        {err && !["name", "public_key", "patterns"].includes(err.field ?? "") ? <ErrorState error={err} title="Not added" /> : null}
        {add.error && !err ? <ErrorState error={add.error} /> : null}
        <div className="flex justify-end gap-2">
          <Button variant="outline" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" disabled={add.isPending}>
            {add.isPending ? "Adding…" : "Add CA"}
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

function DeleteCaDialog({ ca, onClose, onDeleted }: { ca: TrustedCa; onClose: () => void; onDeleted: () => void }) {
  const qc = useQueryClient();
  const del = useMutation({
    mutationFn: () => api.del<void>(`/api/v1/trusted-cas/${encodeURIComponent(ca.id)}`),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: queryKeys.trustedCas });
      onDeleted();
    },
  });
  return (
    <Dialog
      open
      onClose={onClose}
      title={`Delete ${ca.name}?`}
      description="It takes effect at each server's next connection: hosts it vouched for are then checked against their pinned key again (a different pinned key fails with host_key_mismatch)."
    >
      {del.isError ? <ErrorState error={del.error} title="Not deleted" /> : null}
      <div className="mt-4 flex justify-end gap-2">
        <Button variant="outline" onClick={onClose}>
          Cancel
        </Button>
        <Button variant="destructive" disabled={del.isPending} onClick={() => del.mutate()}>
          Delete CA
        </Button>
      </div>
    </Dialog>
  );
}
