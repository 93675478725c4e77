import { test, expect, type APIRequestContext, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

// Issue 12 in the dashboard: import an ssh_config of real hosts (dry run first, then apply; a
// second import changes nothing; a bad line applies nothing), import a known_hosts with a WRONG
// key for one host and settle the mismatch on its page (keep, then accept; a job then runs),
// the reviewed bulk accept (and what a read-only token sees of it), and the jump-host picker
// (a loop refused on the field; a job through a jump host on loopback).
// The hosts are all the testkit's real sshd (scripts/e2e.sh), under several names: on 127.0.0.1,
// on `localhost` (the one the known_hosts line names) and on port 1 (nothing listens: unreachable).
const TOKEN = process.env.REMORA_TOKEN!;
const SSHD = JSON.parse(fs.readFileSync(process.env.SSHD_JSON!, "utf8")) as {
  host: string;
  port: number;
  user: string;
  pem_key_path: string;
  host_key_fingerprint: string;
};
const KEY = fs.readFileSync(SSHD.pem_key_path, "utf8");
const SHOTS = process.env.SCREENSHOT_DIR;
const auth = (token = TOKEN) => ({ Authorization: `Bearer ${token}` });
const RUN = Math.random().toString(36).slice(2, 7);
const P = `hk-${RUN}`;
const n = (x: string) => `${P}-${x}`;
const BOGUS = `SHA256:${"A".repeat(43)}`;

const shot = async (page: Page, name: string) => {
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
};

interface Server {
  id: string;
  name: string;
  user: string;
  port: number;
  tags: string[];
  jump_server_id: string | null;
  host_key_fingerprint: string | null;
  host_key_first_seen_at: string | null;
  host_key_presented: string | null;
}

async function getServer(request: APIRequestContext, id: string): Promise<Server> {
  const r = await request.get(`/api/v1/servers/${id}`, { headers: auth() });
  expect(r.status(), await r.text()).toBe(200);
  return r.json();
}

/** Submit `echo` on one server and wait (with a deadline) for the job to finish. */
async function runJob(request: APIRequestContext, serverId: string, word: string) {
  const r = await request.post("/api/v1/jobs", { headers: auth(), data: { command: "echo", args: [word], server_ids: [serverId], max_retries: 0 } });
  expect(r.status(), await r.text()).toBe(201);
  const created = await r.json();
  const id = created.id ?? created.jobs[0].id;
  let job: { status: string; error_code?: string | null; error?: string | null } = { status: "queued" };
  await expect
    .poll(
      async () => {
        job = await (await request.get(`/api/v1/jobs/${id}`, { headers: auth() })).json();
        return ["queued", "running"].includes(job.status) ? "pending" : "final";
      },
      { timeout: 60_000 },
    )
    .toBe("final");
  const out = await (await request.get(`/api/v1/jobs/${id}/stdout`, { headers: auth() })).text();
  return { ...job, stdout: out };
}

const SSH_CONFIG = [
  "# a few real hosts: the testkit sshd under several names",
  `Host ${n("a")}`,
  "  HostName 127.0.0.1",
  `Host ${n("b")}`,
  "  HostName 127.0.0.1",
  "  IdentityFile ~/.ssh/id_ed25519",
  `Host ${n("c")}`,
  "  HostName localhost",
  `Host ${n("d")}`,
  "  HostName 127.0.0.1",
  `Host ${n("e")}`,
  "  HostName 127.0.0.1",
  "  Port 1",
  `Host ${P}-*`,
  `  Port ${SSHD.port}`,
  "",
].join("\n");

let wrongPub = "";
let wrongFp = "";
const ids: Record<string, string> = {};

test.describe.configure({ mode: "serial" });

test.beforeAll(async ({ request }) => {
  // The shared credential the import's defaults name; a throwaway WRONG host key for known_hosts.
  const r = await request.post("/api/v1/credentials", { headers: auth(), data: { name: `${P}-key`, private_key: KEY } });
  expect(r.status(), await r.text()).toBe(201);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "remora-hk-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "wrong", "-f", path.join(dir, "k")]);
  wrongPub = fs.readFileSync(path.join(dir, "k.pub"), "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  wrongFp = execFileSync("ssh-keygen", ["-lf", path.join(dir, "k.pub")], { encoding: "utf8" }).split(/\s+/)[1];
  fs.rmSync(dir, { recursive: true, force: true });
  expect(wrongFp).toMatch(/^SHA256:/);
  expect(wrongFp).not.toBe(SSHD.host_key_fingerprint);
});

test.beforeEach(async ({ page }) => {
  await page.addInitScript((t) => window.sessionStorage.setItem("remora.token", t), TOKEN);
});

async function openImport(page: Page) {
  await page.goto("/servers/");
  await page.getByRole("button", { name: "Import", exact: true }).click();
  return page.getByRole("dialog", { name: "Import servers" });
}

async function fillDefaults(page: Page) {
  await page.getByLabel("User", { exact: true }).fill(SSHD.user);
  await page.getByLabel("Tags (added)").fill(P);
  await page.getByLabel("Credential").selectOption({ label: `${P}-key (key)` });
}

test("import an ssh_config: a dry run creates nothing, apply creates the hosts, a second import changes nothing", async ({ page, request }) => {
  const dlg = await openImport(page);
  await dlg.getByLabel("Inventory").fill(SSH_CONFIG);
  await expect(dlg.getByText("Detected: OpenSSH client config")).toBeVisible();
  await fillDefaults(page);
  await expect(dlg.getByRole("button", { name: "Apply", exact: true })).toBeDisabled();
  await dlg.getByRole("button", { name: "Preview (dry run)" }).click();
  const preview = dlg.getByTestId("import-preview");
  await expect(preview.getByTestId("import-summary")).toHaveText(/Would create 5, update 0, leave 0 unchanged \(ssh_config\)/);
  for (const x of ["a", "b", "c", "d", "e"]) await expect(preview.locator(`tr[data-row="${n(x)}"]`)).toHaveAttribute("data-action", "create");
  // The row reports the IdentityFile the server cannot read.
  await expect(preview.locator(`tr[data-row="${n("b")}"]`)).toContainText("identity_file");
  await shot(page, "servers-import-preview");
  // Nothing was created by the preview.
  expect((await request.get(`/api/v1/servers/${n("a")}`, { headers: auth() })).status()).toBe(404);

  // Editing the request drops the preview: Apply needs a new one.
  await page.getByLabel("Port", { exact: true }).fill("2");
  await expect(dlg.getByTestId("import-preview")).toHaveCount(0);
  await expect(dlg.getByRole("button", { name: "Apply", exact: true })).toBeDisabled();
  await page.getByLabel("Port", { exact: true }).fill("");
  await dlg.getByRole("button", { name: "Preview (dry run)" }).click();
  await dlg.getByRole("button", { name: "Apply 5 changes" }).click();
  const done = page.getByRole("dialog", { name: "Import applied" });
  await expect(done.getByTestId("import-applied")).toHaveText("5 created, 0 updated, 0 unchanged.");
  await expect(done.getByRole("link", { name: "Review host keys of these 5 servers" })).toBeVisible();
  for (const x of ["a", "b", "c", "d", "e"]) {
    const s = await getServer(request, n(x));
    ids[x] = s.id;
    expect(s.user).toBe(SSHD.user);
    expect(s.tags).toContain(P);
    expect(s.host_key_fingerprint).toBeNull();
  }
  expect((await getServer(request, ids.e)).port).toBe(1);
  expect((await getServer(request, ids.a)).port).toBe(SSHD.port);
  await done.getByRole("button", { name: "Done", exact: true }).click();

  // The same file again: all unchanged, nothing to apply.
  const again = await openImport(page);
  await again.getByLabel("Inventory").fill(SSH_CONFIG);
  await fillDefaults(page);
  await again.getByRole("button", { name: "Preview (dry run)" }).click();
  await expect(again.getByTestId("import-summary")).toHaveText(/Would create 0, update 0, leave 5 unchanged/);
  await expect(again.locator('tr[data-action="unchanged"]')).toHaveCount(5);
  await expect(again.getByRole("button", { name: "Nothing to apply", exact: true })).toBeDisabled();
});

test("a CSV with a bad line: the error names the line and nothing is applied", async ({ page, request }) => {
  const dlg = await openImport(page);
  await dlg.getByLabel("Format").selectOption("csv");
  await dlg.getByLabel("Inventory").fill(`name,hostname,port\n${n("csv1")},127.0.0.1,${SSHD.port}\n${n("csv2")},127.0.0.1,notaport\n`);
  await fillDefaults(page);
  await dlg.getByRole("button", { name: "Preview (dry run)" }).click();
  const errors = dlg.getByTestId("import-errors");
  await expect(errors).toContainText("nothing will be applied");
  await expect(errors.locator("li[data-line='3']")).toContainText("line 3:");
  await expect(dlg.getByRole("button", { name: "Apply", exact: true })).toBeDisabled();
  await shot(page, "servers-import-errors");
  expect((await request.get(`/api/v1/servers/${n("csv1")}`, { headers: auth() })).status()).toBe(404);
});

test("a known_hosts with a wrong key: the server page shows both fingerprints; keep, then accept, and a job runs", async ({ page, request }) => {
  const dlg = await openImport(page);
  await dlg.getByLabel("Inventory").fill(`# the wrong key for ${n("c")}\n[localhost]:${SSHD.port} ${wrongPub}\n`);
  await expect(dlg.getByText("Detected: known_hosts")).toBeVisible();
  await dlg.getByRole("button", { name: "Preview (dry run)" }).click();
  await expect(dlg.locator(`tr[data-row="${n("c")}"]`)).toHaveAttribute("data-action", "update");
  expect((await getServer(request, ids.c)).host_key_fingerprint).toBeNull();
  await dlg.getByRole("button", { name: "Apply 1 change" }).click();
  const done = page.getByRole("dialog", { name: "Import applied" });
  await expect(done.getByRole("link", { name: "Review host keys of these 1 servers" })).toBeVisible();
  await done.getByRole("button", { name: "Done", exact: true }).click();
  const pinned = await getServer(request, ids.c);
  expect(pinned.host_key_fingerprint).toBe(wrongFp);
  expect(pinned.host_key_first_seen_at).not.toBeNull();

  // Pre-pinned to the wrong key: the job is refused, and the presented key is recorded.
  const refused = await runJob(request, ids.c, `refused-${RUN}`);
  expect(refused.status).toBe("failed");
  expect(refused.error_code).toBe("host_key_mismatch");
  await expect.poll(async () => (await getServer(request, ids.c)).host_key_presented, { timeout: 20_000 }).toBe(SSHD.host_key_fingerprint);

  await page.goto(`/servers/view/?id=${ids.c}`);
  const card = page.getByTestId("host-key");
  await expect(card.getByTestId("host-key-pinned")).toHaveText(wrongFp);
  await expect(card.getByTestId("host-key-first-seen")).not.toHaveText("—");
  const mismatch = card.getByTestId("host-key-mismatch");
  await expect(mismatch.getByTestId("mismatch-pinned")).toHaveText(wrongFp);
  await expect(mismatch.getByTestId("mismatch-presented")).toHaveText(SSHD.host_key_fingerprint);
  await shot(page, "server-host-key-mismatch");

  // Keep: nothing is written, the pin stays; the page asks again next time.
  await mismatch.getByRole("button", { name: "Keep the pinned key" }).click();
  await expect(card.getByTestId("host-key-kept")).toBeVisible();
  await expect(mismatch).toHaveCount(0);
  const kept = await getServer(request, ids.c);
  expect(kept.host_key_fingerprint).toBe(wrongFp);
  expect(kept.host_key_presented).toBe(SSHD.host_key_fingerprint);
  await page.reload();
  await expect(card.getByTestId("host-key-mismatch")).toBeVisible();

  // Accept: the presented key is pinned, the mismatch is gone, and a job runs.
  await card.getByRole("button", { name: "Accept the presented key" }).click();
  await expect(card.getByTestId("host-key-mismatch")).toHaveCount(0);
  await expect(card.getByTestId("host-key-pinned")).toHaveText(SSHD.host_key_fingerprint);
  const accepted = await getServer(request, ids.c);
  expect(accepted.host_key_fingerprint).toBe(SSHD.host_key_fingerprint);
  expect(accepted.host_key_presented).toBeNull();
  // The type is read from the host (the API stores fingerprints only).
  await card.getByRole("button", { name: "Read the key type from the host" }).click();
  await expect(card.getByTestId("host-key-type")).toHaveText("ssh-ed25519 (read from the host, which presents the pinned key)");
  const ok = await runJob(request, ids.c, `accepted-${RUN}`);
  expect(ok.status, JSON.stringify(ok)).toBe("completed");
  expect(ok.stdout).toContain(`accepted-${RUN}`);
});

test("reviewed bulk accept: new keys ticked, a mismatch not, unreachable and matching hosts not tickable; only the checked are pinned", async ({ page, request, browser }) => {
  // d pinned (through the bulk accept API) to a fingerprint the host does not have: a mismatch.
  const r = await request.post("/api/v1/servers/host-keys/accept", { headers: auth(), data: { keys: [{ server: ids.d, fingerprint: BOGUS }] } });
  expect(r.status(), await r.text()).toBe(200);

  await page.goto(`/servers/host-keys/?tag=${P}`);
  const table = page.getByRole("table", { name: "Host keys" });
  const row = (x: string) => table.locator(`tr[data-server="${n(x)}"]`);
  const box = (x: string) => page.getByRole("checkbox", { name: `Accept the key of ${n(x)}` });
  await expect(row("a")).toHaveAttribute("data-state", "new", { timeout: 30_000 });
  await expect(row("b")).toHaveAttribute("data-state", "new");
  await expect(row("c")).toHaveAttribute("data-state", "matches");
  await expect(row("d")).toHaveAttribute("data-state", "mismatch");
  await expect(row("e")).toHaveAttribute("data-state", "unreachable");
  await expect(row("a")).toContainText(SSHD.host_key_fingerprint);
  await expect(row("a")).toContainText("ssh-ed25519");
  await expect(row("d")).toContainText(BOGUS);
  await expect(row("d")).toContainText(SSHD.host_key_fingerprint);
  await expect(box("a")).toBeChecked();
  await expect(box("b")).toBeChecked();
  await expect(box("d")).not.toBeChecked();
  await expect(box("d")).toBeEnabled();
  await expect(box("c")).toBeDisabled();
  await expect(box("e")).toBeDisabled();
  await shot(page, "host-key-review");

  // Untick b: only a is accepted; b stays unpinned, d keeps its (wrong) pin.
  await box("b").uncheck();
  await page.getByRole("button", { name: "Accept 1 checked key" }).click();
  await expect(page.getByTestId("review-done")).toHaveText("Pinned 1 host key.");
  await expect(row("a")).toHaveAttribute("data-state", "matches");
  expect((await getServer(request, ids.a)).host_key_fingerprint).toBe(SSHD.host_key_fingerprint);
  expect((await getServer(request, ids.b)).host_key_fingerprint).toBeNull();
  expect((await getServer(request, ids.d)).host_key_fingerprint).toBe(BOGUS);

  // A job on d is refused (its pin is bogus): a pending mismatch the viewer below sees.
  const refused = await runJob(request, ids.d, `refused-d-${RUN}`);
  expect(refused.error_code).toBe("host_key_mismatch");
  await expect.poll(async () => (await getServer(request, ids.d)).host_key_presented, { timeout: 20_000 }).toBe(SSHD.host_key_fingerprint);

  // A read-only token (its role from GET /me) sees the stored state but can neither scan nor accept.
  const t = await request.post("/api/v1/tokens", { headers: auth(), data: { name: `${P}-viewer`, role: "viewer" } });
  expect(t.status(), await t.text()).toBe(201);
  const viewer = (await t.json()).token as string;
  const ctx = await browser.newContext();
  const vp = await ctx.newPage();
  await vp.addInitScript((tok) => window.sessionStorage.setItem("remora.token", tok), viewer);
  await vp.goto(`/servers/host-keys/?tag=${P}`);
  await expect(vp.getByTestId("review-read-only")).toBeVisible();
  const vrow = vp.getByRole("table", { name: "Host keys" }).locator(`tr[data-server="${n("a")}"]`);
  await expect(vrow).toContainText(SSHD.host_key_fingerprint);
  await expect(vp.getByRole("table", { name: "Host keys" }).locator(`tr[data-server="${n("d")}"]`)).toHaveAttribute("data-state", "mismatch");
  for (const x of ["a", "b", "d"]) await expect(vp.getByRole("checkbox", { name: `Accept the key of ${n(x)}` })).toBeDisabled();
  await expect(vp.getByRole("button", { name: /^Accept \d+ checked key/ })).toBeDisabled();
  await expect(vp.getByRole("button", { name: "Scan again" })).toBeDisabled();
  await shot(vp, "host-key-review-read-only");
  // On d's page: both fingerprints, no Accept / Keep.
  await vp.goto(`/servers/view/?id=${ids.d}`);
  await expect(vp.getByTestId("mismatch-pinned")).toHaveText(BOGUS);
  await expect(vp.getByTestId("mismatch-presented")).toHaveText(SSHD.host_key_fingerprint);
  await expect(vp.getByTestId("host-key-read-only")).toBeVisible();
  await expect(vp.getByRole("button", { name: "Accept the presented key" })).toHaveCount(0);
  await expect(vp.getByRole("button", { name: "Read the key type from the host" })).toHaveCount(0);
  await ctx.close();
});

test("the jump-host picker: the chain shows while picking, a loop is refused on the field, a job runs through the jump host", async ({ page, request }) => {
  await page.goto(`/servers/view/?id=${ids.b}`);
  await expect(page.getByTestId("jump-chain")).toHaveText("directly (no jump host)");
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  const dlg = page.getByRole("dialog", { name: `Edit ${n("b")}` });
  const picker = dlg.getByTestId("jump-picker");
  await picker.getByRole("combobox", { name: "Jump host" }).fill(`${P}-a`);
  await picker.getByRole("option", { name: new RegExp(`^${n("a")} `) }).click();
  await expect(picker.getByTestId("jump-chain-preview")).toHaveText(`${n("b")} ← ${n("a")}`);
  await expect(picker.getByTestId("jump-selected")).toHaveText(`${n("a")} (${SSHD.user}@127.0.0.1:${SSHD.port})`);
  await shot(page, "server-jump-picker");
  await dlg.getByRole("button", { name: "Save", exact: true }).click();
  await expect(dlg).toBeHidden();
  await expect(page.getByTestId("jump-chain")).toContainText(`${n("b")} ← ${n("a")}`);
  expect((await getServer(request, ids.b)).jump_server_id).toBe(ids.a);

  // a through b while b goes through a: the API's 422 shows on the field, nothing is saved.
  await page.goto(`/servers/view/?id=${ids.a}`);
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  const dlgA = page.getByRole("dialog", { name: `Edit ${n("a")}` });
  const pickerA = dlgA.getByTestId("jump-picker");
  await pickerA.getByRole("combobox", { name: "Jump host" }).fill(n("b"));
  await pickerA.getByRole("option", { name: new RegExp(`^${n("b")} `) }).click();
  await expect(pickerA.getByTestId("jump-chain-preview")).toHaveText(`${n("a")} ← ${n("b")} ← ${n("a")}`);
  await expect(pickerA).toContainText("loops");
  await dlgA.getByRole("button", { name: "Save", exact: true }).click();
  await expect(pickerA.getByRole("alert")).toContainText("the jump chain loops");
  await expect(dlgA).toBeVisible();
  expect((await getServer(request, ids.a)).jump_server_id).toBeNull();
  await dlgA.getByRole("button", { name: "Cancel", exact: true }).click();

  // A job on b goes through a (a real direct-tcpip tunnel through the testkit sshd to itself).
  const job = await runJob(request, ids.b, `via-jump-${RUN}`);
  expect(job.status, JSON.stringify(job)).toBe("completed");
  expect(job.stdout).toContain(`via-jump-${RUN}`);
  // b's own key was pinned on first use through the tunnel.
  expect((await getServer(request, ids.b)).host_key_fingerprint).toBe(SSHD.host_key_fingerprint);
  await page.goto(`/servers/view/?id=${ids.b}`);
  await expect(page.getByTestId("jump-chain")).toContainText(`${n("b")} ← ${n("a")}`);
  await shot(page, "server-detail-jump");
});
