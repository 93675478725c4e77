"use client";
import * as React from "react";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import { deliveriesQuery, notificationQuery } from "@/lib/queries";
import { queryKeys } from "@/lib/query-keys";
import { formatTime } from "@/lib/format";
import type { Delivery } from "@/lib/types";
import { TargetForm } from "@/components/recurring/target-form";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Badge, type Tone } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Dialog } from "@/components/ui/dialog";
import { Table, Td, Th } from "@/components/ui/table";

const STATE_TONES: Record<string, Tone> = { pending: "blue", sending: "blue", delivered: "green", failed: "red" };

function DeliveryRow({ d, targetId, onError }: { d: Delivery; targetId: string; onError: (e: unknown) => void }) {
  const qc = useQueryClient();
  const [open, setOpen] = React.useState(false);
  const last = d.log[d.log.length - 1];
  const redeliver = useMutation({
    mutationFn: () => api.post(`/api/v1/notifications/${encodeURIComponent(targetId)}/deliveries/${encodeURIComponent(d.id)}/redeliver`),
    onSuccess: () => {
      onError(null);
      qc.invalidateQueries({ queryKey: queryKeys.notifications.deliveries(targetId) });
    },
    onError,
  });
  return (
    <>
      <tr data-delivery={d.id} data-state={d.state}>
        <Td className="whitespace-nowrap text-xs">{formatTime(d.created_at)}</Td>
        <Td>
          <code className="font-mono text-xs">{d.event}</code>
        </Td>
        <Td>
          <Badge tone={STATE_TONES[d.state] ?? "neutral"}>{d.state}</Badge>
        </Td>
        <Td data-col="status">{d.last_status_code ?? "—"}</Td>
        <Td data-col="latency">{last ? `${last.latency_ms} ms` : "—"}</Td>
        <Td data-col="attempts">{d.attempts}</Td>
        <Td>
          <div className="flex gap-1">
            <Button size="sm" variant="ghost" aria-expanded={open} onClick={() => setOpen((o) => !o)} aria-label={`${open ? "Hide" : "Show"} attempts of ${d.id}`}>
              {open ? "Hide" : "Attempts"}
            </Button>
            <Button size="sm" variant="outline" disabled={redeliver.isPending || d.state === "sending"} onClick={() => redeliver.mutate()} aria-label={`Redeliver ${d.id}`}>
              Redeliver
            </Button>
          </div>
        </Td>
      </tr>
      {open ? (
        <tr>
          <Td colSpan={7} className="bg-muted/30">
            {d.log.length === 0 ? (
              <p className="text-xs text-muted-foreground">No attempt yet; the next is at {formatTime(d.next_attempt_at)}.</p>
            ) : (
              <table className="w-full text-xs" aria-label={`Attempts of ${d.id}`}>
                <thead>
                  <tr className="text-left text-muted-foreground">
                    <th className="py-1 pr-3 font-medium">Attempt</th>
                    <th className="py-1 pr-3 font-medium">Time</th>
                    <th className="py-1 pr-3 font-medium">Status</th>
                    <th className="py-1 pr-3 font-medium">Latency</th>
                    <th className="py-1 font-medium">Error</th>
                  </tr>
                </thead>
                <tbody>
                  {d.log.map((a) => (
                    <tr key={a.attempt}>
                      <td className="py-1 pr-3">{a.attempt}</td>
                      <td className="py-1 pr-3">{formatTime(a.at)}</td>
                      <td className="py-1 pr-3">{a.status_code ?? "no answer"}</td>
                      <td className="py-1 pr-3">{a.latency_ms} ms</td>
                      <td className="break-all py-1">{a.error ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {d.state !== "delivered" && d.state !== "failed" ? <p className="mt-1 text-xs text-muted-foreground">Retries until {formatTime(d.give_up_at)}.</p> : null}
          </Td>
        </tr>
      ) : null}
    </>
  );
}

function TargetView() {
  const id = useSearchParams().get("id");
  const router = useRouter();
  const qc = useQueryClient();
  const q = useQuery({ ...notificationQuery(id ?? ""), enabled: !!id });
  const log = useQuery({ ...deliveriesQuery(id ?? ""), enabled: !!id });
  const [editing, setEditing] = React.useState(false);
  const [deleting, setDeleting] = React.useState(false);
  const [actionError, setActionError] = React.useState<unknown>(null);
  const del = useMutation({
    mutationFn: () => api.del(`/api/v1/notifications/${encodeURIComponent(id ?? "")}`),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: queryKeys.notifications.all });
      router.push("/notifications/");
    },
  });
  if (!id) return <ErrorState error={new Error("No target id in the address (expected /notifications/view/?id=…).")} />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load the target" />;
  if (q.isPending) return <LoadingRows rows={6} label="Loading the target" />;
  const t = q.data;
  const deliveries = log.data?.deliveries ?? [];
  return (
    <div>
      <PageHeader
        title={t.name}
        description={
          <>
            {t.kind === "webhook" ? `Webhook to ${t.url ?? "—"} (${t.format === "slack" ? "Slack body" : "JSON"}${t.has_secret ? ", signed" : ""})` : `Email to ${t.to.join(", ")}`}
            {t.enabled ? "" : " · disabled"}
          </>
        }
        actions={
          <>
            <Link href="/notifications/" className="inline-flex h-9 items-center rounded-md border border-input px-4 text-sm font-medium hover:bg-accent">
              All targets
            </Link>
            <Button variant="outline" onClick={() => setEditing(true)}>
              Edit
            </Button>
            <Button variant="outline" className="text-destructive" onClick={() => setDeleting(true)}>
              Delete
            </Button>
          </>
        }
      />
      <div className="mb-4 flex flex-wrap gap-1">
        {t.events.map((e) => (
          <Badge key={e} tone="blue">
            {e}
          </Badge>
        ))}
        {t.filter.statuses?.length ? <Badge>status: {t.filter.statuses.join(", ")}</Badge> : null}
        {t.filter.tags?.length ? <Badge>tags: {t.filter.tags.join(", ")}</Badge> : null}
        {t.filter.templates?.length ? <Badge>templates: {t.filter.templates.join(", ")}</Badge> : null}
      </div>
      {actionError ? <ErrorState error={actionError} title="Not redelivered" /> : null}
      <Card>
        <CardHeader>
          <CardTitle>Delivery log</CardTitle>
        </CardHeader>
        <CardContent>
          {log.isError ? (
            <ErrorState error={log.error} onRetry={() => log.refetch()} title="Could not load the delivery log" />
          ) : log.isPending ? (
            <LoadingRows rows={3} label="Loading deliveries" />
          ) : deliveries.length === 0 ? (
            <EmptyState title="Nothing sent yet">Each subscribed event that matches the filters shows here with every attempt.</EmptyState>
          ) : (
            <Table aria-label="Delivery log">
              <thead>
                <tr>
                  <Th>Time</Th>
                  <Th>Event</Th>
                  <Th>State</Th>
                  <Th>Status code</Th>
                  <Th>Latency</Th>
                  <Th>Attempts</Th>
                  <Th>
                    <span className="sr-only">Actions</span>
                  </Th>
                </tr>
              </thead>
              <tbody>
                {deliveries.map((d) => (
                  <DeliveryRow key={d.id} d={d} targetId={t.id} onError={setActionError} />
                ))}
              </tbody>
            </Table>
          )}
        </CardContent>
      </Card>
      {editing ? (
        <Dialog open onClose={() => setEditing(false)} title={`Edit ${t.name}`} className="max-w-2xl">
          <TargetForm
            initial={t}
            onCancel={() => setEditing(false)}
            onDone={(n) => {
              qc.setQueryData(queryKeys.notifications.one(t.id), n);
              setEditing(false);
            }}
          />
        </Dialog>
      ) : null}
      {deleting ? (
        <Dialog open onClose={() => setDeleting(false)} title={`Delete “${t.name}”?`} description="Its delivery log goes with it.">
          {del.isError ? <ErrorState error={del.error} title="Not deleted" /> : null}
          <div className="mt-4 flex justify-end gap-2">
            <Button variant="outline" onClick={() => setDeleting(false)}>
              Cancel
            </Button>
            <Button variant="destructive" disabled={del.isPending} onClick={() => del.mutate()}>
              Delete target
            </Button>
          </div>
        </Dialog>
      ) : null}
    </div>
  );
}

export default function NotificationViewPage() {
  return (
    <React.Suspense fallback={<LoadingRows rows={6} />}>
      <TargetView />
    </React.Suspense>
  );
}
