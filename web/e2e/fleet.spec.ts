import { test, expect, type APIRequestContext, type Page } from "@playwright/test";
import fs from "node:fs";
import path from "node:path";
import { writeBenchSection } from "./bench-out";

// Fleet runs in the dashboard (issue 15): the batch page and the servers page
// with 5,000 hosts (servers on 127.0.0.1 port 1, where nothing listens, so
// their jobs fail fast: the page is what is measured), and a small flow on real
// sshd hosts: Execute with a batch policy, per-host output, grouped output,
// rerun failed, cancel. Render and scroll numbers go to the benchmark file.
const TOKEN = process.env.REMORA_TOKEN!;
const OUT = process.env.REMORA_BENCH_OUT;
const SHOTS = process.env.SCREENSHOT_DIR;
const HOSTS = Number(process.env.REMORA_FLEET_HOSTS ?? 5000);
const SSHD = JSON.parse(fs.readFileSync(process.env.SSHD_JSON!, "utf8")) as { host: string; port: number; user: string; pem_key_path: string };
const KEY = fs.readFileSync(SSHD.pem_key_path, "utf8");
const auth = { Authorization: `Bearer ${TOKEN}` };
const RUN = Math.random().toString(36).slice(2, 7);
const TAG = `fleet-${RUN}`;
const pad = (i: number) => String(i).padStart(4, "0");

test.describe.configure({ mode: "serial", timeout: 900_000 });

test.beforeEach(async ({ page }) => {
  await page.addInitScript((t) => window.sessionStorage.setItem("remora.token", t), TOKEN);
});

const results: string[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const shot = async (page: Page, name: string) => {
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
};

/** POST with a bounded retry on the API's rate limit (429): paces a bulk load, synchronises nothing. */
async function post(request: APIRequestContext, url: string, data: unknown) {
  for (let attempt = 0; ; attempt++) {
    const r = await request.post(url, { headers: auth, data });
    if (r.status() !== 429 || attempt > 200) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function batchHead(request: APIRequestContext, id: string) {
  const r = await request.get(`/api/v1/batches/${id}?jobs=false&limit=0`, { headers: auth });
  expect(r.status(), await r.text()).toBe(200);
  return r.json();
}

let batchId = "";

test(`${HOSTS} servers and a ${HOSTS}-host batch through the API`, async ({ request }) => {
  const start = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < HOSTS) {
        const i = next++;
        const r = await post(request, "/api/v1/servers", {
          name: `${TAG}-${pad(i)}`,
          hostname: "127.0.0.1",
          port: 1,
          user: "nobody",
          password: "x",
          tags: [TAG, i % 2 ? `${TAG}-odd` : `${TAG}-even`],
        });
        expect(r.status(), await r.text()).toBe(201);
      }
    }),
  );
  const seedMs = Date.now() - start;
  const r = await post(request, "/api/v1/jobs", { command: "echo", args: ["fleet"], tag: TAG, max_retries: 0, priority: 1 });
  expect(r.status(), await r.text()).toBe(201);
  const created = await r.json();
  batchId = created.batch_id;
  expect(created.jobs).toHaveLength(HOSTS);
  results.push(
    `### Batch page with ${HOSTS.toLocaleString("en")} hosts`,
    "",
    `Seeding ${HOSTS} servers through the API (8 at a time, paced by the API's rate limit): ${(seedMs / 1000).toFixed(1)} s; one \`tag\` submission of ${HOSTS} hosts: ${Date.now() - start - seedMs} ms.`,
    "",
  );
});

