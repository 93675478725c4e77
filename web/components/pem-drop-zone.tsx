"use client";
import * as React from "react";
import { api } from "@/lib/api";
import type { PemFile } from "@/lib/types";
import { cn } from "@/lib/cn";

/** Drop (or pick) a private key file; it is uploaded to /pem-files and referenced by id. */
export function PemDropZone({ value, onUploaded }: { value: PemFile | null; onUploaded: (p: PemFile | null) => void }) {
  const [over, setOver] = React.useState(false);
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const input = React.useRef<HTMLInputElement>(null);

  async function upload(file: File | undefined) {
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      const form = new FormData();
      form.append("file", file, file.name);
      onUploaded(await api.upload<PemFile>("/api/v1/pem-files", form));
    } catch (e) {
      setError((e as Error).message);
      onUploaded(null);
    } finally {
      setBusy(false);
      if (input.current) input.current.value = "";
    }
  }

  return (
    <div>
      <div
        role="button"
        tabIndex={0}
        aria-label="PEM key file: drop a file here or press Enter to choose one"
        onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && input.current?.click()}
        onClick={() => input.current?.click()}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          upload(e.dataTransfer.files[0]);
        }}
        className={cn(
          "flex cursor-pointer flex-col items-center justify-center rounded-md border-2 border-dashed p-6 text-center text-sm transition-colors focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring",
          over ? "border-ring bg-accent" : "border-input hover:bg-muted/40",
        )}
      >
        {busy ? (
          <span>Uploading…</span>
        ) : value ? (
          <span data-testid="pem-uploaded">
            <span className="font-medium">{value.key_type}</span> key uploaded
            <span className="mt-1 block break-all font-mono text-xs text-muted-foreground">{value.fingerprint}</span>
          </span>
        ) : (
          <span>
            Drop a private key file (<code>.pem</code>, <code>id_ed25519</code>…) here, or click to choose
          </span>
        )}
      </div>
      <input ref={input} type="file" className="sr-only" aria-label="Private key file" data-testid="pem-input" onChange={(e) => upload(e.target.files?.[0])} />
      {error ? (
        <p role="alert" className="mt-1 text-xs text-destructive">
          {error}
        </p>
      ) : null}
    </div>
  );
}
