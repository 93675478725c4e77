"use client";
// The Execute form's batch policy (max_parallel, fail_threshold, on_fail_threshold):
// shown only for a multi-host target, validated as the API validates it.
import * as React from "react";
import { checkPolicy, type PolicyInput } from "@/lib/fleet";
import { Field, Input, Select } from "@/components/ui/input";

export function BatchPolicy({
  value,
  onChange,
  hosts,
  maxHosts,
  fieldError,
}: {
  value: PolicyInput;
  onChange: (v: PolicyInput) => void;
  /** Hosts the submission targets. */
  hosts: number;
  /** The API's REMORA_MAX_BATCH_HOSTS, when known. */
  maxHosts?: number;
  /** The API's message for a field after a refused submission. */
  fieldError?: (field: string) => string | null;
}) {
  if (hosts < 2) return null;
  const c = checkPolicy(value, hosts, maxHosts);
  const set = (patch: Partial<PolicyInput>) => onChange({ ...value, ...patch });
  return (
    <fieldset className="grid gap-3 rounded-md border p-3" aria-label="Batch policy">
      <legend className="px-1 text-sm font-medium">Batch policy</legend>
      <p className="text-xs text-muted-foreground" data-testid="batch-hosts">
        Runs on {hosts.toLocaleString("en")} hosts as one batch.
      </p>
      {c.errors.hosts ? (
        <p role="alert" className="text-xs text-destructive">
          {c.errors.hosts}
        </p>
      ) : null}
      <div className="grid grid-cols-2 gap-3">
        <Field label="Max parallel" htmlFor="max-parallel" hint="A count or a share, e.g. 10 or 10%" error={c.errors.maxParallel ?? fieldError?.("max_parallel")}>
          <Input id="max-parallel" className="font-mono" placeholder="no limit" value={value.maxParallel} onChange={(e) => set({ maxParallel: e.target.value })} />
        </Field>
        <Field label="Fail threshold" htmlFor="fail-threshold" hint="Failed hosts (count or %) that stop it" error={c.errors.failThreshold ?? fieldError?.("fail_threshold")}>
          <Input id="fail-threshold" className="font-mono" placeholder="none" value={value.failThreshold} onChange={(e) => set({ failThreshold: e.target.value })} />
        </Field>
      </div>
      <Field label="When the threshold is reached" htmlFor="on-fail" error={fieldError?.("on_fail_threshold")}>
        <Select id="on-fail" value={value.onFail} disabled={!value.failThreshold.trim()} onChange={(e) => set({ onFail: e.target.value as PolicyInput["onFail"] })}>
          <option value="stop">stop: start no more hosts, running ones finish</option>
          <option value="abort">abort: also cancel the running ones</option>
        </Select>
      </Field>
      {c.summary.length ? (
        <ul className="list-disc pl-5 text-xs text-muted-foreground" aria-label="Policy summary">
          {c.summary.map((s) => (
            <li key={s}>{s}</li>
          ))}
        </ul>
      ) : null}
    </fieldset>
  );
}

/** Whether the policy (and the host count) would be accepted. */
export function batchPolicyValid(value: PolicyInput, hosts: number, maxHosts?: number): boolean {
  if (hosts < 2) return true;
  return Object.keys(checkPolicy(value, hosts, maxHosts).errors).length === 0;
}
