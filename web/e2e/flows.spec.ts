import { test, expect, type APIRequestContext, type Page } from "@playwright/test";
import fs from "node:fs";

// Dashboard flows the other specs do not drive: edit / delete a server, the
// host-key "accept new key" dialog, duplicate with overrides, API tokens.
// Independent of the other files: everything it needs is created here, via
// the API (token from scripts/e2e.sh) or the UI, with names unique to this run.
const TOKEN = process.env.REMORA_TOKEN!;
const SSHD = JSON.parse(fs.readFileSync(process.env.SSHD_JSON!, "utf8")) as {
  host: string;
  port: number;
  user: string;
  pem_key_path: string;
  host_key_fingerprint: string;
};
const KEY = fs.readFileSync(SSHD.pem_key_path, "utf8");
const auth = (token = TOKEN) => ({ Authorization: `Bearer ${token}` });
const RUN = Math.random().toString(36).slice(2, 8);

interface Server {
  id: string;
  name: string;
  hostname: string;
  port: number;
  tags: string[];
  max_concurrency: number;
  host_key_fingerprint: string | null;
}

async function createServer(request: APIRequestContext, name: string, extra: Record<string, unknown> = {}): Promise<Server> {
  const r = await request.post("/api/v1/servers", {
    headers: auth(),
    data: { name, hostname: SSHD.host, port: SSHD.port, user: SSHD.user, private_key: KEY, ...extra },
  });
  expect(r.status(), await r.text()).toBe(201);
  return r.json();
}

async function getServer(request: APIRequestContext, id: string): Promise<Server> {
  const r = await request.get(`/api/v1/servers/${id}`, { headers: auth() });
  expect(r.status(), await r.text()).toBe(200);
  return r.json();
}

async function getJob(request: APIRequestContext, id: string) {
  const r = await request.get(`/api/v1/jobs/${id}`, { headers: auth() });
  expect(r.status(), await r.text()).toBe(200);
  return r.json();
}

/** The value shown under a label in a <dl> (the job page's metadata). */
const meta = (page: Page, label: string) => page.locator("main dl > div").filter({ has: page.locator("dt", { hasText: new RegExp(`^${label}$`) }) }).locator("dd");

test.beforeEach(async ({ page }) => {
  // Signed in: the dashboard keeps its token in this tab's session storage.
  await page.addInitScript((t) => window.sessionStorage.setItem("remora.token", t), TOKEN);
});