test(`the batch page renders ${HOSTS} hosts and scrolls smoothly`, async ({ page, request }) => {
  expect(batchId).not.toBe("");
  const gridVisible = async () => {
    await expect(page.getByTestId("host-grid").locator("[data-host]").first()).toBeVisible({ timeout: 30_000 });
    return page.evaluate(() => performance.getEntriesByName("remora:batch-grid")[0]?.startTime ?? -1);
  };

  // While it runs: counts poll, the grid shows.
  await page.goto(`/batches/view/?id=${batchId}`);
  const liveMs = await gridVisible();
  await expect(page.getByTestId("batch-total")).toHaveText(`${HOSTS.toLocaleString("en")} hosts`);
  // Live updates fetch the counts and the visible grid page, never the whole batch.
  const big: string[] = [];
  page.on("response", (r) => {
    const u = new URL(r.url());
    if (u.pathname === `/api/v1/batches/${batchId}` && (u.searchParams.get("jobs") !== "false" || !u.searchParams.get("limit"))) big.push(r.url());
  });

  await expect.poll(async () => (await batchHead(request, batchId)).finished, { timeout: 600_000, intervals: [2000] }).toBe(true);
  const head = await batchHead(request, batchId);
  expect(head.summary.failed + head.summary.timed_out + head.summary.completed + head.summary.canceled).toBe(HOSTS);
  // The open page notices the end by polling: progress reaches 100 %.
  await expect(page.getByTestId("batch-progress")).toHaveText("100% done", { timeout: 30_000 });
  expect(big, "the page fetched a whole batch while polling").toEqual([]);

  // Navigation start → first grid rows on screen, 5 runs from another page.
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    await page.goto("/settings/");
    await expect(page.getByRole("heading", { name: "Settings" })).toBeVisible();
    await page.goto(`/batches/view/?id=${batchId}`);
    const ms = await gridVisible();
    expect(ms).toBeGreaterThan(0);
    runs.push(ms);
  }
  // A functional deadline, not the performance target: the 1 s is measured and reported
  // (web/benchmarks.md), never asserted, so a loaded CI machine does not fail on speed.
  expect(median(runs), `render times ${runs.join(", ")} ms`).toBeLessThan(5000);
  const grid = page.getByTestId("host-grid");
  await expect(grid).toHaveAttribute("data-count", String(HOSTS));
  await expect(page.locator('[data-count-status="failed"]')).toContainText(HOSTS.toLocaleString("en"));
  await expect(page.locator('[data-exit="none"]')).toContainText(HOSTS.toLocaleString("en"));
  await shot(page, "batch-5000");

  // Scroll top to bottom in 600 steps, one per animation frame.
  const frames: number[] = await grid.evaluate(async (el) => {
    el.scrollTop = 0;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const steps = 600;
    const max = el.scrollHeight - el.clientHeight;
    const out: number[] = [];
    let last = performance.now();
    for (let i = 1; i <= steps; i++) {
      el.scrollTop = (max * i) / steps;
      await new Promise((r) => requestAnimationFrame(r));
      const now = performance.now();
      out.push(now - last);
      last = now;
    }
    return out;
  });
  const domRows = await grid.locator('[role="listitem"]').count();
  expect(domRows).toBeLessThan(120);
  // The last host is reachable: its page of the grid loads at the bottom.
  await expect(grid.locator(`[data-host="${TAG}-${pad(HOSTS - 1)}"]`)).toBeVisible({ timeout: 15_000 });

  // Search and status filter narrow the grid on the server.
  await page.getByLabel("Search hosts").fill(`${TAG}-${pad(4321 % HOSTS)}`);
  await expect(grid).toHaveAttribute("data-count", "1");
  await expect(grid.locator("[data-host]")).toHaveCount(1);
  await page.getByLabel("Search hosts").fill("");
  await page.getByLabel("Filter by status").selectOption("completed");
  await expect(grid).toHaveAttribute("data-count", "0");
  await expect(grid).toContainText("No host matches.");

  // Grouped output: every host failed the same way (connection refused, no output): one group.
  await page.getByRole("tab", { name: /Grouped output/ }).click();
  const groups = page.getByTestId("output-group");
  await expect(groups).toHaveCount(1);
  await expect(groups.first()).toContainText(`${HOSTS.toLocaleString("en")} hosts · no exit code`);
  await expect(groups.first()).toContainText("more");
  await shot(page, "batch-5000-groups");

  const mean = frames.reduce((a, b) => a + b, 0) / frames.length;
  results.push(
    `From navigation start to the first grid rows on screen (page load, sign-in check, the batch's counts and first grid page of 500 hosts, render; \`performance.mark\` in the grid), 5 runs after the batch finished:`,
    "",
    "| median | min | max | while the batch ran (first load) |",
    "|---|---|---|---|",
    `| ${median(runs).toFixed(0)} ms | ${Math.min(...runs).toFixed(0)} ms | ${Math.max(...runs).toFixed(0)} ms | ${liveMs.toFixed(0)} ms |`,
    "",
    `Host grid scrolled from top to bottom (${HOSTS} rows) in ${frames.length} steps, one per frame; rows in the DOM: ${domRows}:`,
    "",
    "| mean frame | median | p95 | max | frames over 33 ms (a frame dropped) |",
    "|---|---|---|---|---|",
    `| ${mean.toFixed(1)} ms | ${median(frames).toFixed(1)} ms | ${pct(frames, 0.95).toFixed(1)} ms | ${Math.max(...frames).toFixed(1)} ms | ${frames.filter((f) => f > 33.4).length} of ${frames.length} |`,
    "",
  );
});

