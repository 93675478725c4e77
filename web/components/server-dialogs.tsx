"use client";
// The servers page's dialogs: a connection test's result, accepting a changed
// host key, deleting a server.
import type { Server, ServerCheck } from "@/lib/types";
import { ErrorState } from "./states";
import { Badge } from "./ui/badge";
import { Button } from "./ui/button";
import { Dialog } from "./ui/dialog";

type Pending = { isPending: boolean; isError: boolean; error: unknown };

export function TestResult({ server, result, onAccept }: { server: Server; result: ServerCheck; onAccept: () => void }) {
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

export function AcceptKeyDialog({
  accepting,
  accept,
  onAccept,
  onClose,
}: {
  accepting: { server: Server; fingerprint: string | null };
  accept: Pending;
  onAccept: () => void;
  onClose: () => void;
}) {
  return (
    <Dialog
      open
      onClose={onClose}
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
        <Button variant="outline" onClick={onClose}>
          Keep the old key
        </Button>
        <Button variant="destructive" disabled={accept.isPending} onClick={onAccept}>
          Accept new key
        </Button>
      </div>
    </Dialog>
  );
}

export function DeleteServerDialog({ server: deleting, del, onDelete, onClose }: { server: Server; del: Pending; onDelete: () => void; onClose: () => void }) {
  return (
    <Dialog open onClose={onClose} title={`Delete ${deleting.name}?`} description="The server and its stored credentials are removed. Jobs already run on it stay in the history.">
      {del.isError ? <ErrorState error={del.error} title="Not deleted" /> : null}
      <div className="mt-4 flex justify-end gap-2">
        <Button variant="outline" onClick={onClose}>
          Cancel
        </Button>
        <Button variant="destructive" disabled={del.isPending} onClick={onDelete}>
          Delete server
        </Button>
      </div>
    </Dialog>
  );
}