test("edit a server; API validation errors show on the form and save nothing", async ({ page, request }) => {
  const name = `flows-edit-${RUN}`;
  const srv = await createServer(request, name, { tags: ["flows"], max_concurrency: 4 });
  // The table is virtualised (thousands of servers when fleet.spec.ts ran first): search for the row.
  await page.goto(`/servers/?q=${name}`);
  const row = page.locator(`tr[data-server="${name}"]`);
  await expect(row).toContainText("flows");

  // A valid edit: tags and max concurrency.
  await page.getByRole("button", { name: `Edit ${name}`, exact: true }).click();
  let dlg = page.getByRole("dialog", { name: `Edit ${name}` });
  await expect(dlg.getByLabel("Tags", { exact: true })).toHaveValue("flows");
  await expect(dlg.getByLabel("Max concurrent jobs", { exact: true })).toHaveValue("4");
  await dlg.getByLabel("Tags", { exact: true }).fill("flows, edited");
  await dlg.getByLabel("Max concurrent jobs", { exact: true }).fill("7");
  await dlg.getByRole("button", { name: "Save", exact: true }).click();
  await expect(dlg).toBeHidden();
  await expect(row.getByText("edited", { exact: true })).toBeVisible();
  expect(await getServer(request, srv.id)).toMatchObject({ tags: ["flows", "edited"], max_concurrency: 7, port: SSHD.port });

  // Errors: every PUT the form sends is recorded.
  const puts: string[] = [];
  page.on("request", (r) => {
    if (r.method() === "PUT" && r.url().includes(`/api/v1/servers/${srv.id}`)) puts.push(r.postData() ?? "");
  });
  await page.getByRole("button", { name: `Edit ${name}`, exact: true }).click();
  dlg = page.getByRole("dialog", { name: `Edit ${name}` });
  const port = dlg.getByLabel("Port", { exact: true });

  // Port 70000: the input's own range (1–65535) stops the submit before the API.
  await port.fill("70000");
  await dlg.getByRole("button", { name: "Save", exact: true }).click();
  expect(await port.evaluate((e) => (e as HTMLInputElement).validity.rangeOverflow)).toBe(true);
  await expect(dlg).toBeVisible();
  expect(puts).toHaveLength(0);
  await port.fill(String(SSHD.port));

  // A tag the API refuses: its message beside the Tags field, which is marked invalid.
  const tags = dlg.getByLabel("Tags", { exact: true });
  await tags.fill("flows, bad!tag");
  await dlg.getByRole("button", { name: "Save", exact: true }).click();
  const tagError = "tag `bad!tag` must be 1–64 characters of letters, digits, `-`, `_` or `.`";
  await expect(dlg.getByRole("alert")).toHaveText(tagError);
  await expect(tags).toHaveAttribute("aria-invalid", "true");
  await expect(tags).toHaveAccessibleDescription(tagError);
  expect(puts).toHaveLength(1);

  // A name already taken (409 from the API): shown beside Name.
  await tags.fill("flows, edited");
  await dlg.getByLabel("Name", { exact: true }).fill("local-demo");
  await dlg.getByRole("button", { name: "Save", exact: true }).click();
  await expect(dlg.getByLabel("Name", { exact: true })).toHaveAccessibleDescription("a server named `local-demo` already exists");
  await expect(dlg.getByRole("alert")).toHaveCount(1);
  expect(puts).toHaveLength(2);

  // Cancel: nothing of the refused edits was stored or shown.
  await dlg.getByRole("button", { name: "Cancel", exact: true }).click();
  await expect(dlg).toBeHidden();
  await expect(row.getByText("edited", { exact: true })).toBeVisible();
  await expect(row).not.toContainText("bad!tag");
  expect(await getServer(request, srv.id)).toMatchObject({ name, tags: ["flows", "edited"], max_concurrency: 7, port: SSHD.port });
});

test("delete a server: cancel keeps it, confirm removes it", async ({ page, request }) => {
  const name = `flows-del-${RUN}`;
  const srv = await createServer(request, name);
  // The table is virtualised (thousands of servers when fleet.spec.ts ran first): search for the row.
  await page.goto(`/servers/?q=${name}`);
  const row = page.locator(`tr[data-server="${name}"]`);
  await expect(row).toBeVisible();

  await page.getByRole("button", { name: `Delete ${name}`, exact: true }).click();
  const dlg = page.getByRole("dialog", { name: `Delete ${name}?` });
  await expect(dlg).toContainText("stored credentials are removed");
  await dlg.getByRole("button", { name: "Cancel", exact: true }).click();
  await expect(dlg).toBeHidden();
  await expect(row).toBeVisible();
  expect((await request.get(`/api/v1/servers/${srv.id}`, { headers: auth() })).status()).toBe(200);

  await page.getByRole("button", { name: `Delete ${name}`, exact: true }).click();
  await dlg.getByRole("button", { name: "Delete server", exact: true }).click();
  await expect(dlg).toBeHidden();
  await expect(row).toHaveCount(0);
  expect((await request.get(`/api/v1/servers/${srv.id}`, { headers: auth() })).status()).toBe(404);
  // Still gone after a reload (not just removed from the page's cache).
  await page.reload();
  await expect(page.getByText("No server matches")).toBeVisible();
  await expect(row).toHaveCount(0);
});

