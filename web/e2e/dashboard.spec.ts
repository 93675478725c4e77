import { test, expect, type Page } from "@playwright/test";
import fs from "node:fs";
import path from "node:path";

// Driven by scripts/e2e.sh, which starts `remora up --demo` and a real sshd
// (remora-testkit) and passes their details in the environment.
const TOKEN = process.env.REMORA_TOKEN!;
const SSHD = JSON.parse(fs.readFileSync(process.env.SSHD_JSON!, "utf8")) as {
  host: string;
  port: number;
  user: string;
  pem_key_path: string;
  host_key_fingerprint: string;
};
const SHOTS = process.env.SCREENSHOT_DIR!;

async function shot(page: Page, name: string) {
  // Wait until no skeleton is on screen so the picture shows data. (Not
  // "networkidle": the live event streams keep the network busy.)
  await expect(page.locator("[data-skeleton]")).toHaveCount(0);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

async function runCommand(page: Page, command: string, servers: string[]) {
  await page.goto("/execute/");
  await page.getByLabel("Command", { exact: true }).fill(command);
  const group = page.getByRole("group", { name: "Servers" });
  await expect(group.getByRole("checkbox").first()).toBeVisible();
  for (const cb of await group.getByRole("checkbox").all()) await cb.uncheck();
  for (const s of servers) await group.getByRole("checkbox", { name: new RegExp(`^${s}\\b`) }).check();
  await page.getByRole("button", { name: "Run", exact: true }).click();
}

const jobStatus = (page: Page) => page.locator("main h1 ~ p [data-status], main [data-status]").first();

test.describe.serial("dashboard against a real stack", () => {
  let page: Page;
  let firstJobUrl = "";

  test.beforeAll(async ({ browser }) => {
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  });
  test.afterAll(async () => {
    await page.close();
  });

  test("sign in", async () => {
    await page.goto("/");
    await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
    await shot(page, "sign-in");
    await page.getByLabel("API token", { exact: true }).fill("wrong-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByText(/token is invalid|revoked/i)).toBeVisible();
    await page.getByLabel("API token", { exact: true }).fill(TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
  });

  test("add a server by uploading a PEM file", async () => {
    await page.goto("/servers/");
    await expect(page.getByRole("table", { name: "Servers" })).toBeVisible();
    await page.getByRole("button", { name: "Add server" }).first().click();
    const dlg = page.getByRole("dialog", { name: "Add a server" });
    await dlg.getByLabel("Name", { exact: true }).fill("e2e-pem");
    await dlg.getByLabel("User", { exact: true }).fill(SSHD.user);
    await dlg.getByLabel("Hostname or IP", { exact: true }).fill(SSHD.host);
    await dlg.getByLabel("Port", { exact: true }).fill(String(SSHD.port));
    await dlg.getByLabel("Tags", { exact: true }).fill("e2e, pem");
    await dlg.getByTestId("pem-input").setInputFiles(SSHD.pem_key_path);
    await expect(dlg.getByTestId("pem-uploaded")).toContainText("SHA256:");
    await dlg.getByRole("button", { name: "Add server" }).click();
    await expect(dlg).toBeHidden();
    await expect(page.locator('tr[data-server="e2e-pem"]')).toContainText("key file");
  });

  test("test the connection", async () => {
    await page.getByRole("button", { name: "Test connection to e2e-pem" }).click();
    const result = page.getByTestId("test-result");
    await expect(result).toContainText("connected", { timeout: 30_000 });
    await expect(result).toContainText(SSHD.host_key_fingerprint);
    await shot(page, "servers-test-connection");
    await page.getByRole("button", { name: "Done" }).click();
    await shot(page, "servers");
  });

  test("see the first lines of a job before it ends", async () => {
    await runCommand(page, "for i in $(seq 1 8); do echo line-$i; sleep 1; done; echo done", ["e2e-pem"]);
    await page.waitForURL(/\/jobs\/view\/\?id=/);
    firstJobUrl = page.url();
    const log = page.getByTestId("log-viewer");
    await expect(log).toContainText("line-1", { timeout: 30_000 });
    // Still running when the first line shows: the output is live, not stored-then-shown.
    await expect(jobStatus(page)).toHaveAttribute("data-status", "running");
    await expect(log).not.toContainText("done");
    await expect(jobStatus(page)).toHaveAttribute("data-status", "completed", { timeout: 40_000 });
    await expect(log).toContainText("line-8");
    await expect(page.getByTestId("exit-code")).toHaveText("0");
    await shot(page, "job-detail");
  });

  test("cancel a running job and see canceled", async () => {
    await runCommand(page, "for i in $(seq 1 120); do echo tick $i; sleep 1; done", ["e2e-pem"]);
    await page.waitForURL(/\/jobs\/view\/\?id=/);
    await expect(page.getByTestId("log-viewer")).toContainText("tick 1", { timeout: 30_000 });
    await page.getByRole("button", { name: /^Cancel job/ }).click();
    await expect(jobStatus(page)).toHaveAttribute("data-status", "canceled", { timeout: 30_000 });
  });

  test("rerun it", async () => {
    const before = page.url();
    await page.getByRole("button", { name: /^Rerun job/ }).click();
    await page.waitForURL((u) => u.toString() !== before && /\/jobs\/view\/\?id=/.test(u.toString()));
    await expect(page.getByTestId("log-viewer")).toContainText("tick 1", { timeout: 30_000 });
    await expect(jobStatus(page)).toHaveAttribute("data-status", "running");
    // Leave nothing running behind.
    await page.getByRole("button", { name: /^Cancel job/ }).click();
    await expect(jobStatus(page)).toHaveAttribute("data-status", "canceled", { timeout: 30_000 });
  });

  test("a multi-server run opens the batch grid", async () => {
    await runCommand(page, "hostname; echo batch-ok", ["local-demo", "e2e-pem"]);
    await page.waitForURL(/\/batches\/view\/\?id=/);
    const grid = page.getByRole("list", { name: "Servers in this batch" });
    await expect(grid.getByRole("listitem")).toHaveCount(2);
    await expect(grid.locator('[data-status="completed"]')).toHaveCount(2, { timeout: 40_000 });
    await shot(page, "batch");
    // A host's output opens on demand; its job page is one link further.
    await grid.getByRole("button", { name: "Output of local-demo" }).click();
    await expect(page.getByTestId("host-output").getByLabel("stdout")).toContainText("batch-ok");
    await page.getByRole("link", { name: "Open the job page" }).click();
    await page.waitForURL(/\/jobs\/view\/\?id=/);
    await expect(page.getByTestId("log-viewer")).toContainText("batch-ok");
  });

  test("jobs table filters", async () => {
    await page.goto("/jobs/");
    await expect(page.getByRole("table", { name: "Jobs" })).toBeVisible();
    await page.getByLabel("Status", { exact: true }).selectOption("canceled");
    await expect(page.locator("tbody tr")).toHaveCount(2);
    await expect(page.locator("tbody [data-status]").first()).toHaveAttribute("data-status", "canceled");
    await page.getByLabel("Status", { exact: true }).selectOption("");
    await page.getByLabel("Search", { exact: true }).fill("line-");
    await expect(page.locator("tbody tr")).toHaveCount(1);
    await page.getByLabel("Search", { exact: true }).fill("");
    await expect(page.locator("tbody tr")).not.toHaveCount(1);
    await shot(page, "jobs");
  });

  test("switch the theme", async () => {
    await page.goto("/");
    await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
    await shot(page, "overview");
    const theme = page.getByLabel("Theme").first();
    await theme.selectOption("dark");
    await expect(page.locator("html")).toHaveClass(/\bdark\b/);
    // After a reload the theme must still be dark (and no colour transition is mid-way for the picture).
    await page.reload();
    await expect(page.locator("html")).toHaveClass(/\bdark\b/);
    await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
    await shot(page, "overview-dark");
    await page.getByLabel("Theme").first().selectOption("light");
    await expect(page.locator("html")).not.toHaveClass(/\bdark\b/);
  });

  test("open the shortcuts overlay", async () => {
    await page.locator("main").click({ position: { x: 5, y: 5 } });
    await page.keyboard.press("?");
    const dlg = page.getByRole("dialog", { name: "Keyboard shortcuts" });
    await expect(dlg).toBeVisible();
    await expect(dlg).toContainText("Go to Jobs");
    await shot(page, "shortcuts");
    await page.keyboard.press("Escape");
    await expect(dlg).toBeHidden();
    await page.keyboard.press("g");
    await page.keyboard.press("j");
    await expect(page).toHaveURL(/\/jobs\/$/);
  });

  test("screenshots of the remaining pages", async () => {
    await page.goto("/execute/");
    await expect(page.getByRole("heading", { name: "Execute" })).toBeVisible();
    await shot(page, "execute");
    await page.getByRole("tab", { name: "Script" }).click();
    await shot(page, "execute-script");
    await page.goto("/workers/");
    await expect(page.getByRole("table", { name: "Workers" })).toBeVisible();
    await shot(page, "workers");
    await page.goto("/settings/");
    await expect(page.getByRole("heading", { name: "Settings" })).toBeVisible();
    await shot(page, "settings");
    await page.goto(firstJobUrl);
    await expect(page.getByTestId("log-viewer")).toContainText("line-8");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto("/jobs/");
    await expect(page.getByRole("heading", { name: "Jobs" })).toBeVisible();
    await shot(page, "jobs-phone");
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  test("sign out", async () => {
    await page.goto("/settings/");
    await page.getByRole("button", { name: "Sign out" }).last().click();
    await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  });
});
