"use client";
// The servers page's import: an inventory (ssh_config, CSV, Ansible, known_hosts) pasted or
// uploaded, previewed by a dry run (rows to create / update / leave, line errors), then applied in
// one go; afterwards the host-key review of the servers it named.
import * as React from "react";
import Link from "next/link";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError, errorFrom, authHeaders, getToken, setToken, url } from "@/lib/api";
import { queryKeys } from "@/lib/query-keys";
import { guessFormat, importedIds, IMPORT_FORMATS, splitTags, type Credential, type ImportFormat, type ImportResult } from "@/lib/hostkeys";
import { ErrorState } from "../states";
import { Badge, type Tone } from "../ui/badge";
import { Button } from "../ui/button";
import { Dialog } from "../ui/dialog";
import { Field, Input, Select, Textarea } from "../ui/input";
import { Table, Td, Th } from "../ui/table";

const ACTION_TONES: Record<string, Tone> = { create: "green", update: "blue", unchanged: "gray", skip: "amber" };

/** `POST /servers/import`: a 422 with line errors is a result too (nothing applied), not a failure. */
async function runImport(body: unknown): Promise<ImportResult> {
  const res = await fetch(url("/api/v1/servers/import"), {
    method: "POST",
    headers: { ...authHeaders(), "Content-Type": "application/json" },
    body: JSON.stringify(body),
  }).catch((e: Error) => {
    throw new ApiError(0, "network_error", `Cannot reach the Remora API: ${e.message}`);
  });
  if (res.ok) return res.json();
  if (res.status === 401 && getToken()) {
    // As lib/api's request: a revoked token goes back to the sign-in screen.
    const err = await errorFrom(res);
    setToken(null);
    throw err;
  }
  if (res.status === 422) {
    const b = await res.clone().json().catch(() => null);
    if (b && Array.isArray(b.rows) && Array.isArray(b.errors)) return b as ImportResult;
  }
  throw await errorFrom(res);
}

export function ImportDialog({ onClose }: { onClose: () => void }) {
  const qc = useQueryClient();
  const [format, setFormat] = React.useState<ImportFormat | "">("");
  const [content, setContent] = React.useState("");
  const [fileName, setFileName] = React.useState<string | null>(null);
  const [user, setUser] = React.useState("");
  const [port, setPort] = React.useState("");
  const [tags, setTags] = React.useState("");
  const [credential, setCredential] = React.useState("");
  // The preview answers for exactly this request; any edit asks for a new one.
  const [preview, setPreview] = React.useState<{ key: string; result: ImportResult } | null>(null);
  const [applied, setApplied] = React.useState<ImportResult | null>(null);
  const creds = useQuery({
    queryKey: ["credentials"],
    queryFn: ({ signal }) => api.get<{ credentials: Credential[] }>("/api/v1/credentials", undefined, signal),
  });
  const shared = (creds.data?.credentials ?? []).filter((c) => !c.owner_server_id);

  const guessed = guessFormat(fileName, content);
  const fmt = format || guessed;
  const knownHosts = fmt === "known_hosts";
  const body = (dry_run: boolean) => {
    const defaults: Record<string, unknown> = {};
    if (!knownHosts) {
      if (user.trim()) defaults.user = user.trim();
      if (port.trim()) defaults.port = Number(port);
      if (splitTags(tags).length) defaults.tags = splitTags(tags);
      if (credential) defaults.credential_id = credential;
    }
    return { format: fmt, content, dry_run, ...(Object.keys(defaults).length ? { defaults } : {}) };
  };
  const key = JSON.stringify(body(true));
  const run = useMutation({
    mutationFn: (dry: boolean) => runImport(body(dry)),
    onSuccess: (r, dry) => {
      if (dry) setPreview({ key, result: r });
      else if (r.applied) {
        setApplied(r);
        qc.invalidateQueries({ queryKey: queryKeys.servers });
      } else setPreview({ key, result: r });
    },
  });
  const current = preview && preview.key === key ? preview.result : null;
  const changes = current ? current.created + current.updated : 0;

  const onFile = async (f: File | undefined) => {
    if (!f) return;
    setFileName(f.name);
    setContent(await f.text());
  };

  if (applied) {
    const ids = importedIds(applied);
    return (
      <Dialog open onClose={onClose} title="Import applied" className="max-w-3xl">
        <p className="text-sm" role="status" data-testid="import-applied">
          {applied.created} created, {applied.updated} updated, {applied.unchanged} unchanged{applied.skipped ? `, ${applied.skipped} skipped` : ""}.
        </p>
        <ImportRows result={applied} />
        <div className="mt-4 flex justify-end gap-2">
          <Button variant="outline" onClick={onClose}>
            Done
          </Button>
          {ids.length ? (
            <Link
              href={`/servers/host-keys/?ids=${ids.join(",")}`}
              className="inline-flex h-9 items-center rounded-md bg-primary px-4 text-sm font-medium text-primary-foreground hover:bg-primary/90"
            >
              Review host keys of these {ids.length} servers
            </Link>
          ) : null}
        </div>
      </Dialog>
    );
  }

  return (
    <Dialog
      open
      onClose={onClose}
      title="Import servers"
      className="max-w-3xl"
      description="Preview first: a dry run lists what would be created, updated or left alone, and writes nothing. Any error applies nothing."
    >
      <form
        className="grid gap-4"
        onSubmit={(e) => {
          e.preventDefault();
          run.mutate(true);
        }}
      >
        <div className="grid grid-cols-2 gap-4">
          <Field label="Format" htmlFor="imp-format" hint={!format && guessed ? `Detected: ${IMPORT_FORMATS.find((f) => f.value === guessed)?.label}` : undefined}>
            <Select id="imp-format" value={format} onChange={(e) => setFormat(e.target.value as ImportFormat | "")}>
              <option value="">Detect from the file</option>
              {IMPORT_FORMATS.map((f) => (
                <option key={f.value} value={f.value}>
                  {f.label}
                </option>
              ))}
            </Select>
          </Field>
          <Field label="File" htmlFor="imp-file" hint={fileName ? `Read ${fileName}` : "Or paste it below"}>
            <Input id="imp-file" type="file" className="py-1.5" onChange={(e) => onFile(e.target.files?.[0])} />
          </Field>
        </div>
        <Field label="Inventory" htmlFor="imp-content">
          <Textarea
            id="imp-content"
            rows={8}
            className="font-mono text-xs"
            value={content}
            onChange={(e) => setContent(e.target.value)}
            placeholder={"Host web1\n  HostName 10.0.0.5\n  User deploy"}
          />
        </Field>
        {knownHosts ? (
          <p className="text-sm text-muted-foreground">known_hosts pins the keys of servers that exist already (by host and port); it creates none.</p>
        ) : (
          <fieldset className="grid grid-cols-2 gap-4 sm:grid-cols-4">
            <legend className="col-span-full mb-2 text-sm font-medium">Defaults for what the file does not say</legend>
            <Field label="User" htmlFor="imp-user">
              <Input id="imp-user" value={user} onChange={(e) => setUser(e.target.value)} placeholder="deploy" />
            </Field>
            <Field label="Port" htmlFor="imp-port">
              <Input id="imp-port" type="number" min={1} max={65535} value={port} onChange={(e) => setPort(e.target.value)} placeholder="22" />
            </Field>
            <Field label="Tags (added)" htmlFor="imp-tags">
              <Input id="imp-tags" value={tags} onChange={(e) => setTags(e.target.value)} placeholder="lab, eu" />
            </Field>
            <Field label="Credential" htmlFor="imp-cred" hint="For the servers created">
              <Select id="imp-cred" value={credential} onChange={(e) => setCredential(e.target.value)}>
                <option value="">None</option>
                {shared.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.name} ({c.kind})
                  </option>
                ))}
              </Select>
            </Field>
          </fieldset>
        )}
        {run.isError ? <ErrorState error={run.error} title="The import could not run" /> : null}
        {current ? <ImportPreview result={current} /> : null}
        <div className="flex justify-end gap-2">
          <Button variant="outline" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" variant={current ? "outline" : "default"} disabled={!content.trim() || !fmt || run.isPending}>
            {run.isPending && run.variables ? "Checking…" : "Preview (dry run)"}
          </Button>
          <Button
            onClick={() => run.mutate(false)}
            disabled={!current || current.errors.length > 0 || changes === 0 || run.isPending}
            title={!current ? "Run the preview first" : current.errors.length ? "Fix the errors first" : changes === 0 ? "Nothing to change" : undefined}
          >
            {run.isPending && !run.variables ? "Applying…" : !current || current.errors.length ? "Apply" : changes ? `Apply ${changes} change${changes === 1 ? "" : "s"}` : "Nothing to apply"}
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

