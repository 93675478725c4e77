"use client";
import * as React from "react";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError, API_BASE } from "@/lib/api";
import { templateQuery, templateVersionsQuery, triggersQuery } from "@/lib/queries";
import { queryKeys } from "@/lib/query-keys";
import { formatTime } from "@/lib/format";
import { buildRunParams, initialValues, paramErrorFromApi, type FormValue } from "@/lib/params";
import type { Created, Job, Targets, Template, Trigger, TriggerCreated } from "@/lib/types";
import { ParamInputs } from "@/components/recurring/param-inputs";
import { TargetPicker, targetsLabel } from "@/components/recurring/target-picker";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Dialog } from "@/components/ui/dialog";
import { Field, Input } from "@/components/ui/input";
import { Table, Td, Th } from "@/components/ui/table";
import { Tabs } from "@/components/ui/tabs";

type Tab = "run" | "versions" | "triggers";

function RunForm({ t }: { t: Template }) {
  const router = useRouter();
  const qc = useQueryClient();
  const specs = t.params ?? [];
  const [values, setValues] = React.useState<Record<string, FormValue>>(() => initialValues(specs));
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const [override, setOverride] = React.useState(!t.targets?.servers?.length && !t.targets?.tag);
  const [targets, setTargets] = React.useState<Targets>({ servers: [], tag: null });
  const run = useMutation({
    mutationFn: (params: Record<string, unknown>) =>
      api.post<Created>(`/api/v1/templates/${encodeURIComponent(t.id)}/run`, {
        params,
        ...(override ? { targets: { servers: targets.servers ?? [], ...(targets.tag ? { tag: targets.tag } : {}) } } : {}),
      }),
    onSuccess: (res) => {
      qc.invalidateQueries({ queryKey: queryKeys.jobs.all });
      if ("jobs" in res && (res.batch_id || res.jobs.length !== 1)) {
        if (res.batch_id) router.push(`/batches/view/?id=${res.batch_id}`);
        else router.push(`/jobs/view/?id=${res.jobs[0].id}`);
      } else router.push(`/jobs/view/?id=${"jobs" in res ? res.jobs[0].id : (res as Job).id}`);
    },
    onError: (e) => {
      const pe = paramErrorFromApi(e);
      if (pe) setErrors({ [pe.name]: pe.message });
    },
  });
  const apiErr = run.error instanceof ApiError ? run.error : null;
  const onParam = paramErrorFromApi(run.error);
  return (
    <form
      className="grid gap-4"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        const r = buildRunParams(specs, values);
        setErrors(r.errors);
        if (Object.keys(r.errors).length === 0) run.mutate(r.params);
      }}
    >
      <ParamInputs idPrefix="run" specs={specs} values={values} errors={errors} onChange={(n, v) => {
          setValues((cur) => ({ ...cur, [n]: v }));
          setErrors(({ [n]: _, ...rest }) => rest);
        }}
      />
      <div className="grid gap-2 rounded-md border p-3">
        <p className="text-sm">
          <span className="text-muted-foreground">Default targets: </span>
          {targetsLabel(t.targets)}
        </p>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" className="h-4 w-4" checked={override} onChange={(e) => setOverride(e.target.checked)} />
          Run on other targets this time
        </label>
        {override ? <TargetPicker id="run-targets" value={targets} onChange={setTargets} error={apiErr?.field === "targets" ? apiErr.message : null} /> : null}
      </div>
      {run.isError && !onParam && !(override && apiErr?.field === "targets") ? <ErrorState error={run.error} title="The template did not run" /> : null}
      <div>
        <Button type="submit" size="lg" disabled={run.isPending}>
          {run.isPending ? "Starting…" : `Run ${t.name}`}
        </Button>
      </div>
    </form>
  );
}

function Definition({ t }: { t: Template }) {
  return (
    <dl className="grid gap-3 text-sm sm:grid-cols-2">
      <div className="sm:col-span-2">
        <dt className="text-xs text-muted-foreground">{t.script ? `Script (${t.shell ?? "/bin/bash"})` : "Command"}</dt>
        <dd>
          <pre className="mt-1 max-h-72 overflow-auto whitespace-pre-wrap break-all rounded-md bg-muted p-3 font-mono text-xs">{t.script ?? t.command}</pre>
        </dd>
      </div>
      <div>
        <dt className="text-xs text-muted-foreground">Targets</dt>
        <dd>{targetsLabel(t.targets)}</dd>
      </div>
      <div>
        <dt className="text-xs text-muted-foreground">Timeout · priority · retries</dt>
        <dd>
          {t.timeout ? `${t.timeout} s` : "no limit"} · {t.priority ?? 5} · {t.max_retries ?? 0}
        </dd>
      </div>
      <div className="sm:col-span-2">
        <dt className="text-xs text-muted-foreground">Parameters</dt>
        <dd className="mt-1 flex flex-wrap gap-1">
          {(t.params ?? []).length === 0 ? "none" : null}
          {(t.params ?? []).map((p) => (
            <Badge key={p.name} tone={p.type === "secret" ? "amber" : "neutral"}>
              {p.name}: {p.type}
              {p.required ? " *" : ""}
            </Badge>
          ))}
        </dd>
      </div>
      {Object.keys(t.env ?? {}).length ? (
        <div className="sm:col-span-2">
          <dt className="text-xs text-muted-foreground">Environment</dt>
          <dd className="font-mono text-xs">
            {Object.entries(t.env ?? {}).map(([k, v]) => (
              <div key={k}>
                {k}={v}
              </div>
            ))}
          </dd>
        </div>
      ) : null}
    </dl>
  );
}

