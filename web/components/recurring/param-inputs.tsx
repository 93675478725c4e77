"use client";
import * as React from "react";
import type { ParamSpec } from "@/lib/types";
import { envName, type FormValue } from "@/lib/params";
import { Field, Input, Select, Textarea } from "@/components/ui/input";

/** One input per template parameter, the right kind for its type, with its error below. */
export function ParamInputs({
  idPrefix,
  specs,
  values,
  onChange,
  errors,
}: {
  idPrefix: string;
  specs: ParamSpec[];
  values: Record<string, FormValue>;
  onChange: (name: string, v: FormValue) => void;
  errors: Record<string, string>;
}) {
  if (specs.length === 0) return <p className="text-sm text-muted-foreground">This template has no parameters.</p>;
  return (
    <div className="grid gap-4 md:grid-cols-2">
      {specs.map((p) => {
        const id = `${idPrefix}-${p.name}`;
        const v = values[p.name];
        const hintParts = [p.description, hint(p), envName(p.name)].filter(Boolean);
        const label = `${p.name}${p.required ? " *" : ""}`;
        const err = errors[p.name] ?? null;
        if (p.type === "boolean") {
          return (
            <div key={p.name} className="grid content-start gap-1.5">
              <label className="flex items-center gap-2 text-sm font-medium" htmlFor={id}>
                <input id={id} type="checkbox" className="h-4 w-4" checked={v === true} onChange={(e) => onChange(p.name, e.target.checked)} aria-describedby={`${id}-msg`} />
                {p.name}
              </label>
              <p id={`${id}-msg`} className={err ? "text-xs text-destructive" : "text-xs text-muted-foreground"} role={err ? "alert" : undefined}>
                {err ?? hintParts.join(" · ")}
              </p>
            </div>
          );
        }
        const s = typeof v === "string" ? v : "";
        let control: React.ReactElement;
        if (p.type === "choice")
          control = (
            <Select id={id} value={s} onChange={(e) => onChange(p.name, e.target.value)}>
              <option value="">{p.required ? "Choose…" : "(none)"}</option>
              {(p.choices ?? []).map((c) => (
                <option key={c}>{c}</option>
              ))}
            </Select>
          );
        else if (p.type === "text")
          control = <Textarea id={id} className="font-mono" rows={4} value={s} onChange={(e) => onChange(p.name, e.target.value)} />;
        else
          control = (
            <Input
              id={id}
              type={p.type === "secret" ? "password" : "text"}
              inputMode={p.type === "integer" ? "numeric" : undefined}
              autoComplete={p.type === "secret" ? "new-password" : "off"}
              className={p.type === "secret" ? undefined : "font-mono"}
              value={s}
              onChange={(e) => onChange(p.name, e.target.value)}
            />
          );
        return (
          <Field key={p.name} label={label} htmlFor={id} hint={hintParts.join(" · ")} error={err} className={p.type === "text" ? "md:col-span-2" : undefined}>
            {control}
          </Field>
        );
      })}
    </div>
  );
}

function hint(p: ParamSpec): string {
  const bits: string[] = [p.type === "text" ? "multi-line text" : p.type];
  if (p.type === "integer") {
    if (p.min != null && p.max != null) bits.push(`${p.min}–${p.max}`);
    else if (p.min != null) bits.push(`≥ ${p.min}`);
    else if (p.max != null) bits.push(`≤ ${p.max}`);
  } else if (p.min != null || p.max != null) bits.push(`${p.min ?? 0}–${p.max ?? "∞"} characters`);
  if (p.pattern) bits.push(`/${p.pattern}/`);
  if (p.default !== undefined && p.default !== null) bits.push(`default ${String(p.default)}`);
  return bits.join(", ");
}