test(`the servers page with ${HOSTS} servers: search, filters, run on all matching`, async ({ page, request }) => {
  const info = await (await request.get("/api/v1/system/info", { headers: auth })).json();
  // The page asks the API for pages of servers, never for the whole list.
  const whole: string[] = [];
  let watching = true;
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (watching && u.pathname === "/api/v1/servers" && r.method() === "GET" && !u.searchParams.get("limit")) whole.push(r.url());
  });
  const t0 = Date.now();
  await page.goto("/servers/");
  const table = page.getByRole("table", { name: "Servers" });
  await expect(table.locator("tr[data-server]").first()).toBeVisible({ timeout: 30_000 });
  const loadMs = Date.now() - t0;
  expect(await table.locator("tr[data-server]").count()).toBeLessThan(100);

  await page.getByLabel("Search servers").fill(`${TAG}-${pad(1234 % HOSTS)}`);
  await expect(table.locator("tr[data-server]")).toHaveCount(1);
  await expect(table.locator("tr[data-server]")).toHaveAttribute("data-server", `${TAG}-${pad(1234 % HOSTS)}`);
  await expect(page.getByTestId("servers-count")).toContainText("1 of");

  await page.getByLabel("Search servers").fill("");
  await page.getByLabel("Tag").selectOption(`${TAG}-odd`);
  const odd = Math.floor(HOSTS / 2);
  await expect(page.getByTestId("servers-count")).toContainText(`${odd.toLocaleString("en")} of`);
  await page.getByLabel("Status").selectOption("reachable");
  await expect(page.getByText("No server matches")).toBeVisible();
  await page.getByLabel("Status").selectOption("");

  // Every server matches without a filter: over the limit when there are more than REMORA_MAX_BATCH_HOSTS.
  const total = (await (await request.get("/api/v1/servers", { headers: auth })).json()).servers.filter((s: { is_active: boolean }) => s.is_active).length;
  if (total > info.max_batch_hosts) {
    await page.getByLabel("Tag").selectOption("");
    await expect(page.getByRole("alert").filter({ hasText: "REMORA_MAX_BATCH_HOSTS" })).toBeVisible();
    await expect(page.getByRole("button", { name: /Run on all .* matching/ })).toBeDisabled();
    await page.getByLabel("Tag").selectOption(`${TAG}-odd`);
  }
  await shot(page, "servers-5000");

  expect(whole, "the servers page fetched every server").toEqual([]);
  watching = false; // Execute reads every server to list them.
  // Run on all matching: Execute opens with the tag as the target and says how many hosts.
  await page.getByRole("button", { name: `Run on all ${odd.toLocaleString("en")} matching` }).click();
  await expect(page).toHaveURL(/\/execute\/\?from=servers&tag=/);
  // Execute reads every server (GET /servers, 5,000 here) before it applies the prefill.
  await expect(page.getByLabel("Tag")).toHaveValue(`${TAG}-odd`, { timeout: 60_000 });
  await expect(page.getByTestId("batch-hosts")).toHaveText(`Runs on ${odd.toLocaleString("en")} hosts as one batch.`);
  await expect(page.getByTestId("execute-prefill")).toContainText(`tag ${TAG}-odd`);

  // A search prefills the matching servers by id.
  await page.goto(`/servers/?q=${TAG}-00`);
  const byName = Math.min(HOSTS, 100);
  await expect(page.getByTestId("servers-count")).toContainText(`${byName} of`);
  await page.getByRole("button", { name: `Run on all ${byName} matching` }).click();
  await expect(page.getByTestId("batch-hosts")).toHaveText(`Runs on ${byName} hosts as one batch.`, { timeout: 60_000 });
  await expect(page.getByText(`${byName} selected — runs as a batch`)).toBeVisible();

  // Execute's server checklist with every server: only the rows on screen are in the DOM.
  await page.goto("/execute/");
  const checklist = page.getByRole("group", { name: "Servers" });
  const everyServer = (await (await request.get("/api/v1/servers", { headers: auth })).json()).servers.length;
  await expect(checklist).toHaveAttribute("data-count", String(everyServer), { timeout: 60_000 });
  expect(await checklist.locator('input[type="checkbox"]').count()).toBeLessThan(100);
  results.push(`Servers page with ${total} servers: navigation to the first table rows on screen ${loadMs} ms (one run; the API filters and pages, 200 servers a page, the table is virtualised).`, "");
});

