"use client";
// The server form's choice of a shared credential (by name) instead of the server's own inline
// secrets, and how a server's credential shows in the servers list and on its detail page.
import * as React from "react";
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { credentialsQuery } from "@/lib/queries";
import type { Credential, Server } from "@/lib/types";
import { CertBadge } from "../credentials/cert-badge";
import { Field, Select } from "../ui/input";

/** Shared credentials (not a server's private one), by name. */
function useShared(): { list: Credential[]; ready: boolean } {
  const q = useQuery(credentialsQuery());
  const list = React.useMemo(() => (q.data?.credentials ?? []).filter((c) => !c.owner_server_id).sort((a, b) => a.name.localeCompare(b.name)), [q.data]);
  return { list, ready: q.isSuccess };
}

/**
 * `value` is a credential id, or "" for the server's own secrets (the form's fields below it).
 * On edit it starts at the server's shared credential once the list has loaded (not for an
 * uploaded key file: that stays on its own tab).
 */
export function CredentialPicker({ server, value, onChange, error }: { server: Server | null; value: string; onChange: (id: string) => void; error?: string | null }) {
  const { list, ready } = useShared();
  const started = React.useRef(false);
  React.useEffect(() => {
    if (started.current || !ready) return;
    started.current = true;
    if (server?.credential_id && !server.pem_file_id && list.some((c) => c.id === server.credential_id)) onChange(server.credential_id);
  }, [ready, list, server, onChange]);
  const chosen = list.find((c) => c.id === value);
  // Leaving a shared credential for the server's own secrets needs those secrets: without any, the
  // API keeps the server on the shared one.
  const leaving = !value && server?.credential_id && !server.pem_file_id ? list.find((c) => c.id === server.credential_id) : undefined;
  return (
    <Field
      label="Log in with"
      htmlFor="srv-credential"
      error={error}
      hint={
        chosen ? (
          <span className="inline-flex flex-wrap items-center gap-2">
            {chosen.kind === "key" ? `${chosen.key_type ?? "key"} ${chosen.fingerprint ?? ""}` : "password"}
            {chosen.certificate ? <CertBadge cert={chosen.certificate} /> : null}
            {chosen.has_sudo_password ? "· has a sudo password" : ""}
          </span>
        ) : leaving ? (
          `Now on ${leaving.name}: type this server's own secrets below, or it stays on ${leaving.name}`
        ) : list.length ? (
          "Or pick a shared credential from the Credentials page"
        ) : (
          <>
            No shared credentials yet (<Link href="/credentials/" className="text-primary hover:underline">create one</Link>)
          </>
        )
      }
    >
      <Select id="srv-credential" value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">This server&apos;s own secrets (below)</option>
        {list.map((c) => (
          <option key={c.id} value={c.id}>
            {c.name} ({c.kind}
            {c.certificate ? " + certificate" : ""}, v{c.version})
          </option>
        ))}
      </Select>
    </Field>
  );
}

/** The credential a server logs in with: a shared one's name (linked), or its own secrets. */
export function ServerCredential({ server }: { server: Pick<Server, "credential_id" | "pem_file_id" | "auth_type"> }) {
  const { list } = useShared();
  // An uploaded key file's credential is shared too, but it shows as the key file it came from.
  const shared = server.credential_id && !server.pem_file_id ? list.find((c) => c.id === server.credential_id) : undefined;
  if (shared)
    return (
      <span className="inline-flex items-center gap-1" data-credential-name={shared.name}>
        <Link href="/credentials/" className="text-primary hover:underline" title={`Shared credential, version ${shared.version}`}>
          {shared.name}
        </Link>
        {shared.certificate ? <CertBadge cert={shared.certificate} /> : null}
      </span>
    );
  return <span>{server.pem_file_id ? "key file" : server.auth_type === "key" ? "own key" : "own password"}</span>;
}
