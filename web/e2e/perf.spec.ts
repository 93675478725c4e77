import { test, expect, type APIRequestContext } from "@playwright/test";
import { writeBenchSection } from "./bench-out";

// Measured, not asserted (issue 6): time to render the jobs page with 10k
// jobs in the database, and frame times while scrolling a 100k-line log.
// Runs after dashboard.spec.ts (files run in name order). Skip with REMORA_E2E_BENCH=0.
const TOKEN = process.env.REMORA_TOKEN!;
const OUT = process.env.REMORA_BENCH_OUT;
const JOBS = Number(process.env.REMORA_BENCH_JOBS ?? 10_000);
const LINES = Number(process.env.REMORA_BENCH_LINES ?? 100_000);
const auth = { Authorization: `Bearer ${TOKEN}` };

test.skip(process.env.REMORA_E2E_BENCH === "0", "benchmarks disabled");
test.describe.configure({ mode: "serial", timeout: 600_000 });

async function total(request: APIRequestContext, query: string) {
  const r = await request.get(`/api/v1/jobs?limit=1&${query}`, { headers: auth });
  expect(r.ok()).toBeTruthy();
  return (await r.json()).pagination.total as number;
}

const results: string[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

test("jobs page render time with 10k jobs", async ({ page, request }) => {
  // 20 servers nobody listens on (port 1 refuses at once), so the jobs end
  // fast as failed, without retries, and never touch a real host.
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await request.post("/api/v1/servers", {
      headers: auth,
      data: { name: `bench-void-${i}`, hostname: "127.0.0.1", port: 1, user: "nobody", password: "x", tags: ["bench"] },
    });
    expect(r.status(), await r.text()).toBe(201);
    ids.push((await r.json()).id);
  }
  const before = await total(request, "");
  const seedStart = Date.now();
  const posts = Math.ceil(JOBS / ids.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < posts) {
        const n = next++;
        const r = await request.post("/api/v1/jobs", {
          headers: auth,
          data: { command: "echo", args: [`bench ${n}`], server_ids: ids, max_retries: 0, priority: 1 },
        });
        expect(r.status()).toBe(201);
      }
    }),
  );
  const seedMs = Date.now() - seedStart;
  // Let the worker drain them so it is not competing with the browser.
  await expect
    .poll(async () => (await total(request, "status=queued")) + (await total(request, "status=running")), { timeout: 420_000, intervals: [2000] })
    .toBe(0);
  // e2e.sh raises REMORA_LIST_COUNT_CAP above the seeded count, so totals here are exact.
  const inDb = await total(request, "");
  expect(inDb).toBeGreaterThanOrEqual(before + JOBS);

  await page.goto("/");
  await page.evaluate((t) => sessionStorage.setItem("remora.token", t), TOKEN);
  const timings: Record<string, number[]> = { "25 rows": [], "200 rows": [] };
  for (const [label, limit] of [
    ["25 rows", 25],
    ["200 rows", 200],
  ] as const) {
    for (let i = 0; i < 5; i++) {
      await page.goto("/settings/");
      await expect(page.getByRole("heading", { name: "Settings" })).toBeVisible();
      const t0 = Date.now();
      await page.goto(`/jobs/?limit=${limit}`);
      await expect(page.locator("tbody tr")).toHaveCount(limit, { timeout: 30_000 });
      timings[label].push(Date.now() - t0);
    }
  }
  results.push(
    `### Jobs page with ${inDb} jobs in the database`,
    "",
    `Seeding ${JOBS} jobs through the API (${posts} batch submissions of ${ids.length} servers, 8 at a time): ${(seedMs / 1000).toFixed(1)} s.`,
    "",
    "From navigation start to the table's rows on screen (page load, sign-in check, `GET /api/v1/jobs`, render), 5 runs:",
    "",
    "| page size | median | min | max |",
    "|---|---|---|---|",
    ...Object.entries(timings).map(([k, v]) => `| ${k} | ${median(v)} ms | ${Math.min(...v)} ms | ${Math.max(...v)} ms |`),
    "",
  );
});

test("frame time while scrolling a 100k-line log", async ({ page, request }) => {
  const r = await request.post("/api/v1/jobs", {
    headers: auth,
    data: { command: `seq -f 'line %g \\033[32mok\\033[0m of the benchmark log' 1 ${LINES}`, server_id: "local-demo" },
  });
  expect(r.status(), await r.text()).toBe(201);
  const job = await r.json();
  await expect.poll(async () => (await (await request.get(`/api/v1/jobs/${job.id}`, { headers: auth })).json()).status, { timeout: 120_000 }).toBe("completed");

  await page.goto("/");
  await page.evaluate((t) => sessionStorage.setItem("remora.token", t), TOKEN);
  const t0 = Date.now();
  await page.goto(`/jobs/view/?id=${job.id}`);
  const log = page.getByTestId("log-viewer");
  await expect(log).toHaveAttribute("data-lines", String(LINES), { timeout: 120_000 });
  const loadMs = Date.now() - t0;
  await page.getByLabel("Follow").uncheck();

  // Scroll top to bottom in 600 steps, one per animation frame, and record
  // the time between frames.
  const frames: number[] = await log.evaluate(async (el) => {
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
  const rows = await log.locator(".log-line").count();
  const mean = frames.reduce((a, b) => a + b, 0) / frames.length;
  results.push(
    `### Scrolling a ${LINES.toLocaleString("en")}-line log (ANSI coloured)`,
    "",
    `Job page load until all ${LINES} lines were received over the stream: ${(loadMs / 1000).toFixed(1)} s. Rows in the DOM while scrolling: ${rows}.`,
    "",
    `Scrolled from top to bottom in ${frames.length} steps, one per frame (headless Chromium, no GPU):`,
    "",
    "| mean frame | median | p95 | max | frames over 33 ms (a frame dropped) |",
    "|---|---|---|---|---|",
    `| ${mean.toFixed(1)} ms | ${median(frames).toFixed(1)} ms | ${pct(frames, 0.95).toFixed(1)} ms | ${Math.max(...frames).toFixed(1)} ms | ${frames.filter((f) => f > 33.4).length} of ${frames.length} |`,
    "",
  );
});

test.afterAll(() => writeBenchSection(OUT, "jobs-and-log", results));
