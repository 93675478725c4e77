"use client";
// A batch's output grouped across hosts (as `dshbak -c` does): each group of
// identical stdout, stderr and exit code once, with its hosts; long host lists
// and long output collapsed until asked for. Also the exit-code histogram.
import * as React from "react";
import { exitBars, groupCollapses, groupView } from "@/lib/fleet";
import type { BatchGroups } from "@/lib/types";
import { formatBytes } from "@/lib/format";
import { Card } from "@/components/ui/card";
import { Button } from "@/components/ui/button";
import { cn } from "@/lib/cn";

export function ExitHistogram({ hist }: { hist: Record<string, number> }) {
  const bars = exitBars(hist);
  if (bars.length === 0) return <p className="text-sm text-muted-foreground">No host has finished yet.</p>;
  return (
    <ul className="grid gap-1.5" aria-label="Exit codes">
      {bars.map((b) => (
        <li key={b.code} className="grid grid-cols-[7rem_1fr_4rem] items-center gap-2 text-xs" data-exit={b.code}>
          <span className="font-mono">{b.label}</span>
          <span className="h-3 rounded bg-muted">
            <span className={cn("block h-3 rounded", b.code === "0" ? "bg-emerald-500" : b.code === "none" ? "bg-zinc-400" : "bg-red-500")} style={{ width: `${Math.max(2, b.width * 100)}%` }} />
          </span>
          <span className="text-right tabular-nums">{b.count.toLocaleString("en")}</span>
        </li>
      ))}
    </ul>
  );
}

function Group({ g, total }: { g: BatchGroups["groups"][number]; total: number }) {
  const [open, setOpen] = React.useState(false);
  const v = groupView(g, total, open);
  const collapses = groupCollapses(groupView(g, total, false));
  return (
    <Card className="p-4" data-testid="output-group" data-count={g.count}>
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h3 className="font-medium">{v.title}</h3>
        <span className="text-xs text-muted-foreground">
          {(v.share * 100).toFixed(v.share < 0.01 ? 2 : 0)}% · stdout {formatBytes(g.stdout_bytes)} · stderr {formatBytes(g.stderr_bytes)}
        </span>
      </div>
      <p className={cn("mt-2 break-words text-xs text-muted-foreground", open && v.hosts.length > 200 && "max-h-48 overflow-auto")} aria-label="Hosts in this group">
        {v.hosts.join(", ")}
        {v.hiddenHosts > 0 ? ` … and ${v.hiddenHosts.toLocaleString("en")} more` : ""}
      </p>
      {v.empty ? (
        <p className="mt-2 text-xs italic text-muted-foreground">No output.</p>
      ) : (
        <>
          {v.stdout ? <pre className="mt-2 max-h-96 overflow-auto rounded bg-muted p-2 font-mono text-xs">{v.stdout}</pre> : null}
          {v.stderr ? <pre className="mt-2 max-h-96 overflow-auto rounded bg-red-500/10 p-2 font-mono text-xs text-red-700 dark:text-red-300">{v.stderr}</pre> : null}
        </>
      )}
      {collapses ? (
        <Button size="sm" variant="ghost" className="mt-2" onClick={() => setOpen((o) => !o)} aria-expanded={open}>
          {open ? "Collapse" : `Show all${v.hiddenHosts ? ` ${g.count.toLocaleString("en")} hosts` : ""}${v.hiddenLines ? ` and ${v.hiddenLines} more lines` : ""}`}
        </Button>
      ) : null}
    </Card>
  );
}

export function OutputGroups({ data }: { data: BatchGroups }) {
  if (data.groups.length === 0) return <p className="text-sm text-muted-foreground">No host in this batch.</p>;
  return (
    <div className="grid gap-3" aria-label="Output groups">
      <p className="text-sm text-muted-foreground">
        {data.groups.length.toLocaleString("en")} distinct output{data.groups.length === 1 ? "" : "s"} across {data.total.toLocaleString("en")} hosts (stdout, stderr and exit code compared byte for byte).
      </p>
      {data.groups.map((g) => (
        <Group key={g.hash} g={g} total={data.total} />
      ))}
    </div>
  );
}
