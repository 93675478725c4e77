import * as React from "react";
import type { ThroughputPoint } from "@/lib/types";

/**
 * Jobs finished per minute over the last hour as stacked bars (completed,
 * failed or timed out, canceled). Plain SVG: no chart library for one small chart.
 */
export function ThroughputChart({ points, height = 160 }: { points: ThroughputPoint[]; height?: number }) {
  const width = 600;
  const pad = { l: 28, r: 4, t: 8, b: 18 };
  const max = Math.max(1, ...points.map((p) => Math.max(p.total, p.completed + p.failed + (p.canceled ?? 0))));
  const n = Math.max(points.length, 1);
  const bw = (width - pad.l - pad.r) / n;
  const y = (v: number) => pad.t + (height - pad.t - pad.b) * (1 - v / max);
  const total = points.reduce((a, p) => a + p.completed + p.failed + (p.canceled ?? 0), 0);
  const label = `Jobs finished per minute over the last hour: ${total} in total, at most ${max} in one minute`;
  const ticks = [0, Math.ceil(max / 2), max];
  const time = (s: string) => new Date(s).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return (
    <figure>
      <svg viewBox={`0 0 ${width} ${height}`} className="h-40 w-full" role="img" aria-label={label} preserveAspectRatio="none">
        {ticks.map((t) => (
          <g key={t}>
            <line x1={pad.l} x2={width - pad.r} y1={y(t)} y2={y(t)} className="stroke-border" strokeWidth={1} />
            <text x={pad.l - 4} y={y(t) + 3} textAnchor="end" className="fill-muted-foreground" fontSize={9}>
              {t}
            </text>
          </g>
        ))}
        {points.map((p, i) => {
          const x = pad.l + i * bw + 1;
          const w = Math.max(bw - 2, 1);
          const hc = y(0) - y(p.completed);
          const hf = y(0) - y(p.failed);
          const hx = y(0) - y(p.canceled ?? 0);
          return (
            <g key={p.minute}>
              <title>{`${time(p.minute)}: ${p.completed} completed, ${p.failed} failed or timed out, ${p.canceled ?? 0} canceled`}</title>
              <rect x={x} y={y(p.completed)} width={w} height={hc} className="fill-emerald-500" />
              <rect x={x} y={y(p.completed) - hf} width={w} height={hf} className="fill-red-500" />
              <rect x={x} y={y(p.completed) - hf - hx} width={w} height={hx} className="fill-amber-400" />
            </g>
          );
        })}
        {points.length > 0 ? (
          <>
            <text x={pad.l} y={height - 4} className="fill-muted-foreground" fontSize={9}>
              {time(points[0].minute)}
            </text>
            <text x={width - pad.r} y={height - 4} textAnchor="end" className="fill-muted-foreground" fontSize={9}>
              {time(points[points.length - 1].minute)}
            </text>
          </>
        ) : null}
      </svg>
      <figcaption className="mt-1 flex gap-4 text-xs text-muted-foreground">
        <span className="flex items-center gap-1">
          <span className="h-2 w-2 rounded-sm bg-emerald-500" aria-hidden /> completed
        </span>
        <span className="flex items-center gap-1">
          <span className="h-2 w-2 rounded-sm bg-red-500" aria-hidden /> failed / timed out
        </span>
        <span className="flex items-center gap-1">
          <span className="h-2 w-2 rounded-sm bg-amber-400" aria-hidden /> canceled
        </span>
      </figcaption>
    </figure>
  );
}
