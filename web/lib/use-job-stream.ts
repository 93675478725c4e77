"use client";
import * as React from "react";
import { useQueryClient } from "@tanstack/react-query";
import { LogModel, type StreamName } from "./log-model";
import { streamEvents } from "./sse";
import type { ApiError } from "./api";
import { isFinal, type Job } from "./types";
import { queryKeys } from "./query-keys";

/**
 * Follows `GET /jobs/{id}/stream`: output chunks go into a LogModel, status
 * events into the job query's cache. The stream replays stored output first,
 * so this also loads the log of a finished job. Re-renders at most once a frame.
 */
export function useJobStream(id: string | null) {
  const qc = useQueryClient();
  const model = React.useRef(new LogModel()).current;
  const [version, setVersion] = React.useState(0);
  const [connected, setConnected] = React.useState(false);
  const [ended, setEnded] = React.useState(false);
  const [error, setError] = React.useState<ApiError | null>(null);

  React.useEffect(() => {
    if (!id) return;
    model.reset();
    setVersion(model.version);
    setEnded(false);
    setError(null);
    const ctl = new AbortController();
    let raf = 0;
    let lastWasFinal = false;
    const bump = () => {
      if (raf) return;
      raf = requestAnimationFrame(() => {
        raf = 0;
        setVersion(model.version);
      });
    };
    streamEvents(`/api/v1/jobs/${encodeURIComponent(id)}/stream`, {
      signal: ctl.signal,
      // The server's last event is always the final status: stop after it.
      done: () => lastWasFinal,
      onState: (c, err) => {
        setConnected(c);
        if (err) setError(err);
        else if (c) setError(null);
      },
      onEvent: (ev) => {
        if (ev.event === "output") {
          lastWasFinal = false;
          const d = JSON.parse(ev.data) as { stream: StreamName; data: string };
          model.append(d.stream, d.data);
          bump();
        } else if (ev.event === "status") {
          const job = JSON.parse(ev.data) as Job;
          lastWasFinal = isFinal(job.status);
          qc.setQueryData(queryKeys.job.one(id), job);
          if (lastWasFinal) {
            qc.invalidateQueries({ queryKey: queryKeys.jobs.all });
            setEnded(true);
          }
        }
      },
    }).finally(() => setConnected(false));
    return () => {
      ctl.abort();
      if (raf) cancelAnimationFrame(raf);
    };
  }, [id, qc, model]);

  return { model, version, connected, ended, error };
}
