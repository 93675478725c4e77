import { afterEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import * as React from "react";
import { CertBadge } from "@/components/credentials/cert-badge";
import { CredentialForm } from "@/components/credentials/credential-form";
import type { Credential } from "@/lib/types";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  sessionStorage.clear();
});

const NOW = Date.parse("2026-06-01T12:00:00Z");
const iso = (t: number) => new Date(t).toISOString();
const cert = (after: number, before: number) => ({ key_id: "k", principals: ["deploy"], signed_by: "SHA256:ca", status: "valid", valid_after: iso(after), valid_before: iso(before) });

const current: Credential = {
  id: "c1",
  name: "deploy",
  kind: "key",
  key_type: "ssh-ed25519",
  fingerprint: "SHA256:old",
  has_private_key: true,
  has_passphrase: false,
  has_password: false,
  has_sudo_password: true,
  certificate: cert(NOW - 3600_000, NOW + 30 * 86400_000),
  servers: 3,
  version: 4,
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
};

function withQuery(ui: React.ReactNode) {
  return render(<QueryClientProvider client={new QueryClient()}>{ui}</QueryClientProvider>);
}

describe("CertBadge", () => {
  it("flags expired red with a warning sign and soon-expiring amber", () => {
    render(
      <>
        <CertBadge cert={cert(NOW - 3 * 86400_000, NOW - 86400_000)} now={NOW} />
        <CertBadge cert={cert(NOW - 3600_000, NOW + 3 * 86400_000)} now={NOW} />
      </>,
    );
    expect(screen.getByText(/expired/)).toHaveAttribute("data-cert-state", "expired");
    expect(screen.getByText(/expired/)).toHaveTextContent("⚠ expired");
    expect(screen.getByText("expires in 3 d")).toHaveAttribute("data-cert-state", "expiring");
  });
});

describe("CredentialForm", () => {
  it("on rotate starts with every secret empty and sends only what was typed", async () => {
    sessionStorage.setItem("remora.token", "t");
    const fetchMock = vi.fn().mockResolvedValue(new Response(JSON.stringify({ ...current, version: 5 }), { status: 200, headers: { "content-type": "application/json" } }));
    vi.stubGlobal("fetch", fetchMock);
    const done = vi.fn();
    withQuery(<CredentialForm current={current} onCancel={() => {}} onDone={done} />);
    for (const l of ["Private key (OpenSSH or PEM)", "Key passphrase (if any)", "OpenSSH user certificate (optional)", "sudo password (for become jobs, optional)"]) expect(screen.getByLabelText(l)).toHaveValue("");
    expect(screen.getByText(/Saving makes version 5\. It applies to all 3 servers/)).toBeInTheDocument();
    fireEvent.click(screen.getByLabelText("Remove the sudo password"));
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Rotate" })));
    expect(done).toHaveBeenCalledWith(expect.objectContaining({ version: 5 }));
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe("/api/v1/credentials/c1");
    expect(init.method).toBe("PUT");
    // Nothing typed: the key, passphrase and certificate are kept (absent); the sudo password is removed ("").
    expect(JSON.parse(init.body)).toEqual({ sudo_password: "" });
  });

  it("on create refuses a bad name and a missing key before sending", async () => {
    const fetchMock = vi.fn();
    vi.stubGlobal("fetch", fetchMock);
    withQuery(<CredentialForm current={null} onCancel={() => {}} onDone={() => {}} />);
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "pem:1" } });
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Create credential" })));
    expect(screen.getByText("1–64 characters of letters, digits, -, _ or .")).toBeInTheDocument();
    expect(screen.getByText("Paste a private key or choose its file")).toBeInTheDocument();
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it("shows the API's 422 on its field", async () => {
    const fetchMock = vi.fn().mockResolvedValue(
      new Response(JSON.stringify({ error: { code: "invalid", message: "certificate is for key SHA256:x, not for this credential's key SHA256:y", field: "certificate" } }), {
        status: 422,
        headers: { "content-type": "application/json" },
      }),
    );
    vi.stubGlobal("fetch", fetchMock);
    withQuery(<CredentialForm current={null} onCancel={() => {}} onDone={() => {}} />);
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "deploy" } });
    fireEvent.change(screen.getByLabelText("Private key (OpenSSH or PEM)"), { target: { value: "-----BEGIN OPENSSH PRIVATE KEY-----" } });
    fireEvent.change(screen.getByLabelText("OpenSSH user certificate (optional)"), { target: { value: "ssh-ed25519-cert-v01@openssh.com AAAA" } });
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Create credential" })));
    expect(await screen.findByText(/certificate is for key SHA256:x/)).toHaveAttribute("id", "cred-cert-msg");
    expect(JSON.parse(fetchMock.mock.calls[0][1].body)).toEqual({ name: "deploy", kind: "key", private_key: "-----BEGIN OPENSSH PRIVATE KEY-----", certificate: "ssh-ed25519-cert-v01@openssh.com AAAA" });
  });
});
