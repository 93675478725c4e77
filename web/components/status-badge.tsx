import { Badge, type Tone } from "./ui/badge";
import { isReachable } from "@/lib/format";

const JOB_TONES: Record<string, Tone> = {
  queued: "gray",
  running: "blue",
  completed: "green",
  failed: "red",
  canceled: "amber",
  timed_out: "red",
  // A batch's own statuses beyond the jobs' ones.
  stopped: "amber",
};

export function JobStatusBadge({ status }: { status: string }) {
  return (
    <Badge tone={JOB_TONES[status] ?? "neutral"} data-status={status}>
      {status === "running" ? <span className="h-1.5 w-1.5 animate-pulse rounded-full bg-current" aria-hidden /> : null}
      {status.replace("_", " ")}
    </Badge>
  );
}

export function ServerStatusBadge({ status }: { status: string | null | undefined }) {
  const s = status ?? "unknown";
  const tone: Tone = isReachable(s) ? "green" : s === "unknown" ? "gray" : "red";
  return <Badge tone={tone}>{s.replace(/_/g, " ")}</Badge>;
}
