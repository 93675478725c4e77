"use client";
// A batch's hosts as a virtualised list: only the rows in view are in the DOM
// (fixed height, memoised, layout and paint contained), and only the grid pages
// (BATCH_PAGE hosts) under them are fetched and, while the batch runs, refetched.
import * as React from "react";
import { useQueries, useQuery } from "@tanstack/react-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { BATCH_PAGE, batchPageQuery } from "@/lib/queries";
import { pagesFor } from "@/lib/fleet";
import type { BatchCell } from "@/lib/types";
import { ErrorState } from "@/components/states";
import { JobStatusBadge } from "@/components/status-badge";

const ROW = 36;
/** Rows kept beyond the viewport on either side. */
const OVERSCAN = 8;
/** The rows in the DOM: a fixed window of `slots` consecutive hosts (the viewport plus
 * OVERSCAN either side), each row keyed by `index % slots`. A host scrolled out and the one
 * scrolled in have the same key, so a scroll step moves and relabels the same elements and
 * creates none (a window of varying size would mount and unmount rows at its ends). */
const slotsFor = (height: number) => Math.ceil(height / ROW) + 2 * OVERSCAN + 1;
const COLS = "grid-cols-[minmax(10rem,2fr)_7rem_5rem_minmax(8rem,3fr)]";

/** One row. Memoised on its cell: React Query keeps an unchanged cell the same object across
 * refetches, so a poll re-renders only the hosts whose status changed. */
const HostRow = React.memo(function HostRow({ index, count, cell: c, onOpen }: { index: number; count: number; cell: BatchCell | undefined; onOpen: (cell: BatchCell) => void }) {
  return (
    <div
      role="listitem"
      aria-posinset={index + 1}
      aria-setsize={count}
      className="absolute left-0 top-0 w-full border-b bg-background"
      style={{ height: ROW, transform: `translateY(${index * ROW}px)`, contain: "strict" }}
      data-index={index}
    >
      {c ? (
        <button
          type="button"
          onClick={() => onOpen(c)}
          data-host={c.server_name ?? c.server_id}
          aria-label={`Output of ${c.server_name ?? c.server_id}`}
          className={`grid h-full w-full ${COLS} items-center gap-3 px-3 text-left text-sm hover:bg-muted/40 focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-inset focus-visible:ring-ring`}
        >
          <span className="truncate font-medium">{c.server_name ?? c.server_id.slice(0, 8)}</span>
          <span>
            <JobStatusBadge status={c.status} />
          </span>
          <span className="font-mono text-xs">{c.exit_code ?? "—"}</span>
          <span className="truncate text-xs text-destructive" title={c.error ?? undefined}>
            {c.error ?? ""}
          </span>
        </button>
      ) : (
        <div className="flex h-full items-center px-3" aria-label="Loading">
          <span className="h-3 w-40 rounded bg-muted" />
        </div>
      )}
    </div>
  );
});

/** Memoised: the page's counts poll re-renders the header, not the grid. */
export const HostGrid = React.memo(function HostGrid({
  batchId,
  status,
  search,
  live,
  onOpen,
  onReady,
  height = 520,
}: {
  batchId: string;
  status: string;
  search: string;
  live: boolean;
  onOpen: (cell: BatchCell) => void;
  /** Called once, when the first rows are on screen. */
  onReady?: () => void;
  height?: number;
}) {
  const parent = React.useRef<HTMLDivElement>(null);
  // Page 0 carries the count; the other pages are the ones under the rows in view.
  const first = useQuery(batchPageQuery(batchId, status, search, 0, live));
  const count = first.data?.servers_total ?? 0;

  const v = useVirtualizer({
    count,
    getScrollElement: () => parent.current,
    estimateSize: () => ROW,
    overscan: 0,
    initialRect: { width: 1000, height },
  });
  const items = v.getVirtualItems();
  // The window: `slots` hosts from OVERSCAN above the first one in view, shifted up at the end.
  const slots = Math.min(count, slotsFor(height));
  const lo = Math.max(0, Math.min((items[0]?.index ?? 0) - OVERSCAN, count - slots));
  const hi = Math.max(0, lo + slots - 1);
  // A quarter page of look-ahead either side, so the next page is there before it scrolls into
  // view. Derived while rendering (no state): a scroll re-renders once, and the page list only
  // changes when a page boundary comes near.
  const wanted = pagesFor(Math.max(0, lo - BATCH_PAGE / 4), Math.max(0, Math.min(count - 1, hi + BATCH_PAGE / 4)), BATCH_PAGE)
    .filter((p) => p !== 0)
    .join(",");
  const pages = React.useMemo(() => (wanted ? wanted.split(",").map(Number) : []), [wanted]);
  const rest = useQueries({ queries: pages.map((p) => batchPageQuery(batchId, status, search, p, live)) });
  const byPage = new Map<number, { data?: { servers: BatchCell[] } }>([[0, first], ...pages.map((p, i) => [p, rest[i]] as const)]);
  // Back to the top when the filter changes.
  React.useEffect(() => {
    v.scrollToOffset(0);
  }, [status, search, v]);

  // Navigation → first rows on screen, for the e2e benchmark.
  const marked = React.useRef(false);
  const shown = count > 0 && !!first.data;
  React.useEffect(() => {
    if (shown && !marked.current) {
      marked.current = true;
      performance.mark("remora:batch-grid");
      onReady?.();
    }
  }, [shown, onReady]);

  if (first.isError) return <ErrorState error={first.error} onRetry={() => first.refetch()} title="Could not load the hosts" />;
  const cell = (i: number): BatchCell | undefined => byPage.get(Math.floor(i / BATCH_PAGE))?.data?.servers[i % BATCH_PAGE];

  return (
    <div className="rounded-md border">
      <div className={`grid ${COLS} gap-3 border-b bg-muted/40 px-3 py-2 text-xs font-medium text-muted-foreground`} aria-hidden>
        <span>Host</span>
        <span>Status</span>
        <span>Exit</span>
        <span>Error</span>
      </div>
      <div
        ref={parent}
        className="overflow-auto bg-background"
        style={{ height, contain: "strict", overscrollBehavior: "contain" }}
        role="list"
        aria-label="Servers in this batch"
        data-testid="host-grid"
        data-count={count}
        data-loaded={first.data ? "true" : "false"}
      >
        {first.data && count === 0 ? <p className="p-4 text-sm text-muted-foreground">No host matches.</p> : null}
        <div style={{ height: v.getTotalSize(), position: "relative", contain: "layout paint" }}>
          {Array.from({ length: slots }, (_, k) => {
            const i = lo + k;
            // Keyed by slot (see slotsFor): the elements stay, their host changes.
            return <HostRow key={i % slots} index={i} count={count} cell={cell(i)} onOpen={onOpen} />;
          })}
        </div>
      </div>
    </div>
  );
});
