"use client";
import * as React from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "@/lib/api";
import { describeCron, timeZones } from "@/lib/cron";
import { buildRunParams, initialValues, paramErrorFromApi, type FormValue } from "@/lib/params";
import { templatesQuery } from "@/lib/queries";
import { queryKeys } from "@/lib/query-keys";
import type { Overlap, Schedule } from "@/lib/types";
import { ParamInputs } from "./param-inputs";
import { ErrorState } from "@/components/states";
import { Button } from "@/components/ui/button";
import { Field, Input, Select } from "@/components/ui/input";

const FIELDS = ["name", "template", "cron", "timezone", "jitter", "params"];

function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** Create or replace a schedule: template + params + cron + zone + overlap, catch-up, jitter. */
export function ScheduleForm({ initial, onDone, onCancel }: { initial: Schedule | null; onDone: (s: Schedule) => void; onCancel: () => void }) {
  const qc = useQueryClient();
  const templates = useQuery(templatesQuery());
  const zones = React.useMemo(() => timeZones(), []);
  const [name, setName] = React.useState(initial?.name ?? "");
  const [templateId, setTemplateId] = React.useState(initial?.template_id ?? "");
  const [cron, setCron] = React.useState(initial?.cron ?? "30 2 * * *");
  const [timezone, setTimezone] = React.useState(initial?.timezone ?? browserZone());
  const [overlap, setOverlap] = React.useState<Overlap>(initial?.overlap ?? "skip");
  const [catchUp, setCatchUp] = React.useState(initial?.catch_up ?? false);
  const [jitter, setJitter] = React.useState(String(initial?.jitter_secs ?? 0));
  const [enabled, setEnabled] = React.useState(initial?.enabled ?? true);
  const [values, setValues] = React.useState<Record<string, FormValue>>({});
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [paramErrors, setParamErrors] = React.useState<Record<string, string>>({});
  const list = templates.data ?? [];
  const tpl = list.find((t) => t.id === templateId);
  const specs = tpl?.params ?? [];
  React.useEffect(() => {
    setValues(initialValues(tpl?.params ?? []));
    setParamErrors({});
  }, [tpl?.id, tpl?.version]); // eslint-disable-line react-hooks/exhaustive-deps
  const words = describeCron(cron, timezone);

  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      initial ? api.put<Schedule>(`/api/v1/schedules/${encodeURIComponent(initial.id)}`, body) : api.post<Schedule>("/api/v1/schedules", body),
    onSuccess: (s) => {
      qc.invalidateQueries({ queryKey: queryKeys.schedules.all });
      onDone(s);
    },
    onError: (e) => {
      const pe = paramErrorFromApi(e);
      if (pe) setParamErrors({ [pe.name]: pe.message });
    },
  });

  const apiErr = save.error instanceof ApiError ? save.error : null;
  const fieldErr = (f: string) => errors[f] ?? (apiErr?.field === f ? apiErr.message : null);
  const paramOnField = paramErrorFromApi(save.error);
  return (
    <form
      className="grid gap-4"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        const errs: Record<string, string> = {};
        if (!name.trim()) errs.name = "a name has 1 to 128 characters";
        if (!templateId) errs.template = "choose a template";
        if (!words.ok) errs.cron = words.error;
        const j = Number(jitter);
        if (!Number.isInteger(j) || j < 0 || j > 3600) errs.jitter = "jitter is 0 to 3600 seconds";
        const r = buildRunParams(specs, values);
        setErrors(errs);
        setParamErrors(r.errors);
        if (Object.keys(errs).length || Object.keys(r.errors).length) return;
        save.mutate({ name: name.trim(), template: templateId, params: r.params, cron: cron.trim(), timezone, overlap, catch_up: catchUp, jitter: j, enabled });
      }}
    >
      <div className="grid gap-4 sm:grid-cols-2">
        <Field label="Name" htmlFor="sch-name" error={fieldErr("name")}>
          <Input id="sch-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={128} />
        </Field>
        <Field label="Template" htmlFor="sch-template" error={fieldErr("template") ?? (templates.isError ? (templates.error as Error).message : null)}>
          <Select id="sch-template" value={templateId} onChange={(e) => setTemplateId(e.target.value)} disabled={templates.isPending}>
            <option value="">{templates.isPending ? "Loading templates…" : list.length ? "Choose a template…" : "No templates yet"}</option>
            {list.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </Select>
        </Field>
      </div>
      {tpl ? (
        <fieldset className="grid gap-2 rounded-md border p-3">
          <legend className="px-1 text-sm font-medium">Parameters for every run</legend>
          {initial ? <p className="text-xs text-muted-foreground">Stored values are sealed and never shown: saving replaces them with these.</p> : null}
          <ParamInputs idPrefix="sch-param" specs={specs} values={values} errors={paramErrors} onChange={(n, v) => {
              setValues((c) => ({ ...c, [n]: v }));
              setParamErrors(({ [n]: _, ...rest }) => rest);
            }}
          />
        </fieldset>
      ) : null}
      <div className="grid gap-4 sm:grid-cols-2">
        <Field
          label="Cron"
          htmlFor="sch-cron"
          error={fieldErr("cron")}
          hint={words.ok ? <span data-testid="cron-words">{words.text}</span> : "minute hour day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly, @yearly"}
        >
          <Input id="sch-cron" className="font-mono" value={cron} onChange={(e) => setCron(e.target.value)} />
        </Field>
        <Field label="Time zone" htmlFor="sch-tz" error={fieldErr("timezone")} hint="The cron is read in this zone, across DST changes.">
          <Select id="sch-tz" value={timezone} onChange={(e) => setTimezone(e.target.value)}>
            {(zones.includes(timezone) ? zones : [timezone, ...zones]).map((z) => (
              <option key={z}>{z}</option>
            ))}
          </Select>
        </Field>
      </div>
      {!words.ok && !errors.cron ? (
        <p className="-mt-2 text-xs text-destructive" role="status">
          {words.error}
        </p>
      ) : null}
      <div className="grid gap-4 sm:grid-cols-3">
        <Field label="If the previous run is still going" htmlFor="sch-overlap">
          <Select id="sch-overlap" value={overlap} onChange={(e) => setOverlap(e.target.value as Overlap)}>
            <option value="skip">skip this run</option>
            <option value="queue">queue it</option>
            <option value="allow">run anyway</option>
          </Select>
        </Field>
        <Field label="Jitter (s)" htmlFor="sch-jitter" hint="Start up to this late, 0–3600" error={fieldErr("jitter")}>
          <Input id="sch-jitter" inputMode="numeric" value={jitter} onChange={(e) => setJitter(e.target.value)} />
        </Field>
        <div className="grid content-end gap-2 pb-1">
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" className="h-4 w-4" checked={catchUp} onChange={(e) => setCatchUp(e.target.checked)} />
            One catch-up run after downtime
          </label>
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" className="h-4 w-4" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
            Enabled
          </label>
        </div>
      </div>
      {save.isError && !(apiErr && FIELDS.includes(apiErr.field ?? "") && (apiErr.field !== "params" || paramOnField)) ? (
        <ErrorState error={save.error} title="The schedule was not saved" />
      ) : null}
      <div className="flex justify-end gap-2">
        <Button variant="outline" onClick={onCancel}>
          Cancel
        </Button>
        <Button type="submit" disabled={save.isPending}>
          {save.isPending ? "Saving…" : initial ? "Save schedule" : "Create schedule"}
        </Button>
      </div>
    </form>
  );
}

/** A UTC time shown in the schedule's zone. */
export function inZone(iso: string, timezone: string): string {
  try {
    return new Date(iso).toLocaleString(undefined, { timeZone: timezone, weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
  } catch {
    return iso;
  }
}
