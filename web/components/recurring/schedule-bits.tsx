"use client";
import * as React from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import { describeCron } from "@/lib/cron";
import { queryKeys } from "@/lib/query-keys";
import type { Schedule } from "@/lib/types";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";

/** The cron in words (cronstrue, in the browser), the API's own wording when cronstrue cannot say it. */
export function cronWords(s: Pick<Schedule, "cron" | "timezone" | "description">): string {
  const w = describeCron(s.cron, s.timezone);
  return w.ok ? w.text : s.description;
}

export function ScheduleState({ s }: { s: Schedule }) {
  return s.enabled ? <Badge tone="green">active</Badge> : <Badge tone="gray">paused</Badge>;
}

/** Pause or resume; the error (if any) goes to `onError`. */
export function PauseButton({ s, onError, size = "sm" }: { s: Schedule; onError: (e: unknown) => void; size?: "sm" | "default" }) {
  const qc = useQueryClient();
  const m = useMutation({
    mutationFn: () => api.post<Schedule>(`/api/v1/schedules/${encodeURIComponent(s.id)}/${s.enabled ? "pause" : "resume"}`),
    onSuccess: (next) => {
      qc.setQueryData(queryKeys.schedules.one(s.id), next);
      qc.invalidateQueries({ queryKey: queryKeys.schedules.all });
      onError(null);
    },
    onError,
  });
  return (
    <Button size={size} variant="outline" disabled={m.isPending} onClick={() => m.mutate()} aria-label={`${s.enabled ? "Pause" : "Resume"} ${s.name}`}>
      {s.enabled ? "Pause" : "Resume"}
    </Button>
  );
}
