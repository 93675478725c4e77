"use client";
import * as React from "react";
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { templatesQuery } from "@/lib/queries";
import { formatTime } from "@/lib/format";
import { targetsLabel } from "@/components/recurring/target-picker";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Badge } from "@/components/ui/badge";
import { Table, Td, Th } from "@/components/ui/table";

export default function TemplatesPage() {
  const q = useQuery(templatesQuery());
  const list = q.data ?? [];
  return (
    <div>
      <PageHeader
        title="Templates"
        description="Saved jobs with typed parameters: run them here, on a schedule, or from CI with a trigger token."
        actions={
          <Link href="/templates/edit/" className="inline-flex h-9 items-center rounded-md bg-primary px-4 text-sm font-medium text-primary-foreground hover:bg-primary/90 focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring">
            New template
          </Link>
        }
      />
      {q.isError ? (
        <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load templates" />
      ) : q.isPending ? (
        <LoadingRows label="Loading templates" />
      ) : list.length === 0 ? (
        <EmptyState title="No templates yet">
          A template saves a command or script with its parameters and targets. <Link className="text-primary hover:underline" href="/templates/edit/">Create the first one</Link>.
        </EmptyState>
      ) : (
        <Table aria-label="Templates">
          <thead>
            <tr>
              <Th>Name</Th>
              <Th>Runs</Th>
              <Th>Parameters</Th>
              <Th>Targets</Th>
              <Th>Version</Th>
              <Th>Updated</Th>
            </tr>
          </thead>
          <tbody>
            {list.map((t) => (
              <tr key={t.id} data-template={t.name} className="hover:bg-muted/40">
                <Td>
                  <Link href={`/templates/view/?id=${encodeURIComponent(t.id)}`} className="font-medium text-primary hover:underline">
                    {t.name}
                  </Link>
                  {t.description ? <p className="max-w-md truncate text-xs text-muted-foreground">{t.description}</p> : null}
                </Td>
                <Td className="max-w-xs">
                  <code className="block truncate font-mono text-xs">{t.command ?? `${t.shell ?? "/bin/bash"} script`}</code>
                </Td>
                <Td>
                  <div className="flex flex-wrap gap-1">
                    {(t.params ?? []).length === 0 ? <span className="text-xs text-muted-foreground">none</span> : null}
                    {(t.params ?? []).map((p) => (
                      <Badge key={p.name} tone={p.type === "secret" ? "amber" : "neutral"} title={p.type}>
                        {p.name}
                      </Badge>
                    ))}
                  </div>
                </Td>
                <Td className="text-xs">{targetsLabel(t.targets)}</Td>
                <Td>v{t.current_version}</Td>
                <Td className="whitespace-nowrap text-xs">{formatTime(t.updated_at)}</Td>
              </tr>
            ))}
          </tbody>
        </Table>
      )}
    </div>
  );
}
