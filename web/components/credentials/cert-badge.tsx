"use client";
import { certificateDisplay } from "@/lib/credentials";
import type { CertificateInfo } from "@/lib/types";
import { Badge } from "../ui/badge";

/** A user certificate's state: red when expired or not yet valid, amber when it expires soon. */
export function CertBadge({ cert, now }: { cert: CertificateInfo; now?: number }) {
  const d = certificateDisplay(cert, now);
  return (
    <Badge tone={d.tone} title={d.detail} data-cert-state={d.state}>
      {d.state === "expired" || d.state === "not_yet_valid" ? "⚠ " : ""}
      {d.label}
    </Badge>
  );
}