function Versions({ t }: { t: Template }) {
  const q = useQuery(templateVersionsQuery(t.id));
  const [shown, setShown] = React.useState<Template | null>(null);
  if (q.isError) return <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load versions" />;
  if (q.isPending) return <LoadingRows rows={3} label="Loading versions" />;
  return (
    <div className="grid gap-4">
      <Table aria-label="Versions">
        <thead>
          <tr>
            <Th>Version</Th>
            <Th>Saved</Th>
            <Th>Runs</Th>
            <Th>
              <span className="sr-only">Actions</span>
            </Th>
          </tr>
        </thead>
        <tbody>
          {q.data.map((v) => (
            <tr key={v.version} data-version={v.version}>
              <Td className="font-medium">
                v{v.version}
                {v.version === t.current_version ? (
                  <Badge tone="green" className="ml-2">
                    current
                  </Badge>
                ) : null}
              </Td>
              <Td className="text-xs">{formatTime(v.updated_at)}</Td>
              <Td className="max-w-xs">
                <code className="block truncate font-mono text-xs">{v.command ?? `${v.shell ?? "/bin/bash"} script`}</code>
              </Td>
              <Td>
                <Button size="sm" variant="ghost" onClick={() => setShown(v)} aria-label={`Show version ${v.version}`}>
                  Show
                </Button>
              </Td>
            </tr>
          ))}
        </tbody>
      </Table>
      {shown ? (
        <Dialog open onClose={() => setShown(null)} title={`${t.name} — version ${shown.version}`} className="max-w-2xl">
          <Definition t={shown} />
        </Dialog>
      ) : null}
    </div>
  );
}

function Triggers({ t }: { t: Template }) {
  const qc = useQueryClient();
  const q = useQuery(triggersQuery(t.id));
  const [name, setName] = React.useState("");
  const [created, setCreated] = React.useState<TriggerCreated | null>(null);
  const [revoking, setRevoking] = React.useState<Trigger | null>(null);
  const invalidate = () => qc.invalidateQueries({ queryKey: queryKeys.templates.triggers(t.id) });
  const create = useMutation({
    mutationFn: () => api.post<TriggerCreated>(`/api/v1/templates/${encodeURIComponent(t.id)}/triggers`, name.trim() ? { name: name.trim() } : {}),
    onSuccess: (tr) => {
      setCreated(tr);
      setName("");
      invalidate();
    },
  });
  const revoke = useMutation({
    mutationFn: (tr: Trigger) => api.del(`/api/v1/templates/${encodeURIComponent(t.id)}/triggers/${encodeURIComponent(tr.id)}`),
    onSuccess: () => {
      setRevoking(null);
      invalidate();
    },
  });
  const hookUrl = (token: string) => `${API_BASE || (typeof window !== "undefined" ? window.location.origin : "")}/api/v1/hooks/${token}`;
  const list = q.data ?? [];
  return (
    <div className="grid gap-4">
      <p className="text-sm text-muted-foreground">
        A trigger token lets CI run this template with <code className="font-mono">POST /api/v1/hooks/&lt;token&gt;</code> and a body{" "}
        <code className="font-mono">{'{"params": {…}}'}</code>. The token is its only credential: it is shown once, stored hashed, and can be revoked.
      </p>
      <form
        className="flex flex-wrap items-end gap-2"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <Field label="Trigger name" htmlFor="trigger-name" className="min-w-[14rem] flex-1" error={create.error instanceof ApiError && create.error.field === "name" ? create.error.message : null}>
          <Input id="trigger-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="gitlab-ci" maxLength={128} />
        </Field>
        <Button type="submit" disabled={create.isPending}>
          Create trigger
        </Button>
      </form>
      {create.isError && !(create.error instanceof ApiError && create.error.field === "name") ? <ErrorState error={create.error} title="No trigger was created" /> : null}
      {q.isError ? (
        <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load triggers" />
      ) : q.isPending ? (
        <LoadingRows rows={2} label="Loading triggers" />
      ) : list.length === 0 ? (
        <EmptyState title="No triggers" />
      ) : (
        <Table aria-label="Triggers">
          <thead>
            <tr>
              <Th>Name</Th>
              <Th>Created</Th>
              <Th>Last used</Th>
              <Th>
                <span className="sr-only">Actions</span>
              </Th>
            </tr>
          </thead>
          <tbody>
            {list.map((tr) => (
              <tr key={tr.id} data-trigger={tr.name} className={tr.revoked_at ? "text-muted-foreground" : undefined}>
                <Td className="font-medium">
                  {tr.name}
                  {tr.revoked_at ? (
                    <Badge tone="red" className="ml-2" title={`Revoked ${formatTime(tr.revoked_at)}`}>
                      revoked
                    </Badge>
                  ) : null}
                </Td>
                <Td className="text-xs">{formatTime(tr.created_at)}</Td>
                <Td className="text-xs">{tr.last_used_at ? formatTime(tr.last_used_at) : "never"}</Td>
                <Td>
                  {tr.revoked_at ? null : (
                    <Button size="sm" variant="ghost" className="text-destructive" onClick={() => setRevoking(tr)} aria-label={`Revoke trigger ${tr.name}`}>
                      Revoke
                    </Button>
                  )}
                </Td>
              </tr>
            ))}
          </tbody>
        </Table>
      )}
      {created ? (
        <Dialog open onClose={() => setCreated(null)} title={`Trigger “${created.name}” created`} description="Copy the URL now: the token is shown only once.">
          <code className="block break-all rounded-md bg-muted p-3 font-mono text-xs" data-testid="new-trigger-url">
            {hookUrl(created.token)}
          </code>
          <div className="mt-4 flex justify-end gap-2">
            <Button variant="outline" onClick={() => navigator.clipboard?.writeText(hookUrl(created.token)).catch(() => {})}>
              Copy
            </Button>
            <Button onClick={() => setCreated(null)}>Done</Button>
          </div>
        </Dialog>
      ) : null}
      {revoking ? (
        <Dialog open onClose={() => setRevoking(null)} title={`Revoke trigger “${revoking.name}”?`} description="Calls with its token are refused from now on.">
          {revoke.isError ? <ErrorState error={revoke.error} title="Not revoked" /> : null}
          <div className="mt-4 flex justify-end gap-2">
            <Button variant="outline" onClick={() => setRevoking(null)}>
              Cancel
            </Button>
            <Button variant="destructive" disabled={revoke.isPending} onClick={() => revoke.mutate(revoking)}>
              Revoke trigger
            </Button>
          </div>
        </Dialog>
      ) : null}
    </div>
  );
}