function ImportPreview({ result }: { result: ImportResult }) {
  return (
    <div className="grid gap-3" data-testid="import-preview">
      {result.errors.length ? (
        <div role="alert" className="rounded-md border border-destructive/40 bg-destructive/5 p-3 text-sm" data-testid="import-errors">
          <p className="font-medium">
            {result.errors.length} error{result.errors.length === 1 ? "" : "s"}: nothing will be applied.
          </p>
          <ul className="mt-1 grid gap-0.5 font-mono text-xs">
            {result.errors.map((e, i) => (
              <li key={i} data-line={e.line}>
                {e.line ? `line ${e.line}: ` : ""}
                {e.message}
              </li>
            ))}
          </ul>
        </div>
      ) : (
        <p className="text-sm" data-testid="import-summary">
          Would create {result.created}, update {result.updated}, leave {result.unchanged} unchanged{result.skipped ? `, skip ${result.skipped}` : ""} ({result.format}).
        </p>
      )}
      {result.warnings.length ? (
        <ul className="grid gap-0.5 text-xs text-muted-foreground">
          {result.warnings.map((w, i) => (
            <li key={i}>
              {w.line ? `line ${w.line}: ` : ""}
              {w.message}
            </li>
          ))}
        </ul>
      ) : null}
      <ImportRows result={result} />
    </div>
  );
}

function ImportRows({ result }: { result: ImportResult }) {
  if (!result.rows.length) return null;
  return (
    <div className="max-h-72 overflow-auto rounded-md border">
      <Table aria-label="Import rows">
        <thead className="sticky top-0 bg-card">
          <tr>
            <Th>Line</Th>
            <Th>Server</Th>
            <Th>Action</Th>
            <Th>Why</Th>
          </tr>
        </thead>
        <tbody>
          {result.rows.map((r) => (
            <tr key={`${r.line}-${r.name}`} data-row={r.name} data-action={r.action}>
              <Td className="tabular-nums text-xs">{r.line}</Td>
              <Td className="whitespace-nowrap font-medium">{r.name}</Td>
              <Td>
                <Badge tone={ACTION_TONES[r.action] ?? "neutral"}>{r.action}</Badge>
              </Td>
              <Td className="text-xs text-muted-foreground">{r.reasons.join("; ")}</Td>
            </tr>
          ))}
        </tbody>
      </Table>
    </div>
  );
}