test("a changed host key: the test shows the mismatch, keep the old key, then accept the new one", async ({ page, request }) => {
  // A real key change: pin the testkit sshd's key, then point the record (via
  // the API, as after a re-IP) at the demo host, whose host key differs.
  const name = `flows-rekey-${RUN}`;
  const srv = await createServer(request, name);
  const demo = await getServer(request, "local-demo");
  // The table is virtualised (thousands of servers when fleet.spec.ts ran first): search for the row.
  await page.goto(`/servers/?q=${name}`);
  const row = page.locator(`tr[data-server="${name}"]`);
  await expect(row).toContainText("not pinned");

  await page.getByRole("button", { name: `Test connection to ${name}`, exact: true }).click();
  const testDlg = page.getByRole("dialog", { name: `Connection test: ${name}` });
  const result = testDlg.getByTestId("test-result");
  await expect(result).toContainText("connected", { timeout: 30_000 });
  await expect(result).toContainText("new: pinned on first use");
  await expect(result).toContainText(SSHD.host_key_fingerprint);
  await testDlg.getByRole("button", { name: "Done", exact: true }).click();
  await expect(row).toContainText(SSHD.host_key_fingerprint);

  const moved = await request.put(`/api/v1/servers/${srv.id}`, { headers: auth(), data: { hostname: demo.hostname, port: demo.port } });
  expect(moved.status(), await moved.text()).toBe(200);
  await page.reload();
  await page.getByRole("button", { name: `Test connection to ${name}`, exact: true }).click();
  await expect(result).toContainText("failed", { timeout: 30_000 });
  await expect(result).toContainText("changed since it was pinned");
  const presented = (await result.locator("dt", { hasText: /^Host key$/ }).locator("xpath=following-sibling::dd[1]").innerText()).trim();
  expect(presented).toMatch(/^SHA256:/);
  expect(presented).not.toBe(SSHD.host_key_fingerprint);
  if (demo.host_key_fingerprint) expect(presented).toBe(demo.host_key_fingerprint);

  // Review, then keep the old key: nothing changes.
  await result.getByRole("button", { name: "Review and accept the new key…" }).click();
  const acceptDlg = page.getByRole("dialog", { name: "Accept the new host key?" });
  await expect(acceptDlg).toContainText(SSHD.host_key_fingerprint);
  await expect(acceptDlg).toContainText(presented);
  await acceptDlg.getByRole("button", { name: "Keep the old key", exact: true }).click();
  await expect(acceptDlg).toBeHidden();
  expect((await getServer(request, srv.id)).host_key_fingerprint).toBe(SSHD.host_key_fingerprint);

  // Accept: the new key is pinned and both dialogs close.
  await result.getByRole("button", { name: "Review and accept the new key…" }).click();
  await acceptDlg.getByRole("button", { name: "Accept new key", exact: true }).click();
  await expect(acceptDlg).toBeHidden();
  await expect(testDlg).toBeHidden();
  await expect(row).toContainText(presented);
  expect((await getServer(request, srv.id)).host_key_fingerprint).toBe(presented);
  // Testing again reports no mismatch (the login itself fails: the record's user and key are the testkit's).
  await page.getByRole("button", { name: `Test connection to ${name}`, exact: true }).click();
  await expect(result).toContainText("failed", { timeout: 30_000 });
  await expect(result).not.toContainText("changed since it was pinned");
  await expect(result.getByRole("button", { name: "Review and accept the new key…" })).toHaveCount(0);
});

