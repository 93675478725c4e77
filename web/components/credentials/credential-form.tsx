"use client";
// Create or rotate a credential: a key (pasted or read from a file, its passphrase, an optional
// OpenSSH user certificate) or a password, plus an optional sudo password. Secrets are write-only:
// on rotate every secret field starts empty and an empty field keeps what is stored.
import * as React from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "@/lib/api";
import { nameError } from "@/lib/credentials";
import { queryKeys } from "@/lib/query-keys";
import type { Credential, CredentialBody } from "@/lib/types";
import { ErrorState } from "../states";
import { Button } from "../ui/button";
import { Field, Input, Textarea } from "../ui/input";
import { Tabs } from "../ui/tabs";

type Kind = "key" | "password";

/** Reads a chosen file as text into a textarea's state. */
function FileText({ id, label, onText }: { id: string; label: string; onText: (t: string) => void }) {
  return (
    <label htmlFor={id} className="inline-flex cursor-pointer items-center gap-2 text-xs text-primary hover:underline">
      {label}
      <input
        id={id}
        type="file"
        className="sr-only"
        onChange={async (e) => {
          const f = e.target.files?.[0];
          if (f) onText(await f.text());
          e.target.value = "";
        }}
      />
    </label>
  );
}

export function CredentialForm({ current, onCancel, onDone }: { current: Credential | null; onCancel: () => void; onDone: (c: Credential) => void }) {
  const qc = useQueryClient();
  const rotating = !!current;
  const [name, setName] = React.useState(current?.name ?? "");
  const [kind, setKind] = React.useState<Kind>(current?.kind === "password" ? "password" : "key");
  const [key, setKey] = React.useState("");
  const [passphrase, setPassphrase] = React.useState("");
  const [certificate, setCertificate] = React.useState("");
  const [dropCert, setDropCert] = React.useState(false);
  const [password, setPassword] = React.useState("");
  const [sudo, setSudo] = React.useState("");
  const [dropSudo, setDropSudo] = React.useState(false);
  const [touched, setTouched] = React.useState(false);

  const localName = current?.owner_server_id ? null : nameError(name);
  const missing = !rotating && (kind === "key" ? !key.trim() : !password);
  const save = useMutation({
    mutationFn: () => {
      const body: CredentialBody = {};
      if (!rotating || name.trim() !== current!.name) body.name = name.trim();
      if (!rotating || kind !== current!.kind) body.kind = kind;
      if (kind === "key") {
        if (key.trim()) body.private_key = key;
        if (passphrase) body.passphrase = passphrase;
        if (dropCert) body.certificate = "";
        else if (certificate.trim()) body.certificate = certificate.trim();
      } else if (password) body.password = password;
      if (dropSudo) body.sudo_password = "";
      else if (sudo) body.sudo_password = sudo;
      return rotating ? api.put<Credential>(`/api/v1/credentials/${encodeURIComponent(current!.id)}`, body) : api.post<Credential>("/api/v1/credentials", body);
    },
    onSuccess: (c) => {
      qc.invalidateQueries({ queryKey: queryKeys.credentials.all });
      qc.invalidateQueries({ queryKey: queryKeys.servers });
      onDone(c);
    },
  });
  const err = save.error instanceof ApiError ? save.error : null;
  const fe = (f: string) => (err?.field === f ? err.message : null);
  const shown = ["name", "kind", "private_key", "passphrase", "certificate", "password", "sudo_password"];
  const keep = rotating ? "Leave empty to keep the stored one" : undefined;

  return (
    <form
      className="grid gap-4"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setTouched(true);
        if (localName || missing) return;
        save.mutate();
      }}
    >
      <Field label="Name" htmlFor="cred-name" error={(touched && localName) || fe("name")} hint={current?.owner_server_id ? "A server's own credential: it follows the server's name" : "Letters, digits, -, _ or ."}>
        <Input id="cred-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="deploy-key" disabled={!!current?.owner_server_id} />
      </Field>
      <div className="grid gap-2">
        <span className="text-sm font-medium">Kind</span>
        <Tabs
          label="Credential kind"
          value={kind}
          onChange={setKind}
          items={[
            { value: "key", label: "Private key" },
            { value: "password", label: "Password" },
          ]}
        />
        {rotating && kind !== current!.kind ? <p className="text-xs text-amber-700 dark:text-amber-300">Changing the kind replaces the stored secret: give the new one.</p> : null}
      </div>
      {kind === "key" ? (
        <>
          <Field
            label="Private key (OpenSSH or PEM)"
            htmlFor="cred-key"
            error={(touched && missing ? "Paste a private key or choose its file" : null) || fe("private_key")}
            hint={rotating ? "Leave empty to keep the stored key (a new key drops the old certificate)" : "Write-only: it is encrypted and never shown again"}
          >
            <Textarea id="cred-key" rows={5} className="font-mono text-xs" value={key} onChange={(e) => setKey(e.target.value)} placeholder="-----BEGIN OPENSSH PRIVATE KEY-----" />
          </Field>
          <FileText id="cred-key-file" label="…or read the key from a file" onText={setKey} />
          <Field label="Key passphrase (if any)" htmlFor="cred-passphrase" error={fe("passphrase")} hint={keep}>
            <Input id="cred-passphrase" type="password" autoComplete="off" value={passphrase} onChange={(e) => setPassphrase(e.target.value)} />
          </Field>
          <Field
            label="OpenSSH user certificate (optional)"
            htmlFor="cred-cert"
            error={fe("certificate")}
            hint={rotating && current?.certificate ? "Leave empty to keep the current certificate" : "The id_…-cert.pub line signed by your CA for this key"}
          >
            <Textarea id="cred-cert" rows={3} className="font-mono text-xs" value={certificate} disabled={dropCert} onChange={(e) => setCertificate(e.target.value)} placeholder="ssh-ed25519-cert-v01@openssh.com AAAA…" />
          </Field>
          <div className="flex flex-wrap items-center gap-4">
            <FileText id="cred-cert-file" label="…or read the certificate from a file" onText={setCertificate} />
            {rotating && current?.certificate ? (
              <label className="flex items-center gap-2 text-xs">
                <input type="checkbox" checked={dropCert} onChange={(e) => setDropCert(e.target.checked)} /> Remove the certificate
              </label>
            ) : null}
          </div>
        </>
      ) : (
        <Field label="Password" htmlFor="cred-password" error={(touched && missing ? "Give the login password" : null) || fe("password")} hint={keep ?? "Write-only"}>
          <Input id="cred-password" type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
      )}
      <Field label="sudo password (for become jobs, optional)" htmlFor="cred-sudo" error={fe("sudo_password")} hint={rotating && current?.has_sudo_password ? "One is stored; leave empty to keep it" : "Write-only"}>
        <Input id="cred-sudo" type="password" autoComplete="new-password" value={sudo} disabled={dropSudo} onChange={(e) => setSudo(e.target.value)} />
      </Field>
      {rotating && current?.has_sudo_password ? (
        <label className="flex items-center gap-2 text-xs">
          <input type="checkbox" checked={dropSudo} onChange={(e) => setDropSudo(e.target.checked)} /> Remove the sudo password
        </label>
      ) : null}
      {rotating ? (
        <p className="rounded-md border bg-muted/40 p-2 text-xs text-muted-foreground">
          Saving makes version {current!.version + 1}. It applies to {current!.servers === 1 ? "the 1 server" : `all ${current!.servers} servers`} using this credential at each one&apos;s next connection; running jobs keep the connection they have.
        </p>
      ) : null}
      {err && !shown.includes(err.field ?? "") ? <ErrorState error={err} title={rotating ? "Not rotated" : "Not created"} /> : null}
      {save.error && !err ? <ErrorState error={save.error} /> : null}
      <div className="flex justify-end gap-2">
        <Button variant="outline" onClick={onCancel}>
          Cancel
        </Button>
        <Button type="submit" disabled={save.isPending}>
          {save.isPending ? "Saving…" : rotating ? "Rotate" : "Create credential"}
        </Button>
      </div>
    </form>
  );
}
