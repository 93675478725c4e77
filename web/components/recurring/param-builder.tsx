"use client";
import * as React from "react";
import { PARAM_TYPE_LABELS, PARAM_TYPES, emptyDraft, envName, type ParamDraft } from "@/lib/params";
import type { ParamType } from "@/lib/types";
import { Button } from "@/components/ui/button";
import { Field, Input, Select, Textarea } from "@/components/ui/input";

/** The template editor's list of typed parameters: add, edit, reorder, remove. */
export function ParamBuilder({ drafts, onChange, errors }: { drafts: ParamDraft[]; onChange: (d: ParamDraft[]) => void; errors: Record<number, string> }) {
  const set = (i: number, patch: Partial<ParamDraft>) => onChange(drafts.map((d, j) => (j === i ? { ...d, ...patch } : d)));
  const move = (i: number, by: number) => {
    const j = i + by;
    if (j < 0 || j >= drafts.length) return;
    const next = [...drafts];
    [next[i], next[j]] = [next[j], next[i]];
    onChange(next);
  };
  return (
    <fieldset className="grid gap-3">
      <legend className="mb-1 text-sm font-medium">Parameters</legend>
      <p className="text-xs text-muted-foreground">
        Each value reaches the job only as the environment variable REMORA_PARAM_&lt;NAME&gt;, never substituted into the command.
      </p>
      {drafts.map((d, i) => {
        const id = `param-${i}`;
        const bounds = d.type === "integer" || d.type === "string" || d.type === "text" || d.type === "secret";
        const pattern = d.type === "string" || d.type === "text" || d.type === "secret";
        return (
          <div key={i} className="grid gap-3 rounded-md border p-3" role="group" aria-label={`Parameter ${i + 1}${d.name ? ` ${d.name}` : ""}`} data-param={i}>
            <div className="grid gap-3 sm:grid-cols-[1fr_10rem_auto]">
              <Field label="Name" htmlFor={`${id}-name`} hint={d.name ? envName(d.name.trim()) : "letters, digits, _"}>
                <Input id={`${id}-name`} className="font-mono" value={d.name} onChange={(e) => set(i, { name: e.target.value })} />
              </Field>
              <Field label="Type" htmlFor={`${id}-type`}>
                <Select id={`${id}-type`} value={d.type} onChange={(e) => set(i, { type: e.target.value as ParamType })}>
                  {PARAM_TYPES.map((t) => (
                    <option key={t} value={t}>
                      {PARAM_TYPE_LABELS[t]}
                    </option>
                  ))}
                </Select>
              </Field>
              <div className="flex items-end gap-1">
                <Button variant="ghost" size="icon" aria-label={`Move parameter ${i + 1} up`} disabled={i === 0} onClick={() => move(i, -1)}>
                  ↑
                </Button>
                <Button variant="ghost" size="icon" aria-label={`Move parameter ${i + 1} down`} disabled={i === drafts.length - 1} onClick={() => move(i, 1)}>
                  ↓
                </Button>
                <Button variant="ghost" size="icon" className="text-destructive" aria-label={`Remove parameter ${i + 1}`} onClick={() => onChange(drafts.filter((_, j) => j !== i))}>
                  ✕
                </Button>
              </div>
            </div>
            <Field label="Description" htmlFor={`${id}-desc`}>
              <Input id={`${id}-desc`} value={d.description} onChange={(e) => set(i, { description: e.target.value })} />
            </Field>
            <div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
              {d.type === "secret" ? null : d.type === "boolean" ? (
                <Field label="Default" htmlFor={`${id}-default`}>
                  <Select id={`${id}-default`} value={d.default} onChange={(e) => set(i, { default: e.target.value })}>
                    <option value="">(none)</option>
                    <option value="true">true</option>
                    <option value="false">false</option>
                  </Select>
                </Field>
              ) : (
                <Field label="Default" htmlFor={`${id}-default`}>
                  <Input id={`${id}-default`} className="font-mono" value={d.default} onChange={(e) => set(i, { default: e.target.value })} />
                </Field>
              )}
              {bounds ? (
                <>
                  <Field label={d.type === "integer" ? "Min" : "Min length"} htmlFor={`${id}-min`}>
                    <Input id={`${id}-min`} inputMode="numeric" value={d.min} onChange={(e) => set(i, { min: e.target.value })} />
                  </Field>
                  <Field label={d.type === "integer" ? "Max" : "Max length"} htmlFor={`${id}-max`}>
                    <Input id={`${id}-max`} inputMode="numeric" value={d.max} onChange={(e) => set(i, { max: e.target.value })} />
                  </Field>
                </>
              ) : null}
              {pattern ? (
                <Field label="Regex (whole value)" htmlFor={`${id}-pattern`}>
                  <Input id={`${id}-pattern`} className="font-mono" value={d.pattern} onChange={(e) => set(i, { pattern: e.target.value })} />
                </Field>
              ) : null}
            </div>
            {d.type === "choice" ? (
              <Field label="Choices (one per line)" htmlFor={`${id}-choices`}>
                <Textarea id={`${id}-choices`} className="font-mono" rows={3} value={d.choices} onChange={(e) => set(i, { choices: e.target.value })} />
              </Field>
            ) : null}
            <label className="flex items-center gap-2 text-sm">
              <input type="checkbox" className="h-4 w-4" checked={d.required} onChange={(e) => set(i, { required: e.target.checked })} />
              Required
            </label>
            {errors[i] ? (
              <p role="alert" className="text-xs text-destructive">
                {errors[i]}
              </p>
            ) : null}
          </div>
        );
      })}
      <div>
        <Button variant="outline" size="sm" onClick={() => onChange([...drafts, emptyDraft()])}>
          Add parameter
        </Button>
      </div>
    </fieldset>
  );
}
