import { describe, expect, it } from "vitest";
import { LogModel } from "@/lib/log-model";

describe("LogModel", () => {
  it("joins lines split across chunks and keeps streams apart", () => {
    const m = new LogModel();
    m.append("stdout", "hel");
    m.append("stderr", "oops\n");
    m.append("stdout", "lo\nworld\n");
    expect(m.stdout).toEqual(["hello", "world"]);
    expect(m.stderr).toEqual(["oops"]);
    expect(m.combined).toEqual([
      { stream: "stdout", text: "hello" },
      { stream: "stderr", text: "oops" },
      { stream: "stdout", text: "world" },
    ]);
  });

  it("keeps blank lines and an unterminated last line", () => {
    const m = new LogModel();
    m.append("stdout", "a\n\n\nb");
    expect(m.stdout).toEqual(["a", "", "", "b"]);
    m.append("stdout", "c\n");
    expect(m.stdout).toEqual(["a", "", "", "bc"]);
    expect(m.maxLen).toBe(2);
  });

  it("appends 100k lines quickly", () => {
    const m = new LogModel();
    const chunk = Array.from({ length: 1000 }, (_, i) => `line ${i}`).join("\n") + "\n";
    const t = performance.now();
    for (let i = 0; i < 100; i++) m.append("stdout", chunk);
    expect(m.stdout.length).toBe(100_000);
    expect(performance.now() - t).toBeLessThan(2000);
  });
});
