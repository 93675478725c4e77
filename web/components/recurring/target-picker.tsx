"use client";
import * as React from "react";
import { useQuery } from "@tanstack/react-query";
import { serversQuery } from "@/lib/queries";
import type { Targets } from "@/lib/types";
import { ErrorState } from "@/components/states";
import { Field, Input, Select } from "@/components/ui/input";

/** Servers (by name) and/or a tag: a template's default targets, or a run's override. */
export function TargetPicker({ id, value, onChange, error }: { id: string; value: Targets; onChange: (t: Targets) => void; error?: string | null }) {
  const servers = useQuery(serversQuery());
  const [filter, setFilter] = React.useState("");
  const all = servers.data?.servers ?? [];
  const tags = Array.from(new Set(all.flatMap((s) => s.tags))).sort();
  const chosen = value.servers ?? [];
  const shown = all.filter((s) => !filter || `${s.name} ${s.hostname} ${s.tags.join(" ")}`.toLowerCase().includes(filter.toLowerCase()));
  const toggle = (name: string, on: boolean) =>
    onChange({ ...value, servers: on ? [...chosen.filter((n) => n !== name), name] : chosen.filter((n) => n !== name) });
  return (
    <fieldset className="grid gap-2" aria-describedby={error ? `${id}-msg` : undefined}>
      <legend className="mb-1 text-sm font-medium">Targets</legend>
      <Input aria-label="Filter servers" placeholder="Filter servers…" value={filter} onChange={(e) => setFilter(e.target.value)} className="h-8" />
      <div className="max-h-48 overflow-auto rounded-md border" role="group" aria-label={`${id} servers`}>
        {servers.isError ? (
          <ErrorState error={servers.error} onRetry={() => servers.refetch()} title="Could not load servers" />
        ) : servers.isPending ? (
          <p className="p-3 text-sm text-muted-foreground">Loading servers…</p>
        ) : shown.length === 0 ? (
          <p className="p-3 text-sm text-muted-foreground">{all.length ? "No server matches." : "No servers yet: add one on the Servers page."}</p>
        ) : (
          shown.map((s) => (
            <label key={s.id} className="flex cursor-pointer items-center gap-2 border-b px-3 py-2 text-sm last:border-0 hover:bg-muted/40">
              <input type="checkbox" className="h-4 w-4" checked={chosen.includes(s.name)} onChange={(e) => toggle(s.name, e.target.checked)} />
              <span className="font-medium">{s.name}</span>
              <span className="truncate text-xs text-muted-foreground">{s.hostname}</span>
            </label>
          ))
        )}
      </div>
      <Field label="And every server with the tag" htmlFor={`${id}-tag`}>
        <Select id={`${id}-tag`} value={value.tag ?? ""} onChange={(e) => onChange({ ...value, tag: e.target.value || null })}>
          <option value="">No tag</option>
          {Array.from(new Set([...(value.tag ? [value.tag] : []), ...tags])).map((t) => (
            <option key={t}>{t}</option>
          ))}
        </Select>
      </Field>
      <p className="text-xs text-muted-foreground">
        {chosen.length} server{chosen.length === 1 ? "" : "s"}
        {value.tag ? ` + tag ${value.tag}` : ""}; more than one target runs as a batch.
      </p>
      {error ? (
        <p id={`${id}-msg`} role="alert" className="text-xs text-destructive">
          {error}
        </p>
      ) : null}
    </fieldset>
  );
}

export function targetsLabel(t: Targets | undefined): string {
  const parts: string[] = [];
  if (t?.servers?.length) parts.push(t.servers.join(", "));
  if (t?.tag) parts.push(`tag ${t.tag}`);
  return parts.length ? parts.join(" + ") : "none (chosen at run time)";
}
