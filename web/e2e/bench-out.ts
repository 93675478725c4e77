// The e2e benchmark file (REMORA_BENCH_OUT, web/benchmarks.md under `make
// web-benchmarks`): each spec replaces its own section and keeps the others'.
import fs from "node:fs";
import os from "node:os";

const head = () => [
  "# Dashboard benchmarks",
  "",
  `Measured by \`web/scripts/e2e.sh\` (Playwright, Debian Chromium headless, 1440×900) against \`remora up --demo\` with SQLite, on ${new Date().toISOString().slice(0, 10)}; ${os.cpus().length} cores. Measured, not asserted.`,
  "",
];

/** Write `lines` as the section `key` of the benchmark file `out` (no-op without `out`). */
export function writeBenchSection(out: string | undefined, key: string, lines: string[]) {
  if (!out || lines.length === 0) return;
  const open = (k: string) => `<!-- bench:${k} -->`;
  const close = (k: string) => `<!-- /bench:${k} -->`;
  const old = fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "";
  // Sections in file order; a file without markers (older format) is replaced whole.
  const sections: [string, string][] = [];
  const re = /<!-- bench:([\w-]+) -->\n([\s\S]*?)<!-- \/bench:\1 -->/g;
  for (let m = re.exec(old); m; m = re.exec(old)) sections.push([m[1], m[2]]);
  const body = lines.join("\n") + "\n";
  const i = sections.findIndex(([k]) => k === key);
  if (i >= 0) sections[i][1] = body;
  else sections.push([key, body]);
  const text = [...head(), ...sections.map(([k, b]) => `${open(k)}\n${b}${close(k)}\n`)].join("\n");
  fs.writeFileSync(out, text);
}
