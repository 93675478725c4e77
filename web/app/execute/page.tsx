"use client";
import * as React from "react";
import { useRouter } from "next/navigation";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "@/lib/api";
import { serversQuery, systemInfoQuery } from "@/lib/queries";
import type { Created, Job } from "@/lib/types";
import { parseArgs } from "@/lib/format";
import { queryKeys } from "@/lib/query-keys";
import { emptyPolicy, checkPolicy, filterFromQuery, targetOf, type PolicyInput } from "@/lib/fleet";
import { CodeEditor } from "@/components/code-editor";
import { ServerChecklist } from "@/components/execute/ServerChecklist";
import { BatchPolicy, batchPolicyValid } from "@/components/execute/BatchPolicy";
import { ErrorState, PageHeader } from "@/components/states";
import { Button } from "@/components/ui/button";
import { Card, CardContent } from "@/components/ui/card";
import { Field, Input, Label, Select, Textarea } from "@/components/ui/input";
import { Tabs } from "@/components/ui/tabs";
import { JobOptions, emptyJobOptions, jobOptionsBody, type JobOptionsValue } from "@/components/execute/JobOptions";

const SHELLS = ["/bin/bash", "/bin/sh", "/bin/dash", "/bin/zsh", "/usr/bin/python3"];


export default function ExecutePage() {
  const router = useRouter();
  const qc = useQueryClient();
  const servers = useQuery(serversQuery());
  const [mode, setMode] = React.useState<"command" | "script">("command");
  const [command, setCommand] = React.useState("");
  const [script, setScript] = React.useState("#!/bin/bash\nset -euo pipefail\n\necho \"hello from $(hostname)\"\n");
  const [scriptName, setScriptName] = React.useState<string | null>(null);
  const [shell, setShell] = React.useState("/bin/bash");
  const [args, setArgs] = React.useState("");
  const [targetMode, setTargetMode] = React.useState<"servers" | "tag">("servers");
  const [selected, setSelected] = React.useState<string[]>([]);
  const [filter, setFilter] = React.useState("");
  const [tag, setTag] = React.useState("");
  const [timeout, setTimeout_] = React.useState("300");
  const [priority, setPriority] = React.useState("5");
  const [dragOver, setDragOver] = React.useState(false);
  const [fileError, setFileError] = React.useState<string | null>(null);
  const [options, setOptions] = React.useState<JobOptionsValue>(emptyJobOptions);
  const [policy, setPolicy] = React.useState<PolicyInput>(emptyPolicy);
  const [prefill, setPrefill] = React.useState<string | null>(null);
  const maxHosts = useQuery(systemInfoQuery()).data?.max_batch_hosts;

  const all = servers.data?.servers ?? [];
  const tags = Array.from(new Set(all.flatMap((s) => s.tags))).sort();
  const selectedSet = React.useMemo(() => new Set(selected), [selected]);
  const toggle = React.useCallback((id: string, on: boolean) => setSelected((cur) => (on ? [...cur, id] : cur.filter((x) => x !== id))), []);
  const shown = all.filter((s) => !filter || `${s.name} ${s.hostname} ${s.tags.join(" ")}`.toLowerCase().includes(filter.toLowerCase()));
  React.useEffect(() => {
    // One server: preselect it, a newcomer's first run needs no clicks.
    if (all.length === 1 && selected.length === 0) setSelected([all[0].id]);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [all.length]);
  React.useEffect(() => {
    // "Run on all matching" from the Servers page: its filter arrives in the address.
    const p = new URLSearchParams(window.location.search);
    if (!servers.data || p.get("from") !== "servers" || prefill !== null) return;
    const f = filterFromQuery(p);
    const t = targetOf(all, f);
    if ("tag" in t) {
      setTargetMode("tag");
      setTag(t.tag);
    } else {
      setTargetMode("servers");
      setSelected(t.server_ids);
    }
    setPrefill([f.q && `matching “${f.q}”`, f.tag && `tag ${f.tag}`, f.status && `status ${f.status}`].filter(Boolean).join(", ") || "all servers");
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [servers.data]);
  const hosts = targetMode === "tag" ? all.filter((s) => s.is_active && s.tags.includes(tag)).length : selected.length;

  const submit = useMutation({
    mutationFn: async () => {
      const opts = jobOptionsBody(options, mode);
      if (opts.error) throw new ApiError(422, "validation_failed", opts.error, "env");
      const body: Record<string, unknown> = { args: parseArgs(args), timeout: Number(timeout) || 0, priority: Number(priority) || 5, ...opts.body };
      if (targetMode === "tag") body.tag = tag;
      else if (selected.length === 1) body.server_id = selected[0];
      else body.server_ids = selected;
      if (hosts > 1) Object.assign(body, checkPolicy(policy, hosts, maxHosts).body);
      if (mode === "command") return api.post<Created>("/api/v1/jobs", { ...body, command });
      return api.post<Created>("/api/v1/jobs/script", { ...body, script, shell });
    },
    onSuccess: (res) => {
      qc.invalidateQueries({ queryKey: queryKeys.jobs.all });
      if ("batch_id" in res && res.batch_id && "jobs" in res) router.push(`/batches/view/?id=${res.batch_id}`);
      else router.push(`/jobs/view/?id=${(res as Job).id}`);
    },
  });

  async function loadFile(file: File | undefined) {
    if (!file) return;
    if (file.size > 256 * 1024) {
      setFileError(`${file.name} is larger than 256 KiB, the API's script limit.`);
      return;
    }
    setFileError(null);
    setScript(await file.text());
    setScriptName(file.name);
    setMode("script");
  }

  const fieldErr = (f: string) => (submit.error instanceof ApiError && submit.error.field === f ? submit.error.message : null);
  const canSubmit =
    (mode === "command" ? command.trim() : script.trim()) && (targetMode === "tag" ? tag : selected.length > 0) && batchPolicyValid(policy, hosts, maxHosts);

  return (
    <div>
      <PageHeader title="Execute" description="Run a command or a script on one server, several, or every server with a tag." />
      <form
        className="grid gap-6 xl:grid-cols-[1fr_360px]"
        onSubmit={(e) => {
          e.preventDefault();
          submit.mutate();
        }}
      >
        <Card>
          <CardContent className="grid gap-4 pt-4">
            <Tabs
              label="Job kind"
              value={mode}
              onChange={setMode}
              items={[
                { value: "command", label: "Command" },
                { value: "script", label: "Script" },
              ]}
            />
            {mode === "command" ? (
              <Field label="Command" htmlFor="command" hint="Run by the remote user's login shell, e.g. uptime, or df -h /" error={fieldErr("command")}>
                <Input id="command" className="font-mono" value={command} onChange={(e) => setCommand(e.target.value)} placeholder="uptime" autoFocus />
              </Field>
            ) : (
              <div
                className={dragOver ? "rounded-md ring-2 ring-ring" : ""}
                onDragOver={(e) => {
                  e.preventDefault();
                  setDragOver(true);
                }}
                onDragLeave={() => setDragOver(false)}
                onDrop={(e) => {
                  e.preventDefault();
                  setDragOver(false);
                  loadFile(e.dataTransfer.files[0]);
                }}
              >
                <div className="mb-1.5 flex flex-wrap items-center justify-between gap-2">
                  <Label htmlFor="script">Script{scriptName ? ` — ${scriptName}` : ""}</Label>
                  <label className="cursor-pointer text-sm text-primary hover:underline">
                    Upload .sh file
                    <input type="file" accept=".sh,.bash,.py,text/x-sh,text/plain" className="sr-only" aria-label="Upload a script file" onChange={(e) => loadFile(e.target.files?.[0])} />
                  </label>
                </div>
                <CodeEditor id="script" value={script} onChange={setScript} rows={16} aria-describedby="script-hint" />
                <p id="script-hint" className="mt-1 text-xs text-muted-foreground">
                  Sent to the shell on stdin; its exit code is the job&apos;s. Drop a file here to load it.
                </p>
                {fieldErr("script") || fileError ? <p role="alert" className="text-xs text-destructive">{fieldErr("script") ?? fileError}</p> : null}
              </div>
            )}
            <div className="grid gap-4 md:grid-cols-2">
              <Field label="Arguments (one per line)" htmlFor="args" error={fieldErr("args")} hint={mode === "script" ? "Passed as $1, $2, …" : "Appended to the command, quoted"}>
                <Textarea id="args" className="font-mono" rows={3} value={args} onChange={(e) => setArgs(e.target.value)} />
              </Field>
              {mode === "script" ? (
                <Field label="Shell" htmlFor="shell" error={fieldErr("shell")}>
                  <Select id="shell" value={shell} onChange={(e) => setShell(e.target.value)}>
                    {SHELLS.map((s) => (
                      <option key={s}>{s}</option>
                    ))}
                  </Select>
                </Field>
              ) : null}
            </div>
          </CardContent>
        </Card>
        <Card>
          <CardContent className="grid gap-4 pt-4">
            <fieldset className="grid gap-2">
              <legend className="mb-2 text-sm font-medium">Targets</legend>
              <Tabs
                label="Target by"
                value={targetMode}
                onChange={setTargetMode}
                items={[
                  { value: "servers", label: "Servers" },
                  { value: "tag", label: "Tag" },
                ]}
              />
              {targetMode === "servers" ? (
                <>
                  <Input aria-label="Filter servers" placeholder="Filter servers…" value={filter} onChange={(e) => setFilter(e.target.value)} className="h-8" />
                  {servers.isError ? (
                    <ErrorState error={servers.error} />
                  ) : shown.length === 0 ? (
                    <p className="rounded-md border p-3 text-sm text-muted-foreground" role="group" aria-label="Servers">
                      {all.length ? "No server matches." : "No servers yet: add one on the Servers page."}
                    </p>
                  ) : (
                    <ServerChecklist shown={shown} selected={selectedSet} onToggle={toggle} />
                  )}
                  <div className="flex justify-between text-xs text-muted-foreground">
                    <span>{selected.length} selected{selected.length > 1 ? " — runs as a batch" : ""}</span>
                    <span className="flex gap-2">
                      <button type="button" className="hover:underline" onClick={() => setSelected(shown.map((s) => s.id))}>
                        Select all
                      </button>
                      <button type="button" className="hover:underline" onClick={() => setSelected([])}>
                        None
                      </button>
                    </span>
                  </div>
                </>
              ) : (
                <Field label="Tag" htmlFor="tag" error={fieldErr("tag")} hint="Every active server with this tag">
                  <Select id="tag" value={tag} onChange={(e) => setTag(e.target.value)}>
                    <option value="">Choose a tag…</option>
                    {tags.map((t) => (
                      <option key={t}>{t}</option>
                    ))}
                  </Select>
                </Field>
              )}
            </fieldset>
            {prefill ? (
              <p className="rounded-md bg-muted px-3 py-2 text-xs" data-testid="execute-prefill">
                From the Servers page: {hosts.toLocaleString("en")} active servers, {prefill}.
              </p>
            ) : null}
            <BatchPolicy value={policy} onChange={setPolicy} hosts={hosts} maxHosts={maxHosts} fieldError={fieldErr} />
            <div className="grid grid-cols-2 gap-4">
              <Field label="Timeout (s)" htmlFor="timeout" hint="0 = no limit" error={fieldErr("timeout")}>
                <Input id="timeout" type="number" min={0} value={timeout} onChange={(e) => setTimeout_(e.target.value)} />
              </Field>
              <Field label="Priority" htmlFor="priority" hint="1–10, higher first" error={fieldErr("priority")}>
                <Input id="priority" type="number" min={1} max={10} value={priority} onChange={(e) => setPriority(e.target.value)} />
              </Field>
            </div>
            <JobOptions value={options} onChange={setOptions} mode={mode} error={fieldErr("env") ?? fieldErr("become_user") ?? fieldErr("pty")} />
            {submit.isError && !["command", "script", "args", "shell", "tag", "timeout", "priority", "max_parallel", "fail_threshold", "on_fail_threshold", "env", "become_user", "pty"].includes((submit.error as ApiError).field ?? "") ? (
              <ErrorState error={submit.error} title="The job was not submitted" />
            ) : null}
            <Button type="submit" size="lg" disabled={!canSubmit || submit.isPending}>
              {submit.isPending ? "Submitting…" : "Run"}
            </Button>
          </CardContent>
        </Card>
      </form>
    </div>
  );
}
