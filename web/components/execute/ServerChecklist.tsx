"use client";
// The Execute form's server checklist: every server as a checkbox row; above a few hundred rows
// only the visible ones are rendered, so a 5,000-server prefill from the Servers page opens fast.

import * as React from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import type { Server } from "@/lib/types";
import { ServerStatusBadge } from "@/components/status-badge";

/** Row height in pixels (fixed, so the virtual list needs no measuring). */
const ROW = 37;
/** Lists up to this many rows render whole; longer ones render only what is on screen. */
export const VIRTUALISE_ABOVE = 200;

function Row({ s, checked, onToggle, style }: { s: Server; checked: boolean; onToggle: (id: string, on: boolean) => void; style?: React.CSSProperties }) {
  return (
    <label style={style} className="flex cursor-pointer items-center gap-2 border-b px-3 py-2 text-sm last:border-0 hover:bg-muted/40">
      <input type="checkbox" className="h-4 w-4" checked={checked} onChange={(e) => onToggle(s.id, e.target.checked)} />
      <span className="font-medium">{s.name}</span>
      <span className="truncate text-xs text-muted-foreground">{s.hostname}</span>
      <span className="ml-auto">
        <ServerStatusBadge status={s.last_status} />
      </span>
    </label>
  );
}
const MemoRow = React.memo(Row);

export function ServerChecklist({ shown, selected, onToggle }: { shown: Server[]; selected: Set<string>; onToggle: (id: string, on: boolean) => void }) {
  const parent = React.useRef<HTMLDivElement>(null);
  const big = shown.length > VIRTUALISE_ABOVE;
  const v = useVirtualizer({
    count: big ? shown.length : 0,
    getScrollElement: () => parent.current,
    estimateSize: () => ROW,
    overscan: 12,
  });
  return (
    <div ref={parent} className="max-h-64 overflow-auto rounded-md border" role="group" aria-label="Servers" data-count={shown.length}>
      {big ? (
        <div style={{ height: v.getTotalSize(), position: "relative", contain: "layout paint" }}>
          {v.getVirtualItems().map((it) => {
            const s = shown[it.index];
            return (
              <MemoRow
                key={s.id}
                s={s}
                checked={selected.has(s.id)}
                onToggle={onToggle}
                style={{ position: "absolute", left: 0, top: 0, width: "100%", height: ROW, transform: `translateY(${it.start}px)` }}
              />
            );
          })}
        </div>
      ) : (
        shown.map((s) => <MemoRow key={s.id} s={s} checked={selected.has(s.id)} onToggle={onToggle} />)
      )}
    </div>
  );
}
