"use client";
import * as React from "react";
import { useRouter, useSearchParams } from "next/navigation";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "@/lib/api";
import { templateQuery } from "@/lib/queries";
import { queryKeys } from "@/lib/query-keys";
import { draftsToSpecs, parseEnv, specToDraft, type ParamDraft } from "@/lib/params";
import type { Targets, Template } from "@/lib/types";
import { CodeEditor } from "@/components/code-editor";
import { ParamBuilder } from "@/components/recurring/param-builder";
import { TargetPicker } from "@/components/recurring/target-picker";
import { ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { Button } from "@/components/ui/button";
import { Card, CardContent } from "@/components/ui/card";
import { Field, Input, Label, Select, Textarea } from "@/components/ui/input";
import { Tabs } from "@/components/ui/tabs";

const SHELLS = ["/bin/bash", "/bin/sh", "/bin/dash", "/bin/zsh", "/usr/bin/python3"];
const FIELDS = ["name", "command", "script", "shell", "timeout", "priority", "max_retries", "targets", "env", "become_user", "params", "body"];

function Editor({ initial }: { initial: Template | null }) {
  const router = useRouter();
  const qc = useQueryClient();
  const [name, setName] = React.useState(initial?.name ?? "");
  const [description, setDescription] = React.useState(initial?.description ?? "");
  const [mode, setMode] = React.useState<"command" | "script">(initial?.script ? "script" : "command");
  const [command, setCommand] = React.useState(initial?.command ?? "");
  const [script, setScript] = React.useState(initial?.script ?? '#!/bin/bash\nset -euo pipefail\n\necho "deploying $REMORA_PARAM_REF"\n');
  const [shell, setShell] = React.useState(initial?.shell ?? "/bin/bash");
  const [drafts, setDrafts] = React.useState<ParamDraft[]>((initial?.params ?? []).map(specToDraft));
  const [targets, setTargets] = React.useState<Targets>(initial?.targets ?? { servers: [], tag: null });
  const [timeout, setTimeout_] = React.useState(String(initial?.timeout ?? 300));
  const [priority, setPriority] = React.useState(String(initial?.priority ?? 5));
  const [retries, setRetries] = React.useState(String(initial?.max_retries ?? 0));
  const [envText, setEnvText] = React.useState(
    Object.entries(initial?.env ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
  );
  const [become, setBecome] = React.useState(Boolean(initial?.become));
  const [becomeUser, setBecomeUser] = React.useState(initial?.become_user ?? "");
  const [localErrors, setLocalErrors] = React.useState<Record<string, string>>({});
  const [paramErrors, setParamErrors] = React.useState<Record<number, string>>({});

  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      initial ? api.put<Template>(`/api/v1/templates/${encodeURIComponent(initial.id)}`, body) : api.post<Template>("/api/v1/templates", body),
    onSuccess: (t) => {
      qc.invalidateQueries({ queryKey: queryKeys.templates.all });
      router.push(`/templates/view/?id=${encodeURIComponent(t.id)}`);
    },
    onError: (e) => {
      // The API names a parameter in its message: put it on that parameter's card.
      if (e instanceof ApiError && e.field === "params") {
        const m = /^parameter `([^`]+)`: ([\s\S]*)$/.exec(e.message);
        const i = m ? drafts.findIndex((d) => d.name.trim() === m[1]) : -1;
        if (i >= 0) setParamErrors({ [i]: m![2] });
      }
    },
  });

  function submit() {
    const errs: Record<string, string> = {};
    if (!name.trim()) errs.name = "a name has 1 to 128 characters";
    if (mode === "command" && !command.trim()) errs.command = "a template has exactly one of `command` or `script`";
    if (mode === "script" && !script.trim()) errs.script = "a template has exactly one of `command` or `script`";
    const pr = Number(priority);
    if (!Number.isInteger(pr) || pr < 1 || pr > 10) errs.priority = "priority is between 1 and 10";
    const to = Number(timeout);
    if (!Number.isInteger(to) || to < 0) errs.timeout = "timeout is a whole number of seconds, 0 for no limit";
    const mr = Number(retries);
    if (!Number.isInteger(mr) || mr < 0 || mr > 10) errs.max_retries = "max_retries must be between 0 and 10";
    const env = parseEnv(envText);
    if (env.error) errs.env = env.error;
    const bu = becomeUser.trim();
    if (become && bu && !/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(bu)) errs.become_user = `\`become_user\` \`${bu}\` is not a valid user name`;
    const { specs, errors } = draftsToSpecs(drafts);
    setParamErrors(errors);
    setLocalErrors(errs);
    if (Object.keys(errs).length || Object.keys(errors).length) return;
    const body: Record<string, unknown> = {
      name: name.trim(),
      description: description.trim() || null,
      params: specs,
      targets: { servers: targets.servers ?? [], ...(targets.tag ? { tag: targets.tag } : {}) },
      timeout: to,
      priority: pr,
      max_retries: mr,
      env: env.env,
      ...(become ? { become: true, ...(bu ? { become_user: bu } : {}) } : {}),
    };
    if (mode === "command") body.command = command;
    else {
      body.script = script;
      body.shell = shell;
    }
    save.mutate(body);
  }

  const apiErr = save.error instanceof ApiError ? save.error : null;
  const fieldErr = (f: string) => localErrors[f] ?? (apiErr?.field === f ? apiErr.message : null);
  const shownElsewhere = apiErr && FIELDS.includes(apiErr.field ?? "") && apiErr.field !== "body" && !(apiErr.field === "params" && Object.keys(paramErrors).length);

  return (
    <form
      className="grid gap-6 xl:grid-cols-[1fr_380px]"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
      noValidate
    >
      <div className="grid content-start gap-6">
        <Card>
          <CardContent className="grid gap-4 pt-4">
            <Field label="Name" htmlFor="tpl-name" error={fieldErr("name")} hint={initial ? "Renaming keeps the id, its history and schedules." : "Unique; used by the CLI: remora templates run NAME"}>
              <Input id="tpl-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={128} autoFocus={!initial} />
            </Field>
            <Field label="Description" htmlFor="tpl-desc">
              <Textarea id="tpl-desc" rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />
            </Field>
            <Tabs
              label="Template kind"
              value={mode}
              onChange={setMode}
              items={[
                { value: "command", label: "Command" },
                { value: "script", label: "Script" },
              ]}
            />
            {mode === "command" ? (
              <Field label="Command" htmlFor="tpl-command" error={fieldErr("command")} hint="Run by /bin/sh -c; parameters arrive as $REMORA_PARAM_<NAME>">
                <Input id="tpl-command" className="font-mono" value={command} onChange={(e) => setCommand(e.target.value)} placeholder='echo "deploying $REMORA_PARAM_REF"' />
              </Field>
            ) : (
              <div className="grid gap-3">
                <div>
                  <Label htmlFor="tpl-script">Script</Label>
                  <CodeEditor id="tpl-script" className="mt-1.5" value={script} onChange={setScript} rows={12} aria-describedby="tpl-script-msg" />
                  <p id="tpl-script-msg" className={fieldErr("script") ? "mt-1 text-xs text-destructive" : "mt-1 text-xs text-muted-foreground"}>
                    {fieldErr("script") ?? "Sent to the shell on stdin. Esc then Tab leaves the editor."}
                  </p>
                </div>
                <Field label="Shell" htmlFor="tpl-shell" error={fieldErr("shell")}>
                  <Select id="tpl-shell" value={shell} onChange={(e) => setShell(e.target.value)}>
                    {Array.from(new Set([shell, ...SHELLS])).map((s) => (
                      <option key={s}>{s}</option>
                    ))}
                  </Select>
                </Field>
              </div>
            )}
          </CardContent>
        </Card>
        <Card>
          <CardContent className="pt-4">
            <ParamBuilder drafts={drafts} onChange={setDrafts} errors={paramErrors} />
            {apiErr?.field === "params" && !Object.keys(paramErrors).length ? (
              <p role="alert" className="mt-2 text-xs text-destructive">
                {apiErr.message}
              </p>
            ) : null}
          </CardContent>
        </Card>
      </div>
      <Card className="content-start">
        <CardContent className="grid gap-4 pt-4">
          <TargetPicker id="tpl-targets" value={targets} onChange={setTargets} error={fieldErr("targets")} />
          <div className="grid grid-cols-3 gap-3">
            <Field label="Timeout (s)" htmlFor="tpl-timeout" hint="0 = no limit" error={fieldErr("timeout")}>
              <Input id="tpl-timeout" inputMode="numeric" value={timeout} onChange={(e) => setTimeout_(e.target.value)} />
            </Field>
            <Field label="Priority" htmlFor="tpl-priority" hint="1–10" error={fieldErr("priority")}>
              <Input id="tpl-priority" inputMode="numeric" value={priority} onChange={(e) => setPriority(e.target.value)} />
            </Field>
            <Field label="Retries" htmlFor="tpl-retries" hint="0–10" error={fieldErr("max_retries")}>
              <Input id="tpl-retries" inputMode="numeric" value={retries} onChange={(e) => setRetries(e.target.value)} />
            </Field>
          </div>
          <Field label="Environment (KEY=value per line)" htmlFor="tpl-env" hint="Fixed variables, visible in the template; use a secret parameter for secrets." error={fieldErr("env")}>
            <Textarea id="tpl-env" className="font-mono" rows={3} value={envText} onChange={(e) => setEnvText(e.target.value)} />
          </Field>
          <div className="grid gap-2">
            <label className="flex items-center gap-2 text-sm" htmlFor="tpl-become">
              <input id="tpl-become" type="checkbox" className="h-4 w-4" checked={become} onChange={(e) => setBecome(e.target.checked)} />
              Become (run under sudo with the server&apos;s sudo password)
            </label>
            {become ? (
              <Field label="Become user" htmlFor="tpl-become-user" hint="Default root" error={fieldErr("become_user")}>
                <Input id="tpl-become-user" value={becomeUser} placeholder="root" onChange={(e) => setBecomeUser(e.target.value)} />
              </Field>
            ) : null}
          </div>
          {save.isError && !shownElsewhere ? <ErrorState error={save.error} title="The template was not saved" /> : null}
          <Button type="submit" size="lg" disabled={save.isPending}>
            {save.isPending ? "Saving…" : initial ? `Save as version ${initial.current_version + 1}` : "Create template"}
          </Button>
        </CardContent>
      </Card>
    </form>
  );
}

function EditTemplate() {
  const id = useSearchParams().get("id");
  const q = useQuery({ ...templateQuery(id ?? ""), enabled: !!id });
  if (!id)
    return (
      <div>
        <PageHeader title="New template" description="A saved command or script with typed parameters and default targets." />
        <Editor initial={null} />
      </div>
    );
  if (q.isError) return <ErrorState error={q.error} onRetry={() => q.refetch()} title="Could not load the template" />;
  if (q.isPending) return <LoadingRows label="Loading the template" />;
  return (
    <div>
      <PageHeader title={`Edit ${q.data.name}`} description={`Version ${q.data.current_version}; saving makes the next version (runs record the version they used).`} />
      <Editor key={`${q.data.id}-${q.data.version}`} initial={q.data} />
    </div>
  );
}

export default function EditTemplatePage() {
  return (
    <React.Suspense fallback={<LoadingRows label="Loading" />}>
      <EditTemplate />
    </React.Suspense>
  );
}