test("duplicate a finished job with another server, priority and timeout", async ({ page, request }) => {
  const srv = await createServer(request, `flows-dup-${RUN}`);
  const demo = await getServer(request, "local-demo");
  const r = await request.post("/api/v1/jobs", {
    headers: auth(),
    data: { command: "echo", args: [`dup-${RUN}`], server_ids: [srv.id], priority: 3, timeout: 60, max_retries: 0 },
  });
  expect(r.status(), await r.text()).toBe(201);
  const created = await r.json();
  const src = created.id ?? created.jobs[0].id;
  await expect.poll(async () => (await getJob(request, src)).status, { timeout: 40_000 }).toBe("completed");

  await page.goto(`/jobs/view/?id=${src}`);
  await expect(page.locator("main [data-status]").first()).toHaveAttribute("data-status", "completed");
  await expect(page.getByTestId("log-viewer")).toContainText(`dup-${RUN}`);
  await expect(meta(page, "Priority")).toHaveText("3");

  await page.getByRole("button", { name: `Duplicate job ${src}`, exact: true }).click();
  const dlg = page.getByRole("dialog", { name: "Duplicate job" });
  await expect(dlg.getByLabel("Priority (1–10)")).toHaveValue("3");
  await expect(dlg.getByLabel("Timeout (s, 0 = none)")).toHaveValue("60");
  await expect(dlg.getByLabel("Server", { exact: true })).toHaveValue(srv.id);
  await dlg.getByLabel("Server", { exact: true }).selectOption({ label: "local-demo" });
  await dlg.getByLabel("Timeout (s, 0 = none)").fill("123");
  await dlg.getByLabel("Priority (1–10)").fill("9");
  await dlg.getByRole("button", { name: "Duplicate", exact: true }).click();

  await page.waitForURL((u) => /\/jobs\/view\/\?id=/.test(u.toString()) && !u.toString().includes(src));
  await expect(dlg).toBeHidden();
  const dup = new URL(page.url()).searchParams.get("id")!;
  await expect(meta(page, "Priority")).toHaveText("9");
  await expect(meta(page, "Timeout")).toHaveText("123 s");
  await expect(meta(page, "Server")).toContainText("local-demo");
  // It runs, on the other server, with the same command.
  await expect(page.locator("main [data-status]").first()).toHaveAttribute("data-status", "completed", { timeout: 40_000 });
  await expect(page.getByTestId("log-viewer")).toContainText(`dup-${RUN}`);
  const job = await getJob(request, dup);
  const orig = await getJob(request, src);
  expect(job).toMatchObject({ priority: 9, timeout: 123, server_id: demo.id, command: orig.command, args: orig.args });
  expect(orig).toMatchObject({ priority: 3, timeout: 60, server_id: srv.id });
});

test("API tokens: create a viewer token, its secret shown once, revoke it", async ({ page, request }) => {
  const name = `flows-viewer-${RUN}`;
  await page.goto("/settings/");
  await expect(page.getByRole("table", { name: "API tokens" })).toBeVisible();
  await page.getByLabel("New token name", { exact: true }).fill(name);
  await page.getByLabel("Role", { exact: true }).selectOption("viewer");
  await page.getByRole("button", { name: "Create token", exact: true }).click();

  const shown = page.getByRole("dialog", { name: `Token “${name}” created` });
  await expect(shown).toContainText("shown only once");
  await expect(shown).toContainText("Role viewer");
  const secret = (await shown.getByTestId("new-token").innerText()).trim();
  expect(secret.length).toBeGreaterThan(20);

  // The secret works, with the viewer's rights: reads yes, writes no.
  expect((await request.get("/api/v1/servers", { headers: auth(secret) })).status()).toBe(200);
  const write = await request.post("/api/v1/tokens", { headers: auth(secret), data: { name: "nope" } });
  expect(write.status()).toBe(403);

  await shown.getByRole("button", { name: "Done", exact: true }).click();
  await expect(shown).toBeHidden();
  const row = page.locator(`tr[data-token="${name}"]`);
  await expect(row).toContainText("viewer");
  await expect(page.locator("body")).not.toContainText(secret);
  // Nor anywhere after a reload, nor in the API's list.
  await page.reload();
  await expect(row).toContainText("viewer");
  await expect(page.locator("body")).not.toContainText(secret);
  const listed = await (await request.get("/api/v1/tokens", { headers: auth() })).text();
  expect(listed).toContain(name);
  expect(listed).not.toContain(secret);

  // Revoke: cancel first, then confirm.
  await page.getByRole("button", { name: `Revoke ${name}`, exact: true }).click();
  const confirm = page.getByRole("dialog", { name: `Revoke “${name}”?` });
  await confirm.getByRole("button", { name: "Cancel", exact: true }).click();
  await expect(confirm).toBeHidden();
  expect((await request.get("/api/v1/servers", { headers: auth(secret) })).status()).toBe(200);

  await page.getByRole("button", { name: `Revoke ${name}`, exact: true }).click();
  await confirm.getByRole("button", { name: "Revoke token", exact: true }).click();
  await expect(confirm).toBeHidden();
  await expect(row.getByText("revoked", { exact: true })).toBeVisible();
  await expect(page.getByRole("button", { name: `Revoke ${name}`, exact: true })).toHaveCount(0);
  const after = await request.get("/api/v1/servers", { headers: auth(secret) });
  expect(after.status()).toBe(401);
  // The session's own (admin) token still works.
  await page.reload();
  await expect(page.getByRole("heading", { name: "Settings" })).toBeVisible();
});