function TemplateView() {
  const id = useSearchParams().get("id");
  const router = useRouter();
  const qc = useQueryClient();
  const q = useQuery({ ...templateQuery(id ?? ""), enabled: !!id });
  const [tab, setTab] = React.useState<Tab>("run");
  const [deleting, setDeleting] = React.useState(false);
  const del = useMutation({
    mutationFn: () => api.del(`/api/v1/templates/${encodeURIComponent(id ?? "")}`),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: queryKeys.templates.all });
      router.push("/templates/");
    },
  });
  if (!id) return <ErrorState error={new Error("No template id in the address (expected /templates/view/?id=…).")} />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load the template" />;
  if (q.isPending) return <LoadingRows rows={6} label="Loading the template" />;
  const t = q.data;
  return (
    <div>
      <PageHeader
        title={t.name}
        description={
          <>
            {t.description ? `${t.description} · ` : ""}version {t.current_version} · updated {formatTime(t.updated_at)}
          </>
        }
        actions={
          <>
            <Link href="/templates/" className="inline-flex h-9 items-center rounded-md border border-input px-4 text-sm font-medium hover:bg-accent">
              All templates
            </Link>
            <Link href={`/templates/edit/?id=${encodeURIComponent(t.id)}`} className="inline-flex h-9 items-center rounded-md border border-input px-4 text-sm font-medium hover:bg-accent">
              Edit
            </Link>
            <Button variant="outline" className="text-destructive" onClick={() => setDeleting(true)}>
              Delete
            </Button>
          </>
        }
      />
      <div className="grid gap-6 xl:grid-cols-[1fr_420px]">
        <Card>
          <CardContent className="grid gap-4 pt-4">
            <Tabs
              label="Template"
              value={tab}
              onChange={setTab}
              items={[
                { value: "run", label: "Run" },
                { value: "versions", label: `Versions (${t.current_version})` },
                { value: "triggers", label: "Triggers" },
              ]}
            />
            <div role="tabpanel">{tab === "run" ? <RunForm t={t} /> : tab === "versions" ? <Versions t={t} /> : <Triggers t={t} />}</div>
          </CardContent>
        </Card>
        <Card className="content-start">
          <CardHeader>
            <CardTitle>Definition (v{t.version})</CardTitle>
          </CardHeader>
          <CardContent>
            <Definition t={t} />
          </CardContent>
        </Card>
      </div>
      {deleting ? (
        <Dialog open onClose={() => setDeleting(false)} title={`Delete “${t.name}”?`} description="Its jobs keep their record. A template a schedule uses cannot be deleted.">
          {del.isError ? <ErrorState error={del.error} title="Not deleted" /> : null}
          <div className="mt-4 flex justify-end gap-2">
            <Button variant="outline" onClick={() => setDeleting(false)}>
              Cancel
            </Button>
            <Button variant="destructive" disabled={del.isPending} onClick={() => del.mutate()}>
              Delete template
            </Button>
          </div>
        </Dialog>
      ) : null}
    </div>
  );
}

export default function TemplateViewPage() {
  return (
    <React.Suspense fallback={<LoadingRows rows={6} />}>
      <TemplateView />
    </React.Suspense>
  );
}
