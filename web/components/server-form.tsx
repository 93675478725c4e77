"use client";
import * as React from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, ApiError } from "@/lib/api";
import type { PemFile, Server } from "@/lib/types";
import { queryKeys } from "@/lib/query-keys";
import { PemDropZone } from "./pem-drop-zone";
import { JumpHostPicker } from "./servers/JumpHostPicker";
import { CredentialPicker } from "./servers/CredentialPicker";
import { ErrorState } from "./states";
import { Button } from "./ui/button";
import { Dialog } from "./ui/dialog";
import { Field, Input, Textarea } from "./ui/input";
import { Tabs } from "./ui/tabs";

type Auth = "password" | "key" | "pem";

/** Create (server = null) or edit a server; secrets left empty on edit stay as they are. */
export function ServerFormDialog({ server, onClose, onSaved }: { server: Server | null; onClose: () => void; onSaved?: (s: Server) => void }) {
  const qc = useQueryClient();
  const editing = !!server;
  const [name, setName] = React.useState(server?.name ?? "");
  const [hostname, setHostname] = React.useState(server?.hostname ?? "");
  const [port, setPort] = React.useState(String(server?.port ?? 22));
  const [user, setUser] = React.useState(server?.user ?? "");
  const [tags, setTags] = React.useState(server?.tags.join(", ") ?? "");
  const [maxConc, setMaxConc] = React.useState(String(server?.max_concurrency ?? 10));
  const [active, setActive] = React.useState(server?.is_active ?? true);
  const [auth, setAuth] = React.useState<Auth>(server ? (server.pem_file_id ? "pem" : server.auth_type === "key" ? "key" : "password") : "pem");
  const [password, setPassword] = React.useState("");
  const [key, setKey] = React.useState("");
  const [passphrase, setPassphrase] = React.useState("");
  const [sudoPassword, setSudoPassword] = React.useState("");
  const [pem, setPem] = React.useState<PemFile | null>(null);
  const [jump, setJump] = React.useState(server?.jump_server_id ?? "");
  const [credential, setCredential] = React.useState(""); // a shared credential's id; "" = inline secrets

  const save = useMutation({
    mutationFn: async () => {
      const body: Record<string, unknown> = {
        name: name.trim(),
        hostname: hostname.trim(),
        port: Number(port),
        user: user.trim(),
        tags: tags
          .split(/[,\s]+/)
          .map((t) => t.trim())
          .filter(Boolean),
        max_concurrency: Number(maxConc),
      };
      if (editing) body.is_active = active;
      if (jump !== (server?.jump_server_id ?? "")) body.jump_server_id = jump; // "" clears it
      // Write-only: sent only when typed; never shown (the server returns has_sudo_password).
      // A shared credential excludes the inline secrets (the API's 422 otherwise).
      if (credential) body.credential_id = credential;
      else {
        if (sudoPassword) body.sudo_password = sudoPassword;
        if (auth === "password" && password) Object.assign(body, { auth_type: "password", password });
        if (auth === "key" && key.trim()) Object.assign(body, { auth_type: "key", private_key: key, ...(passphrase ? { passphrase } : {}) });
        if (auth === "pem" && pem) Object.assign(body, { auth_type: "key", pem_file_id: pem.id, ...(passphrase ? { passphrase } : {}) });
      }
      return editing ? api.put<Server>(`/api/v1/servers/${server!.id}`, body) : api.post<Server>("/api/v1/servers", body);
    },
    onSuccess: (s) => {
      qc.invalidateQueries({ queryKey: queryKeys.servers });
      onSaved?.(s);
      onClose();
    },
  });
  const err = save.error instanceof ApiError ? save.error : null;
  const fe = (f: string) => (err?.field === f ? err.message : null);
  // Fields whose errors show beside their control; anything else shows below the form.
  const shown = ["jump_server_id", "credential_id", "sudo_password", "name", "user", "hostname", "port", "tags", "max_concurrency", ...(auth === "password" ? ["password"] : auth === "key" ? ["private_key", "passphrase"] : ["pem_file_id", "passphrase"])];

  return (
    <Dialog open onClose={onClose} title={editing ? `Edit ${server!.name}` : "Add a server"} className="max-w-xl">
      <form
        className="grid gap-4"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <div className="grid grid-cols-2 gap-4">
          <Field label="Name" htmlFor="srv-name" error={fe("name")} className="col-span-2 sm:col-span-1">
            <Input id="srv-name" required value={name} onChange={(e) => setName(e.target.value)} placeholder="web-1" />
          </Field>
          <Field label="User" htmlFor="srv-user" error={fe("user")} className="col-span-2 sm:col-span-1">
            <Input id="srv-user" required value={user} onChange={(e) => setUser(e.target.value)} placeholder="deploy" />
          </Field>
          <Field label="Hostname or IP" htmlFor="srv-host" error={fe("hostname")} className="col-span-2 sm:col-span-1">
            <Input id="srv-host" required value={hostname} onChange={(e) => setHostname(e.target.value)} placeholder="10.0.0.5" />
          </Field>
          <Field label="Port" htmlFor="srv-port" error={fe("port")} className="col-span-2 sm:col-span-1">
            <Input id="srv-port" type="number" min={1} max={65535} value={port} onChange={(e) => setPort(e.target.value)} />
          </Field>
        </div>
        <JumpHostPicker server={server} name={name} value={jump} onChange={setJump} error={fe("jump_server_id")} />
        <fieldset className="grid gap-3">
          <legend className="mb-2 text-sm font-medium">Authentication{editing && !credential ? " (leave empty to keep the current secret)" : ""}</legend>
          <CredentialPicker server={server} value={credential} onChange={setCredential} error={fe("credential_id")} />
          {credential ? null : (<>
          <Tabs
            label="Authentication method"
            value={auth}
            onChange={setAuth}
            items={[
              { value: "pem", label: "Upload key file" },
              { value: "key", label: "Paste key" },
              { value: "password", label: "Password" },
            ]}
          />
          {auth === "password" ? (
            <Field label="Password" htmlFor="srv-password" error={fe("password")}>
              <Input id="srv-password" type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
            </Field>
          ) : auth === "key" ? (
            <Field label="Private key (PEM or OpenSSH)" htmlFor="srv-key" error={fe("private_key")}>
              <Textarea id="srv-key" rows={5} className="font-mono text-xs" value={key} onChange={(e) => setKey(e.target.value)} placeholder="-----BEGIN OPENSSH PRIVATE KEY-----" />
            </Field>
          ) : (
            <div className="grid gap-1.5">
              <span className="text-sm font-medium">Key file</span>
              <PemDropZone value={pem} onUploaded={setPem} />
              {fe("pem_file_id") ? <p className="text-xs text-destructive">{fe("pem_file_id")}</p> : null}
            </div>
          )}
          {auth !== "password" ? (
            <Field label="Key passphrase (if any)" htmlFor="srv-passphrase" error={fe("passphrase")}>
              <Input id="srv-passphrase" type="password" autoComplete="off" value={passphrase} onChange={(e) => setPassphrase(e.target.value)} />
            </Field>
          ) : null}
          <Field
            label="sudo password (for become jobs)"
            htmlFor="srv-sudo-password"
            hint={server?.has_sudo_password ? "One is stored; type a new one to replace it" : "Optional; write-only"}
            error={fe("sudo_password")}
          >
            <Input id="srv-sudo-password" type="password" autoComplete="new-password" value={sudoPassword} onChange={(e) => setSudoPassword(e.target.value)} />
          </Field>
          </>)}
        </fieldset>
        <div className="grid grid-cols-2 gap-4">
          <Field label="Tags" htmlFor="srv-tags" hint="Comma separated, e.g. web, eu" error={fe("tags")}>
            <Input id="srv-tags" value={tags} onChange={(e) => setTags(e.target.value)} />
          </Field>
          <Field label="Max concurrent jobs" htmlFor="srv-conc" error={fe("max_concurrency")}>
            <Input id="srv-conc" type="number" min={1} max={1000} value={maxConc} onChange={(e) => setMaxConc(e.target.value)} />
          </Field>
        </div>
        {editing ? (
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" className="h-4 w-4" checked={active} onChange={(e) => setActive(e.target.checked)} /> Active (receives jobs)
          </label>
        ) : null}
        {err && !shown.includes(err.field ?? "") ? <ErrorState error={err} title="The server was not saved" /> : null}
        {save.error && !err ? <ErrorState error={save.error} /> : null}
        <div className="flex justify-end gap-2">
          <Button variant="outline" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" disabled={save.isPending}>
            {save.isPending ? "Saving…" : editing ? "Save" : "Add server"}
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
