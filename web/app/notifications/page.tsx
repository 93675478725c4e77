"use client";
import * as React from "react";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { notificationsQuery } from "@/lib/queries";
import type { NotificationTargetCreated } from "@/lib/types";
import { SecretOnce, TargetForm } from "@/components/recurring/target-form";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { Table, Td, Th } from "@/components/ui/table";

export default function NotificationsPage() {
  const router = useRouter();
  const q = useQuery(notificationsQuery());
  const [creating, setCreating] = React.useState(false);
  const [created, setCreated] = React.useState<NotificationTargetCreated | null>(null);
  const list = q.data?.targets ?? [];
  const open = (id: string) => router.push(`/notifications/view/?id=${encodeURIComponent(id)}`);
  return (
    <div>
      <PageHeader
        title="Notifications"
        description="Webhooks (signed, retried for up to 24 h) and email for finished jobs and batches, skipped schedule runs, host-key mismatches and downed workers."
        actions={<Button onClick={() => setCreating(true)}>New target</Button>}
      />
      {q.isError ? (
        <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load notification targets" />
      ) : q.isPending ? (
        <LoadingRows label="Loading notification targets" />
      ) : list.length === 0 ? (
        <EmptyState title="No notification targets">Add a webhook or an email target to hear about failed jobs.</EmptyState>
      ) : (
        <Table aria-label="Notification targets">
          <thead>
            <tr>
              <Th>Name</Th>
              <Th>Kind</Th>
              <Th>Destination</Th>
              <Th>Events</Th>
              <Th>State</Th>
            </tr>
          </thead>
          <tbody>
            {list.map((t) => (
              <tr key={t.id} data-target={t.name} className="hover:bg-muted/40">
                <Td>
                  <Link href={`/notifications/view/?id=${encodeURIComponent(t.id)}`} className="font-medium text-primary hover:underline">
                    {t.name}
                  </Link>
                </Td>
                <Td>
                  <Badge>{t.kind === "webhook" ? (t.format === "slack" ? "webhook · slack" : "webhook") : "email"}</Badge>
                </Td>
                <Td className="max-w-xs truncate font-mono text-xs">{t.kind === "webhook" ? t.url : t.to.join(", ")}</Td>
                <Td>
                  <div className="flex flex-wrap gap-1">
                    {t.events.map((e) => (
                      <Badge key={e} tone="blue">
                        {e}
                      </Badge>
                    ))}
                  </div>
                </Td>
                <Td>{t.enabled ? <Badge tone="green">enabled</Badge> : <Badge tone="gray">disabled</Badge>}</Td>
              </tr>
            ))}
          </tbody>
        </Table>
      )}
      {creating ? (
        <Dialog open onClose={() => setCreating(false)} title="New notification target" className="max-w-2xl">
          <TargetForm
            initial={null}
            onCancel={() => setCreating(false)}
            onDone={(t) => {
              setCreating(false);
              if (t.secret) setCreated(t);
              else open(t.id);
            }}
          />
        </Dialog>
      ) : null}
      {created ? (
        <SecretOnce
          created={created}
          onClose={() => {
            const id = created.id;
            setCreated(null);
            open(id);
          }}
        />
      ) : null}
    </div>
  );
}
