"use client";
import * as React from "react";
import { cn } from "@/lib/cn";

/**
 * A textarea with a line-number gutter kept in scroll sync. Tab inserts two
 * spaces; Esc then Tab moves focus on, so keyboard users are not trapped.
 */
export function CodeEditor({
  id,
  value,
  onChange,
  rows = 14,
  className,
  ...rest
}: { id: string; value: string; onChange: (v: string) => void; rows?: number; className?: string } & Omit<
  React.TextareaHTMLAttributes<HTMLTextAreaElement>,
  "value" | "onChange"
>) {
  const gutter = React.useRef<HTMLDivElement>(null);
  const lines = Math.max(1, value.split("\n").length);
  const escaped = React.useRef(false);
  return (
    <div className={cn("flex overflow-hidden rounded-md border border-input bg-background font-mono text-[13px] leading-5 focus-within:ring-2 focus-within:ring-ring", className)}>
      <div ref={gutter} aria-hidden className="select-none overflow-hidden border-r bg-muted/50 px-2 py-2 text-right text-muted-foreground" style={{ height: rows * 20 + 16 }}>
        {Array.from({ length: lines }, (_, i) => (
          <div key={i} data-line={i + 1}>
            {i + 1}
          </div>
        ))}
      </div>
      <textarea
        id={id}
        value={value}
        spellCheck={false}
        wrap="off"
        onChange={(e) => onChange(e.target.value)}
        onScroll={(e) => {
          if (gutter.current) gutter.current.scrollTop = e.currentTarget.scrollTop;
        }}
        onKeyDown={(e) => {
          // Tab indents; after Esc, Tab leaves the editor as usual (keyboard users are not trapped).
          if (e.key === "Escape") escaped.current = true;
          else if (e.key === "Tab" && !e.shiftKey && !escaped.current) {
            e.preventDefault();
            const t = e.currentTarget;
            const s = t.selectionStart;
            const next = value.slice(0, s) + "  " + value.slice(t.selectionEnd);
            onChange(next);
            requestAnimationFrame(() => t.setSelectionRange(s + 2, s + 2));
          } else escaped.current = false;
        }}
        className="flex-1 resize-none bg-transparent px-3 py-2 outline-none"
        style={{ height: rows * 20 + 16 }}
        {...rest}
      />
    </div>
  );
}
