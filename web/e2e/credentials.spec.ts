import { test, expect, type APIRequestContext, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

// Credentials and trusted CAs in the dashboard against the real stack (scripts/e2e.sh): a key
// credential with an OpenSSH user certificate made here with ssh-keygen by a throwaway CA that the
// harness's real sshd is told to trust (a `cert-authority` line in the user's authorized_keys; the
// keys themselves are NOT authorized, so only the certificate logs in); the server form's picker;
// a job through it; a rotation to another key and certificate; the 409 of deleting it while a
// server uses it; a trusted CA added (with the form's and the API's 422s) and deleted; and a
// viewer token seeing both pages without write buttons. Names are unique to this run.
const TOKEN = process.env.REMORA_TOKEN!;
const SHOTS = process.env.SCREENSHOT_DIR!;
const SSHD = JSON.parse(fs.readFileSync(process.env.SSHD_JSON!, "utf8")) as { host: string; port: number; user: string };
const RUN = Math.random().toString(36).slice(2, 8);
const auth = { Authorization: `Bearer ${TOKEN}` };
const CRED = `deploy-${RUN}`;
const SERVER = `cert-${RUN}`;
const CA_NAME = `hosts-${RUN}`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "remora-e2e-certs-"));
const keygen = (...args: string[]) => execFileSync("ssh-keygen", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();
const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
const fingerprint = (pub: string) => keygen("-l", "-E", "sha256", "-f", path.join(dir, pub)).split(/\s+/)[1];

/** A fresh ed25519 key `name` and a user certificate for it (principal: the sshd's user). */
function userKey(name: string, validity: string) {
  keygen("-q", "-t", "ed25519", "-N", "", "-C", `${name}@e2e`, "-f", path.join(dir, name));
  keygen("-q", "-s", path.join(dir, "user_ca"), "-I", `${name}-${RUN}`, "-n", SSHD.user, "-V", validity, path.join(dir, `${name}.pub`));
  return { key: read(name), cert: read(`${name}-cert.pub`).trim(), fingerprint: fingerprint(`${name}.pub`) };
}

async function shot(page: Page, name: string) {
  await expect(page.locator("[data-skeleton]")).toHaveCount(0);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

async function api<T>(request: APIRequestContext, method: "get" | "post" | "put" | "delete", url: string, data?: unknown, status = 200, token = TOKEN): Promise<T> {
  const r = await request[method](url, { headers: { Authorization: `Bearer ${token}` }, data });
  expect(r.status(), await r.text()).toBe(status);
  return (await r.json().catch(() => undefined)) as T;
}

/** Runs `id -un` on the server; resolves with its stdout once the job completed. */
async function runJob(request: APIRequestContext, serverId: string): Promise<string> {
  const created = await api<{ id?: string; jobs?: { id: string }[] }>(request, "post", "/api/v1/jobs", { command: "id", args: ["-un"], server_ids: [serverId], max_retries: 0 }, 201);
  const id = created.id ?? created.jobs![0].id;
  let last: { status: string; error?: string | null } = { status: "queued" };
  await expect
    .poll(
      async () => {
        last = await api(request, "get", `/api/v1/jobs/${id}`);
        return last.status;
      },
      { timeout: 40_000, message: "job status" },
    )
    .toMatch(/^(completed|failed|timed_out|canceled)$/);
  expect(last.status, `job ${id}: ${last.error ?? ""}`).toBe("completed");
  const r = await request.get(`/api/v1/jobs/${id}/stdout`, { headers: auth });
  return (await r.text()).trim();
}

test.describe.serial("credentials and trusted CAs", () => {
  let page: Page;
  let k1: ReturnType<typeof userKey>;
  let k2: ReturnType<typeof userKey>;
  let serverId = "";

  test.beforeAll(async ({ browser }) => {
    keygen("-q", "-t", "ed25519", "-N", "", "-C", `user-ca-${RUN}`, "-f", path.join(dir, "user_ca"));
    keygen("-q", "-t", "ed25519", "-N", "", "-C", `host-ca-${RUN}`, "-f", path.join(dir, "host_ca"));
    k1 = userKey("k1", "-5m:+30d");
    k2 = userKey("k2", "-5m:+30d");
    // sshd trusts the user CA for this user only: appended to the user's own authorized_keys.
    const home = execFileSync("getent", ["passwd", SSHD.user]).toString().trim().split(":")[5];
    fs.appendFileSync(path.join(home, ".ssh/authorized_keys"), `cert-authority ${read("user_ca.pub").trim()}\n`);
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.addInitScript((t) => window.sessionStorage.setItem("remora.token", t), TOKEN);
  });
  test.afterAll(async () => {
    await page.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("create a key credential with a user certificate", async () => {
    await page.goto("/credentials/");
    await expect(page.getByRole("heading", { name: "Credentials" })).toBeVisible();
    await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Credentials", exact: true })).toHaveAttribute("aria-current", "page");
    await page.getByRole("button", { name: "New credential" }).click();
    const dlg = page.getByRole("dialog", { name: "New credential" });
    // The form's own checks first: a bad name and no key.
    await dlg.getByLabel("Name", { exact: true }).fill("has space");
    await dlg.getByRole("button", { name: "Create credential" }).click();
    await expect(dlg.getByText("1–64 characters of letters, digits, -, _ or .")).toBeVisible();
    await expect(dlg.getByText("Paste a private key or choose its file")).toBeVisible();
    await dlg.getByLabel("Name", { exact: true }).fill(CRED);
    // The key from a file, and the certificate of ANOTHER key: the API's 422 shows on the field.
    await dlg.locator("#cred-key-file").setInputFiles(path.join(dir, "k1"));
    await expect(dlg.getByLabel("Private key (OpenSSH or PEM)")).toHaveValue(k1.key);
    await dlg.getByLabel("OpenSSH user certificate (optional)").fill(k2.cert);
    await dlg.getByRole("button", { name: "Create credential" }).click();
    await expect(dlg.locator("#cred-cert-msg[role=alert]")).toContainText(`certificate is for key ${k2.fingerprint}, not for this credential's key ${k1.fingerprint}`);
    await expect(dlg.getByLabel("OpenSSH user certificate (optional)")).toHaveAttribute("aria-invalid", "true");
    // The right certificate, from its file.
    await dlg.locator("#cred-cert-file").setInputFiles(path.join(dir, "k1-cert.pub"));
    await dlg.getByLabel("sudo password (for become jobs, optional)").fill(`sudo-${RUN}`);
    await dlg.getByRole("button", { name: "Create credential" }).click();
    await expect(dlg).toHaveCount(0);
    await expect(page.getByTestId("credential-saved")).toContainText(`${CRED} created (version 1)`);

    const row = page.locator(`tr[data-credential="${CRED}"]`);
    await expect(row).toContainText("key · ssh-ed25519");
    await expect(row).toContainText(k1.fingerprint);
    await expect(row).toContainText("sudo password");
    await expect(row).toContainText(SSHD.user); // the certificate's principal
    await expect(row.locator("[data-cert-state]")).toHaveAttribute("data-cert-state", "valid");
    await expect(row.getByTestId("version")).toHaveText("v1");
    // Secrets are never in the page.
    await expect(page.locator("body")).not.toContainText("PRIVATE KEY");
    expect(await page.content()).not.toContain(`sudo-${RUN}`);
  });

  test("expired and soon-expiring certificates are flagged", async ({ request }) => {
    const soon = userKey("k3", "-5m:+2d");
    const old = userKey("k4", "-3d:-1d");
    await api(request, "post", "/api/v1/credentials", { name: `soon-${RUN}`, private_key: soon.key, certificate: soon.cert }, 201);
    await api(request, "post", "/api/v1/credentials", { name: `old-${RUN}`, private_key: old.key, certificate: old.cert }, 201);
    await page.reload();
    const soonRow = page.locator(`tr[data-credential="soon-${RUN}"] [data-cert-state]`);
    await expect(soonRow).toHaveAttribute("data-cert-state", "expiring");
    await expect(soonRow).toHaveText(/expires in (47|48) h|expires in 2 d/);
    const oldRow = page.locator(`tr[data-credential="old-${RUN}"] [data-cert-state]`);
    await expect(oldRow).toHaveAttribute("data-cert-state", "expired");
    await expect(oldRow).toContainText("expired");
    await shot(page, "credentials");
    for (const n of [`soon-${RUN}`, `old-${RUN}`]) await api(request, "delete", `/api/v1/credentials/${n}`, undefined, 204);
  });

  test("attach it to a server with the picker and run a job through the certificate", async ({ request }) => {
    await page.goto("/servers/");
    await page.getByRole("button", { name: "Add server" }).first().click();
    const dlg = page.getByRole("dialog", { name: "Add a server" });
    await dlg.getByLabel("Name", { exact: true }).fill(SERVER);
    await dlg.getByLabel("User", { exact: true }).fill(SSHD.user);
    await dlg.getByLabel("Hostname or IP").fill(SSHD.host);
    await dlg.getByLabel("Port", { exact: true }).fill(String(SSHD.port));
    await expect(dlg.getByRole("tablist", { name: "Authentication method" })).toBeVisible();
    await dlg.getByLabel("Log in with").selectOption({ label: `${CRED} (key + certificate, v1)` });
    // A shared credential replaces the inline secret fields.
    await expect(dlg.getByRole("tablist", { name: "Authentication method" })).toHaveCount(0);
    await expect(dlg.locator("[data-cert-state]")).toHaveAttribute("data-cert-state", "valid");
    await shot(page, "server-form-credential");
    await dlg.getByRole("button", { name: "Add server" }).click();
    await expect(dlg).toHaveCount(0);
    const row = page.locator(`tr[data-server="${SERVER}"]`);
    await expect(row.locator(`[data-credential-name="${CRED}"]`)).toBeVisible();
    const srv = await api<{ id: string; credential_id: string }>(request, "get", `/api/v1/servers/${SERVER}`);
    serverId = srv.id;
    const cred = await api<{ id: string; servers: number }>(request, "get", `/api/v1/credentials/${CRED}`);
    expect(srv.credential_id).toBe(cred.id);
    expect(cred.servers).toBe(1);
    // The key is not in authorized_keys: this login works only through the certificate.
    expect(await runJob(request, serverId)).toBe(SSHD.user);
    // Editing the server starts on the same credential.
    await row.getByRole("button", { name: `Edit ${SERVER}` }).click();
    const edit = page.getByRole("dialog", { name: `Edit ${SERVER}` });
    await expect(edit.getByLabel("Log in with")).toHaveValue(cred.id);
    await edit.getByRole("button", { name: "Cancel" }).click();
  });

  test("rotate to another key and certificate: version 2, the next job uses it", async ({ request }) => {
    await page.goto("/credentials/");
    const row = page.locator(`tr[data-credential="${CRED}"]`);
    // Which servers a rotation reaches.
    await row.getByRole("button", { name: `Servers using ${CRED}` }).click();
    const users = page.getByRole("dialog", { name: `Servers using ${CRED}` });
    await expect(users.getByTestId("credential-server-list")).toHaveText(SERVER);
    await users.getByRole("button", { name: "Done" }).click();
    await row.getByRole("button", { name: `Rotate ${CRED}` }).click();
    const dlg = page.getByRole("dialog", { name: `Rotate ${CRED}` });
    await expect(dlg).toContainText("Saving makes version 2. It applies to the 1 server using this credential at each one's next connection");
    // Write-only: nothing stored is shown back.
    for (const l of ["Private key (OpenSSH or PEM)", "Key passphrase (if any)", "OpenSSH user certificate (optional)", "sudo password (for become jobs, optional)"]) await expect(dlg.getByLabel(l)).toHaveValue("");
    await expect(dlg.getByText("One is stored; leave empty to keep it")).toBeVisible();
    await dlg.getByLabel("Private key (OpenSSH or PEM)").fill(k2.key);
    await dlg.getByLabel("OpenSSH user certificate (optional)").fill(k2.cert);
    await dlg.getByRole("button", { name: "Rotate" }).click();
    await expect(dlg).toHaveCount(0);
    await expect(page.getByTestId("credential-saved")).toContainText(`${CRED} rotated: version 1 → 2. It applies to its 1 server at each one's next connection.`);
    await expect(row.getByTestId("version")).toHaveText("v2");
    await expect(row).toContainText(k2.fingerprint);
    await expect(row).toContainText("sudo password"); // kept
    const cred = await api<{ fingerprint: string; has_sudo_password: boolean; version: number }>(request, "get", `/api/v1/credentials/${CRED}`);
    expect(cred).toMatchObject({ fingerprint: k2.fingerprint, has_sudo_password: true, version: 2 });
    expect(await runJob(request, serverId)).toBe(SSHD.user);
  });

  test("deleting it while a server uses it is refused with the server named", async ({ request }) => {
    const row = page.locator(`tr[data-credential="${CRED}"]`);
    await row.getByRole("button", { name: `Delete ${CRED}` }).click();
    const dlg = page.getByRole("dialog", { name: `Delete ${CRED}?` });
    await dlg.getByRole("button", { name: "Delete credential" }).click();
    const alert = dlg.getByRole("alert");
    await expect(alert).toContainText("Not deleted");
    await expect(alert).toContainText(SERVER);
    await expect(alert).toContainText("HTTP 409");
    await expect(dlg.getByTestId("credential-users")).toContainText(`Used by 1 server`);
    await expect(dlg.getByTestId("credential-users")).toContainText(SERVER);
    await shot(page, "credential-in-use");
    await dlg.getByRole("button", { name: "Cancel" }).click();
    // Once no server uses it, the delete goes through.
    await api(request, "delete", `/api/v1/servers/${serverId}`, undefined, 204);
    await page.reload();
    await row.getByRole("button", { name: `Delete ${CRED}` }).click();
    await page.getByRole("dialog", { name: `Delete ${CRED}?` }).getByRole("button", { name: "Delete credential" }).click();
    await expect(page.getByRole("dialog")).toHaveCount(0);
    await expect(row).toHaveCount(0);
    await api(request, "get", `/api/v1/credentials/${CRED}`, undefined, 404);
  });

  test("add a trusted CA with host patterns, then delete it", async ({ request }) => {
    await page.goto("/trusted-cas/");
    await expect(page.getByRole("heading", { name: "Trusted CAs" })).toBeVisible();
    await page.getByRole("button", { name: "Add CA" }).click();
    const dlg = page.getByRole("dialog", { name: "Add a trusted CA" });
    await dlg.getByLabel("Name", { exact: true }).fill(CA_NAME);
    // The form's checks: no key line, only negations.
    await dlg.getByLabel("CA public key").fill("not a key");
    await dlg.getByLabel("Host patterns").fill("!db.e2e.example.com");
    await dlg.getByRole("button", { name: "Add CA" }).click();
    await expect(dlg.getByText("Not an OpenSSH public key line (ssh-ed25519 AAAA…)")).toBeVisible();
    await expect(dlg.getByText("Only negated patterns match no host; add a positive one")).toBeVisible();
    // A key line of the right shape that does not parse: the API's 422 on the field.
    await dlg.getByLabel("CA public key").fill("ssh-ed25519 AAAAnotakey");
    await dlg.getByLabel("Host patterns").fill("*.e2e.example.com\n!db.e2e.example.com");
    await dlg.getByRole("button", { name: "Add CA" }).click();
    await expect(dlg.locator("#ca-key-msg[role=alert]")).toBeVisible();
    await expect(dlg.getByLabel("CA public key")).toHaveAttribute("aria-invalid", "true");
    const before = await api<{ total: number }>(request, "get", "/api/v1/trusted-cas");
    await dlg.getByLabel("CA public key").fill(read("host_ca.pub").trim());
    await dlg.getByRole("button", { name: "Add CA" }).click();
    await expect(dlg).toHaveCount(0);
    await expect(page.getByTestId("ca-notice")).toContainText("from their next connection");
    const row = page.locator(`tr[data-ca="${CA_NAME}"]`);
    await expect(row).toContainText(fingerprint("host_ca.pub"));
    await expect(row).toContainText("*.e2e.example.com");
    await expect(row).toContainText("not db.e2e.example.com");
    const after = await api<{ total: number; trusted_cas: { name: string; patterns: string[] }[] }>(request, "get", "/api/v1/trusted-cas");
    expect(after.total).toBe(before.total + 1);
    expect(after.trusted_cas.find((c) => c.name === CA_NAME)?.patterns).toEqual(["*.e2e.example.com", "!db.e2e.example.com"]);
    await shot(page, "trusted-cas");

    await row.getByRole("button", { name: `Delete ${CA_NAME}` }).click();
    const del = page.getByRole("dialog", { name: `Delete ${CA_NAME}?` });
    await expect(del).toContainText("It takes effect at each server's next connection");
    await del.getByRole("button", { name: "Delete CA" }).click();
    await expect(del).toHaveCount(0);
    await expect(row).toHaveCount(0);
    await expect(page.getByTestId("ca-notice")).toContainText("removed");
    const gone = await api<{ trusted_cas: { name: string }[] }>(request, "get", "/api/v1/trusted-cas");
    expect(gone.trusted_cas.some((c) => c.name === CA_NAME)).toBe(false);
  });

  test("a viewer sees both pages without write buttons", async ({ browser, request }) => {
    const cred = `view-${RUN}`;
    await api(request, "post", "/api/v1/credentials", { name: cred, kind: "password", password: `pw-${RUN}` }, 201);
    await api(request, "post", "/api/v1/trusted-cas", { name: `view-ca-${RUN}`, public_key: read("host_ca.pub").trim(), patterns: ["*"] }, 201);
    const viewer = await api<{ id: string; token: string }>(request, "post", "/api/v1/tokens", { name: `viewer-${RUN}`, role: "viewer" }, 201);
    const vp = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await vp.addInitScript((t) => window.sessionStorage.setItem("remora.token", t), viewer.token);
    try {
      await vp.goto("/credentials/");
      await expect(vp.locator(`tr[data-credential="${cred}"]`)).toContainText("password");
      await expect(vp.getByRole("button", { name: "New credential" })).toHaveCount(0);
      await expect(vp.getByRole("button", { name: `Rotate ${cred}` })).toHaveCount(0);
      await expect(vp.getByRole("button", { name: `Delete ${cred}` })).toHaveCount(0);
      await vp.goto("/trusted-cas/");
      await expect(vp.locator(`tr[data-ca="view-ca-${RUN}"]`)).toBeVisible();
      await expect(vp.getByRole("button", { name: "Add CA" })).toHaveCount(0);
      await expect(vp.getByRole("button", { name: `Delete view-ca-${RUN}` })).toHaveCount(0);
      // And the API agrees: the viewer's write is a 403.
      await api(request, "delete", `/api/v1/credentials/${cred}`, undefined, 403, viewer.token);
    } finally {
      await vp.close();
    }
    // The admin page still shows them.
    await page.goto("/credentials/");
    await expect(page.getByRole("button", { name: `Rotate ${cred}` })).toBeVisible();
    await api(request, "delete", `/api/v1/credentials/${cred}`, undefined, 204);
    await api(request, "delete", `/api/v1/trusted-cas/view-ca-${RUN}`, undefined, 204);
    await api(request, "delete", `/api/v1/tokens/${viewer.id}`, undefined, 204);
  });
});
