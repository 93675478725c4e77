"use client";
import * as React from "react";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { schedulesQuery } from "@/lib/queries";
import { ScheduleForm, inZone } from "@/components/recurring/schedule-form";
import { PauseButton, ScheduleState, cronWords } from "@/components/recurring/schedule-bits";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { Table, Td, Th } from "@/components/ui/table";

export default function SchedulesPage() {
  const router = useRouter();
  const q = useQuery(schedulesQuery());
  const [creating, setCreating] = React.useState(false);
  const [actionError, setActionError] = React.useState<unknown>(null);
  const list = q.data ?? [];
  return (
    <div>
      <PageHeader
        title="Schedules"
        description="Templates run on a cron in a time zone; each due time fires exactly once."
        actions={<Button onClick={() => setCreating(true)}>New schedule</Button>}
      />
      {actionError ? <ErrorState error={actionError} title="The schedule was not changed" /> : null}
      {q.isError ? (
        <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load schedules" />
      ) : q.isPending ? (
        <LoadingRows label="Loading schedules" />
      ) : list.length === 0 ? (
        <EmptyState title="No schedules yet">A schedule runs a template with fixed parameters, e.g. every night at 02:30 in your time zone.</EmptyState>
      ) : (
        <Table aria-label="Schedules">
          <thead>
            <tr>
              <Th>Name</Th>
              <Th>Template</Th>
              <Th>When</Th>
              <Th>Next run</Th>
              <Th>State</Th>
              <Th>
                <span className="sr-only">Actions</span>
              </Th>
            </tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <tr key={s.id} data-schedule={s.name} className="hover:bg-muted/40">
                <Td>
                  <Link href={`/schedules/view/?id=${encodeURIComponent(s.id)}`} className="font-medium text-primary hover:underline">
                    {s.name}
                  </Link>
                </Td>
                <Td>
                  {s.template ? (
                    <Link href={`/templates/view/?id=${encodeURIComponent(s.template_id)}`} className="hover:underline">
                      {s.template}
                    </Link>
                  ) : (
                    <span className="text-muted-foreground">deleted</span>
                  )}
                </Td>
                <Td>
                  <span data-cron-words>{cronWords(s)}</span>
                  <code className="block font-mono text-xs text-muted-foreground">{s.cron}</code>
                </Td>
                <Td className="whitespace-nowrap text-xs">{s.enabled && s.next_runs[0] ? inZone(s.next_runs[0], s.timezone) : "—"}</Td>
                <Td>
                  <ScheduleState s={s} />
                </Td>
                <Td>
                  <PauseButton s={s} onError={setActionError} />
                </Td>
              </tr>
            ))}
          </tbody>
        </Table>
      )}
      {creating ? (
        <Dialog open onClose={() => setCreating(false)} title="New schedule" className="max-w-3xl">
          <ScheduleForm initial={null} onCancel={() => setCreating(false)} onDone={(s) => router.push(`/schedules/view/?id=${encodeURIComponent(s.id)}`)} />
        </Dialog>
      ) : null}
    </div>
  );
}
