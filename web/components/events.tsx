"use client";
import * as React from "react";
import { useQueryClient } from "@tanstack/react-query";
import { streamEvents } from "@/lib/sse";
import { queryKeys } from "@/lib/query-keys";

/** Whether the live `/events` stream is connected (pages poll when it is not). */
const Ctx = React.createContext(false);
export const useLive = () => React.useContext(Ctx);

/**
 * Subscribes to `GET /api/v1/events` (`event: job`) and invalidates the
 * queries a job change affects, at most a few times a second.
 */
export function EventsProvider({ children }: { children: React.ReactNode }) {
  const qc = useQueryClient();
  const [live, setLive] = React.useState(false);
  React.useEffect(() => {
    const ctl = new AbortController();
    const pending = new Set<string>();
    let timer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      timer = null;
      qc.invalidateQueries({ queryKey: queryKeys.jobs.all });
      qc.invalidateQueries({ queryKey: queryKeys.batch.all });
      qc.invalidateQueries({ queryKey: queryKeys.system });
      for (const id of pending) qc.invalidateQueries({ queryKey: queryKeys.job.one(id) });
      pending.clear();
    };
    streamEvents("/api/v1/events", {
      signal: ctl.signal,
      onState: (c) => setLive(c),
      onEvent: (ev) => {
        if (ev.event === "lagged") {
          // The server dropped events for us: refetch everything job-related.
          timer ??= setTimeout(flush, 300);
          qc.invalidateQueries({ queryKey: queryKeys.job.all });
          return;
        }
        if (ev.event !== "job") return;
        try {
          const d = JSON.parse(ev.data) as { job_id?: string };
          if (d.job_id) pending.add(d.job_id);
        } catch {
          /* ignore a malformed event */
        }
        timer ??= setTimeout(flush, 300);
      },
    });
    return () => {
      ctl.abort();
      if (timer) clearTimeout(timer);
    };
  }, [qc]);
  return <Ctx.Provider value={live}>{children}</Ctx.Provider>;
}
