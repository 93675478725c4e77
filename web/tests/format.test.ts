import { describe, expect, it } from "vitest";
import { csvField, jobsToCsv } from "@/lib/csv";
import { formatDuration, jobDurationMs, jobLabel, parseArgs } from "@/lib/format";
import { ansiLineToHtml } from "@/lib/ansi";
import { job } from "./fixtures";

describe("formatting", () => {
  it("labels commands with quoted args and scripts by their first line", () => {
    expect(jobLabel(job())).toBe("echo 'hello world'");
    expect(jobLabel(job({ kind: "script", script: "#!/bin/sh\n\nuptime\n", shell: "/bin/sh" }))).toBe("/bin/sh script: uptime");
  });
  it("computes durations", () => {
    expect(jobDurationMs(job())).toBe(2500);
    expect(formatDuration(2500)).toBe("2.5 s");
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(125_000)).toBe("2m 5s");
  });
  it("parses one argument per line", () => {
    expect(parseArgs("a b\n\nc\n")).toEqual(["a b", "c"]);
  });
});

describe("CSV export", () => {
  it("quotes fields and defuses formulas", () => {
    expect(csvField('say "hi", ok')).toBe('"say ""hi"", ok"');
    expect(csvField("=1+1")).toBe("'=1+1");
    expect(csvField(null)).toBe("");
  });
  it("writes a header and one row per job with server names", () => {
    const csv = jobsToCsv([job()], (id) => (id === "s1" ? "web-1" : id));
    const [head, row] = csv.trim().split("\r\n");
    expect(head.split(",")[0]).toBe("id");
    expect(row).toContain("web-1");
    expect(row).toContain("\"echo 'hello world'\"".replace(/"/g, "") );
    expect(row).toContain(",2500,");
  });
});

describe("ANSI", () => {
  it("colours escape sequences and escapes HTML", () => {
    expect(ansiLineToHtml("\x1b[31mred\x1b[0m <b>")).toContain("color:rgb(187,0,0)");
    expect(ansiLineToHtml("<script>")).toBe("&lt;script&gt;");
  });
});
