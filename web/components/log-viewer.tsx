"use client";
import * as React from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { ansiLineToHtml } from "@/lib/ansi";
import type { LogModel } from "@/lib/log-model";
import { cn } from "@/lib/cn";

export type LogTab = "combined" | "stdout" | "stderr";
const ROW = 18;

/**
 * A virtualised log: only the rows in view are in the DOM, so 100k lines
 * scroll like 100. Fixed row height (no wrapping; long lines scroll sideways).
 */
export function LogViewer({
  model,
  version,
  tab,
  follow,
  onFollowChange,
  height = 480,
  emptyText = "No output yet.",
}: {
  model: LogModel;
  version: number;
  tab: LogTab;
  follow: boolean;
  onFollowChange: (f: boolean) => void;
  height?: number | string;
  emptyText?: string;
}) {
  const parent = React.useRef<HTMLDivElement>(null);
  const count = tab === "combined" ? model.combined.length : model[tab].length;
  const v = useVirtualizer({
    count,
    getScrollElement: () => parent.current,
    estimateSize: () => ROW,
    overscan: 20,
    // Rows on the first paint, before the scroller has been measured.
    initialRect: { width: 800, height: typeof height === "number" ? height : 480 },
  });

  React.useEffect(() => {
    if (follow && count > 0) v.scrollToIndex(count - 1, { align: "end" });
  }, [follow, count, version, tab, v]);

  // Scrolling up by hand stops following; reaching the bottom again resumes.
  const lastTop = React.useRef(0);
  const onScroll = () => {
    const el = parent.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < ROW * 2;
    if (el.scrollTop < lastTop.current - 4 && follow && !atBottom) onFollowChange(false);
    else if (atBottom && !follow && el.scrollTop > lastTop.current) onFollowChange(true);
    lastTop.current = el.scrollTop;
  };

  const digits = String(count).length;
  return (
    <div
      ref={parent}
      onScroll={onScroll}
      tabIndex={0}
      role="log"
      aria-label={`${tab} output`}
      aria-live="off"
      data-testid="log-viewer"
      data-lines={count}
      className="overflow-auto rounded-md border bg-zinc-950 font-mono text-[12.5px] leading-[18px] text-zinc-100 focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring"
      style={{ height }}
    >
      {count === 0 ? (
        <p className="p-4 text-zinc-400">{emptyText}</p>
      ) : (
        <div style={{ height: v.getTotalSize(), width: `max(100%, ${model.maxLen + digits + 4}ch)`, position: "relative" }}>
          {v.getVirtualItems().map((row) => {
            const line = tab === "combined" ? model.combined[row.index] : { stream: tab, text: model[tab][row.index] };
            return (
              <div
                key={row.key}
                className={cn("log-line absolute left-0 flex w-full", line.stream === "stderr" && "bg-red-500/10")}
                style={{ height: ROW, transform: `translateY(${row.start}px)` }}
                data-stream={line.stream}
              >
                <span className="sticky left-0 select-none bg-zinc-950 pl-2 pr-3 text-right text-zinc-500" style={{ minWidth: `${digits + 2}ch` }}>
                  {row.index + 1}
                </span>
                <span className={cn(line.stream === "stderr" && "text-red-300")} dangerouslySetInnerHTML={{ __html: ansiLineToHtml(line.text) }} />
              </div>
            );
          })}
        </div>
      )}
    </div>
  );
}
