"use client";
import * as React from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "@/lib/api";
import { queryKeys } from "@/lib/query-keys";
import { FINAL_STATUSES, NOTIFY_EVENTS, type NotificationTarget, type NotificationTargetCreated } from "@/lib/types";
import { ErrorState } from "@/components/states";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { Field, Input, Select } from "@/components/ui/input";
import { Tabs } from "@/components/ui/tabs";

const FIELDS = ["name", "kind", "url", "secret", "format", "to", "events", "filter.statuses", "filter.tags", "filter.templates"];
const EVENT_LABELS: Record<string, string> = {
  "job.completed": "Job completed",
  "job.failed": "Job failed",
  "job.timed_out": "Job timed out",
  "job.canceled": "Job canceled",
  "batch.finished": "Batch finished",
  "schedule.skipped": "Schedule run skipped",
  "host_key.mismatch": "Host-key mismatch",
  "worker.down": "Worker down",
};
const list = (s: string) =>
  s
    .split(/[,\n]/)
    .map((x) => x.trim())
    .filter(Boolean);

/** Create or edit a notification target: webhook (URL, secret, JSON or Slack body) or email; events and filters. */
export function TargetForm({
  initial,
  onDone,
  onCancel,
}: {
  initial: NotificationTarget | null;
  onDone: (t: NotificationTargetCreated) => void;
  onCancel: () => void;
}) {
  const qc = useQueryClient();
  const [kind, setKind] = React.useState<"webhook" | "email">(initial?.kind ?? "webhook");
  const [name, setName] = React.useState(initial?.name ?? "");
  const [url, setUrl] = React.useState("");
  const [secret, setSecret] = React.useState("");
  const [format, setFormat] = React.useState(initial?.format ?? "json");
  const [to, setTo] = React.useState((initial?.to ?? []).join(", "));
  const [events, setEvents] = React.useState<string[]>(initial?.events ?? ["job.failed", "job.timed_out"]);
  const [statuses, setStatuses] = React.useState<string[]>(initial?.filter.statuses ?? []);
  const [tags, setTags] = React.useState((initial?.filter.tags ?? []).join(", "));
  const [templates, setTemplates] = React.useState((initial?.filter.templates ?? []).join(", "));
  const [enabled, setEnabled] = React.useState(initial?.enabled ?? true);
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      initial
        ? api.put<NotificationTargetCreated>(`/api/v1/notifications/${encodeURIComponent(initial.id)}`, body)
        : api.post<NotificationTargetCreated>("/api/v1/notifications", body),
    onSuccess: (t) => {
      qc.invalidateQueries({ queryKey: queryKeys.notifications.all });
      onDone(t);
    },
  });
  const apiErr = save.error instanceof ApiError ? save.error : null;
  const fieldErr = (f: string) => errors[f] ?? (apiErr?.field === f ? apiErr.message : null);
  const toggle = (arr: string[], set: (v: string[]) => void, v: string, on: boolean) => set(on ? [...arr.filter((x) => x !== v), v] : arr.filter((x) => x !== v));
  return (
    <form
      className="grid gap-4"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        const errs: Record<string, string> = {};
        if (!name.trim()) errs.name = "name is required";
        if (events.length === 0) errs.events = "choose at least one event";
        if (kind === "webhook" && !/^https?:\/\/[^/\s]+/i.test(url.trim())) errs.url = "url must be an absolute http:// or https:// URL";
        if (kind === "email" && list(to).length === 0) errs.to = "at least one recipient";
        setErrors(errs);
        if (Object.keys(errs).length) return;
        const body: Record<string, unknown> = {
          name: name.trim(),
          kind,
          events,
          enabled,
          filter: { statuses, tags: list(tags), templates: list(templates) },
        };
        if (kind === "webhook") {
          body.format = format;
          body.url = url.trim();
          if (secret) body.secret = secret;
        } else body.to = list(to);
        save.mutate(body);
      }}
    >
      {initial ? null : (
        <Tabs
          label="Target kind"
          value={kind}
          onChange={setKind}
          items={[
            { value: "webhook", label: "Webhook" },
            { value: "email", label: "Email" },
          ]}
        />
      )}
      <Field label="Name" htmlFor="tgt-name" error={fieldErr("name")}>
        <Input id="tgt-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} />
      </Field>
      {kind === "webhook" ? (
        <>
          <Field
            label="URL"
            htmlFor="tgt-url"
            error={fieldErr("url")}
            hint={initial ? `Now ${initial.url ?? "—"}; the API never shows a saved URL's path, so enter the whole URL again.` : "Events are POSTed here."}
          >
            <Input id="tgt-url" type="url" className="font-mono" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://hooks.example.com/remora" />
          </Field>
          <div className="grid gap-4 sm:grid-cols-2">
            <Field
              label="Signing secret"
              htmlFor="tgt-secret"
              error={fieldErr("secret")}
              hint={initial ? (initial.has_secret ? "Set; leave empty to keep it." : "None set.") : "Leave empty and one is generated and shown once."}
            >
              <Input id="tgt-secret" type="password" autoComplete="new-password" value={secret} onChange={(e) => setSecret(e.target.value)} />
            </Field>
            <Field label="Body" htmlFor="tgt-format" error={fieldErr("format")}>
              <Select id="tgt-format" value={format} onChange={(e) => setFormat(e.target.value)}>
                <option value="json">JSON event payload</option>
                <option value="slack">Slack-compatible ({'{"text": …}'})</option>
              </Select>
            </Field>
          </div>
        </>
      ) : (
        <Field label="Recipients (comma-separated)" htmlFor="tgt-to" error={fieldErr("to")} hint="Sent over the SMTP server in REMORA_SMTP_URL.">
          <Input id="tgt-to" value={to} onChange={(e) => setTo(e.target.value)} placeholder="ops@example.com" />
        </Field>
      )}
      <fieldset className="grid gap-2" aria-describedby={fieldErr("events") ? "tgt-events-msg" : undefined}>
        <legend className="mb-1 text-sm font-medium">Events</legend>
        <div className="grid gap-1 sm:grid-cols-2">
          {NOTIFY_EVENTS.map((ev) => (
            <label key={ev} className="flex items-center gap-2 text-sm">
              <input type="checkbox" className="h-4 w-4" checked={events.includes(ev)} onChange={(e) => toggle(events, setEvents, ev, e.target.checked)} />
              {EVENT_LABELS[ev]} <code className="font-mono text-xs text-muted-foreground">{ev}</code>
            </label>
          ))}
        </div>
        {fieldErr("events") ? (
          <p id="tgt-events-msg" role="alert" className="text-xs text-destructive">
            {fieldErr("events")}
          </p>
        ) : null}
      </fieldset>
      <fieldset className="grid gap-3 rounded-md border p-3">
        <legend className="px-1 text-sm font-medium">Only when (empty: any)</legend>
        <div className="flex flex-wrap gap-3" role="group" aria-label="Job statuses">
          {FINAL_STATUSES.map((st) => (
            <label key={st} className="flex items-center gap-2 text-sm">
              <input type="checkbox" className="h-4 w-4" checked={statuses.includes(st)} onChange={(e) => toggle(statuses, setStatuses, st, e.target.checked)} />
              {st}
            </label>
          ))}
        </div>
        {fieldErr("filter.statuses") ? <p className="text-xs text-destructive">{fieldErr("filter.statuses")}</p> : null}
        <div className="grid gap-3 sm:grid-cols-2">
          <Field label="Server tags" htmlFor="tgt-tags" error={fieldErr("filter.tags")}>
            <Input id="tgt-tags" value={tags} onChange={(e) => setTags(e.target.value)} placeholder="prod, web" />
          </Field>
          <Field label="Templates" htmlFor="tgt-templates" error={fieldErr("filter.templates")}>
            <Input id="tgt-templates" value={templates} onChange={(e) => setTemplates(e.target.value)} placeholder="deploy" />
          </Field>
        </div>
      </fieldset>
      <label className="flex items-center gap-2 text-sm">
        <input type="checkbox" className="h-4 w-4" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
        Enabled
      </label>
      {save.isError && !(apiErr && FIELDS.includes(apiErr.field ?? "")) ? <ErrorState error={save.error} title="The target was not saved" /> : null}
      <div className="flex justify-end gap-2">
        <Button variant="outline" onClick={onCancel}>
          Cancel
        </Button>
        <Button type="submit" disabled={save.isPending}>
          {save.isPending ? "Saving…" : initial ? "Save target" : "Create target"}
        </Button>
      </div>
    </form>
  );
}

/** Shown once after create when the server generated the signing secret. */
export function SecretOnce({ created, onClose }: { created: NotificationTargetCreated; onClose: () => void }) {
  return (
    <Dialog open onClose={onClose} title={`Target “${created.name}” created`} description="Its signing secret is shown only now: the receiver checks X-Remora-Signature with it.">
      <code className="block break-all rounded-md bg-muted p-3 font-mono text-xs" data-testid="new-target-secret">
        {created.secret}
      </code>
      <div className="mt-4 flex justify-end gap-2">
        <Button variant="outline" onClick={() => navigator.clipboard?.writeText(created.secret ?? "").catch(() => {})}>
          Copy
        </Button>
        <Button onClick={onClose}>Done</Button>
      </div>
    </Dialog>
  );
}

export { EVENT_LABELS };