test("Execute with a batch policy on real hosts; output, groups, rerun failed, cancel", async ({ page, request }) => {
  const flow = `flow-${RUN}`;
  for (let i = 0; i < 4; i++) {
    const r = await post(request, "/api/v1/servers", { name: `${flow}-${i}`, hostname: SSHD.host, port: SSHD.port, user: SSHD.user, private_key: KEY, tags: [flow] });
    expect(r.status(), await r.text()).toBe(201);
  }
  const dead = await post(request, "/api/v1/servers", { name: `${flow}-dead`, hostname: "127.0.0.1", port: 1, user: "nobody", password: "x", tags: [flow] });
  expect(dead.status()).toBe(201);

  await page.goto("/execute/");
  await page.getByLabel("Command", { exact: true }).fill("echo hi");
  await page.getByRole("tab", { name: "Tag" }).click();
  await page.getByLabel("Tag").selectOption(flow);
  await expect(page.getByTestId("batch-hosts")).toHaveText("Runs on 5 hosts as one batch.");
  // Validated as the API validates it.
  await page.getByLabel("Max parallel").fill("0");
  await expect(page.getByText("a count must be at least 1")).toBeVisible();
  await expect(page.getByRole("button", { name: "Run", exact: true })).toBeDisabled();
  await page.getByLabel("Max parallel").fill("150%");
  await expect(page.getByText(/between 1% and 100%/)).toBeVisible();
  await page.getByLabel("Max parallel").fill("50%");
  await page.getByLabel("Fail threshold").fill("3");
  await expect(page.getByLabel("Policy summary")).toContainText("at most 3 of 5 hosts at once");
  await shot(page, "execute-batch-policy");
  const submitted = page.waitForRequest((r) => r.method() === "POST" && r.url().endsWith("/api/v1/jobs"));
  await page.getByRole("button", { name: "Run", exact: true }).click();
  const body = (await submitted).postDataJSON();
  expect(body).toMatchObject({ tag: flow, max_parallel: "50%", fail_threshold: 3, on_fail_threshold: "stop" });

  await expect(page).toHaveURL(/\/batches\/view\/\?id=/);
  const id = new URL(page.url()).searchParams.get("id")!;
  await expect(page.getByTestId("batch-progress")).toHaveText("100% done", { timeout: 90_000 });
  await expect(page.getByText("Policy: at most 3 at once · stop after 3 failed")).toBeVisible();
  await expect(page.locator('[data-count-status="completed"]')).toContainText("4");
  await expect(page.locator('[data-count-status="failed"]')).toContainText("1");
  await expect(page.locator('[data-exit="0"]')).toContainText("4");

  // Per-host output on demand.
  await page.getByRole("button", { name: `Output of ${flow}-2` }).click();
  const out = page.getByTestId("host-output");
  await expect(out.getByLabel("stdout")).toHaveText(/^hi\s*$/);
  await page.getByRole("button", { name: "Close" }).click();

  await page.getByRole("tab", { name: /Grouped output/ }).click();
  const groups = page.getByTestId("output-group");
  await expect(groups).toHaveCount(2);
  await expect(groups.first()).toContainText("4 hosts · exit 0");
  await expect(groups.first().locator("pre")).toHaveText(/^hi\s*$/);
  await shot(page, "batch-groups");

  // Rerun failed: a new batch of the one dead host.
  await page.getByRole("button", { name: "Rerun 1 failed" }).click();
  await expect(page).not.toHaveURL(new RegExp(id));
  await expect(page.getByTestId("batch-total")).toHaveText("1 host");
  await expect(page.getByText("rerun of")).toBeVisible();

  // Cancel: one at a time, a long command; the page's button stops it.
  const r = await post(request, "/api/v1/jobs", { command: "sleep", args: ["60"], tag: flow, max_parallel: 1 });
  expect(r.status(), await r.text()).toBe(201);
  const long = (await r.json()).batch_id;
  await page.goto(`/batches/view/?id=${long}`);
  await page.getByRole("button", { name: "Cancel batch" }).click();
  await expect(page.getByTestId("batch-progress")).toHaveText("100% done", { timeout: 30_000 });
  const ended = await batchHead(request, long);
  expect(ended.status).toBe("canceled");
  expect(ended.summary.completed).toBe(0);
  expect(ended.summary.canceled).toBeGreaterThanOrEqual(4);
  await expect(page.getByRole("button", { name: "Cancel batch" })).toHaveCount(0);
});

test.afterAll(() => writeBenchSection(OUT, "fleet", results));
