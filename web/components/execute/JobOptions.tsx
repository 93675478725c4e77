"use client";
// The Execute form's per-job options: pty, become (+ user) and env (docs/jobs.md "pty, become and env").
import * as React from "react";
import { Field, Input } from "@/components/ui/input";

export type JobOptionsValue = { pty: boolean; become: boolean; becomeUser: string; env: { name: string; value: string }[] };

export const emptyJobOptions: JobOptionsValue = { pty: false, become: false, becomeUser: "", env: [] };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The request fields of `v` (only those set), or an error naming a bad env name. */
export function jobOptionsBody(v: JobOptionsValue, mode: "command" | "script"): { body: Record<string, unknown>; error: string | null } {
  const body: Record<string, unknown> = {};
  if (v.pty && mode === "command") body.pty = true;
  if (v.become) {
    body.become = true;
    if (v.becomeUser.trim()) body.become_user = v.becomeUser.trim();
  }
  const rows = v.env.filter((r) => r.name || r.value);
  const bad = rows.find((r) => !ENV_NAME.test(r.name));
  if (bad) return { body, error: `env name "${bad.name}" is not valid (expected [A-Za-z_][A-Za-z0-9_]*)` };
  if (rows.length) body.env = Object.fromEntries(rows.map((r) => [r.name, r.value]));
  return { body, error: null };
}

export function JobOptions({ value, onChange, mode, error }: { value: JobOptionsValue; onChange: (v: JobOptionsValue) => void; mode: "command" | "script"; error?: string | null }) {
  const set = (p: Partial<JobOptionsValue>) => onChange({ ...value, ...p });
  const setRow = (i: number, p: Partial<{ name: string; value: string }>) => set({ env: value.env.map((r, j) => (j === i ? { ...r, ...p } : r)) });
  return (
    <fieldset className="grid gap-3">
      <legend className="mb-2 text-sm font-medium">Options</legend>
      <label className="flex items-center gap-2 text-sm">
        <input type="checkbox" className="h-4 w-4" checked={value.pty && mode === "command"} disabled={mode !== "command"} onChange={(e) => set({ pty: e.target.checked })} />
        PTY <span className="text-xs text-muted-foreground">(command jobs; stdout and stderr merge)</span>
      </label>
      <label className="flex items-center gap-2 text-sm">
        <input type="checkbox" className="h-4 w-4" checked={value.become} onChange={(e) => set({ become: e.target.checked })} />
        Become <span className="text-xs text-muted-foreground">(sudo, with the server&apos;s sudo password)</span>
      </label>
      {value.become ? (
        <Field label="Become user" htmlFor="become-user" hint="Default root">
          <Input id="become-user" className="h-8" placeholder="root" value={value.becomeUser} onChange={(e) => set({ becomeUser: e.target.value })} />
        </Field>
      ) : null}
      <div className="grid gap-2" role="group" aria-label="Environment variables">
        <span className="text-sm">Environment</span>
        {value.env.map((r, i) => (
          <div key={i} className="flex gap-2">
            <Input aria-label={`Env name ${i + 1}`} className="h-8 font-mono" placeholder="NAME" value={r.name} onChange={(e) => setRow(i, { name: e.target.value })} />
            <Input aria-label={`Env value ${i + 1}`} className="h-8 font-mono" placeholder="value" value={r.value} onChange={(e) => setRow(i, { value: e.target.value })} />
            <button type="button" className="text-xs text-muted-foreground hover:underline" aria-label={`Remove env ${i + 1}`} onClick={() => set({ env: value.env.filter((_, j) => j !== i) })}>
              Remove
            </button>
          </div>
        ))}
        <button type="button" className="justify-self-start text-xs text-primary hover:underline" onClick={() => set({ env: [...value.env, { name: "", value: "" }] })}>
          Add variable
        </button>
        {error ? (
          <p role="alert" className="text-xs text-destructive">
            {error}
          </p>
        ) : null}
      </div>
    </fieldset>
  );
}
