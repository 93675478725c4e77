import { cn } from "@/lib/cn";
export function Skeleton({ className }: { className?: string }) {
  return <div aria-hidden data-skeleton className={cn("animate-pulse rounded-md bg-muted", className)} />;
}
