import { describe, expect, it } from "vitest";
import { ApiError } from "@/lib/api";
import { describeCron, timeZones } from "@/lib/cron";
import { buildRunParams, checkValue, draftsToSpecs, emptyDraft, initialValues, paramErrorFromApi, specToDraft } from "@/lib/params";
import type { ParamSpec } from "@/lib/types";

describe("describeCron", () => {
  it("says a daily time with its zone", () => {
    expect(describeCron("30 2 * * *", "Europe/Berlin")).toEqual({ ok: true, text: "At 02:30, every day, Europe/Berlin" });
  });
  it("expands the API's macros", () => {
    expect(describeCron("@daily", "UTC")).toEqual({ ok: true, text: "At 00:00, every day, UTC" });
    expect(describeCron("@hourly")).toMatchObject({ ok: true, text: expect.stringMatching(/^Every hour/) });
    expect(describeCron("@weekly")).toMatchObject({ ok: true, text: expect.stringContaining("Sunday") });
  });
  it("describes weekdays and steps", () => {
    expect(describeCron("0 9 * * 1-5")).toEqual({ ok: true, text: "At 09:00, Monday through Friday" });
    expect(describeCron("*/15 * * * *")).toMatchObject({ ok: true, text: expect.stringMatching(/^Every 15 minutes/) });
  });
  it("refuses what the API refuses: not 5 fields, out of range, unknown macro, empty", () => {
    expect(describeCron("0 30 2 * * *")).toMatchObject({ ok: false, error: expect.stringContaining("5 fields") });
    expect(describeCron("61 * * * *")).toMatchObject({ ok: false, error: expect.stringMatching(/minutes/i) });
    expect(describeCron("@often")).toMatchObject({ ok: false, error: expect.stringContaining("Unknown macro") });
    expect(describeCron("   ")).toMatchObject({ ok: false });
  });
  it("lists time zones with UTC first", () => {
    const z = timeZones();
    expect(z[0]).toBe("UTC");
    expect(z.filter((x) => x === "UTC")).toHaveLength(1);
  });
});

const p = (x: Partial<ParamSpec> & Pick<ParamSpec, "name" | "type">): ParamSpec => x;

describe("checkValue (the API's check_value)", () => {
  it("integers: syntax and range", () => {
    const w = p({ name: "workers", type: "integer", min: 1, max: 16 });
    expect(checkValue(w, "4")).toBeNull();
    expect(checkValue(w, " 16 ")).toBeNull();
    expect(checkValue(w, "4.5")).toBe("`4.5` is not an integer");
    expect(checkValue(w, "abc")).toBe("`abc` is not an integer");
    expect(checkValue(w, "0")).toBe("0 is less than the minimum 1");
    expect(checkValue(w, "17")).toBe("17 is greater than the maximum 16");
    expect(checkValue(p({ name: "n", type: "integer" }), "9223372036854775808")).toMatch(/not an integer/);
  });
  it("strings: length in characters, full-match pattern, no newline", () => {
    const r = p({ name: "ref", type: "string", pattern: "[a-z]+", min: 2, max: 5 });
    expect(checkValue(r, "main")).toBeNull();
    expect(checkValue(r, "a")).toBe("shorter than 2 characters");
    expect(checkValue(r, "abcdef")).toBe("longer than 5 characters");
    expect(checkValue(r, "ma1n")).toBe("`ma1n` does not match /[a-z]+/");
    expect(checkValue(p({ name: "s", type: "string" }), "a\nb")).toBe("contains a newline (use type text)");
    expect(checkValue(p({ name: "t", type: "text" }), "a\nb")).toBeNull();
    expect(checkValue(p({ name: "s", type: "string", max: 2 }), "éé")).toBeNull();
  });
  it("a pattern JS cannot compile is left to the API", () => {
    expect(checkValue(p({ name: "who", type: "string", pattern: "(?i)[a-z]+" }), "ABC1")).toBeNull();
  });
  it("a secret's mismatch never echoes the value", () => {
    const msg = checkValue(p({ name: "k", type: "secret", pattern: "sk_.*" }), "hunter2");
    expect(msg).toBe("the value does not match /sk_.*/");
    expect(msg).not.toContain("hunter2");
  });
  it("choices and booleans", () => {
    const c = p({ name: "stage", type: "choice", choices: ["staging", "prod"] });
    expect(checkValue(c, "prod")).toBeNull();
    expect(checkValue(c, "dev")).toBe("`dev` is not one of staging, prod");
    expect(checkValue(p({ name: "b", type: "boolean" }), true)).toBeNull();
    expect(checkValue(p({ name: "b", type: "boolean" }), "maybe")).toMatch(/not a boolean/);
  });
  it("NUL bytes and the 64 KiB limit", () => {
    expect(checkValue(p({ name: "t", type: "text" }), "a\0b")).toMatch(/NUL/);
    expect(checkValue(p({ name: "t", type: "text" }), "x".repeat(64 * 1024 + 1))).toMatch(/longer than 65536 bytes/);
  });
});

describe("buildRunParams", () => {
  const specs: ParamSpec[] = [
    p({ name: "ref", type: "string", required: true }),
    p({ name: "workers", type: "integer", default: 4 as never, min: 1 }),
    p({ name: "dry_run", type: "boolean" }),
    p({ name: "notes", type: "text" }),
    p({ name: "api_key", type: "secret", required: true }),
  ];
  it("starts from the defaults", () => {
    expect(initialValues(specs)).toEqual({ ref: "", workers: "4", dry_run: false, notes: "", api_key: "" });
  });
  it("flags required parameters without a default and bad values, by name", () => {
    const r = buildRunParams(specs, { ...initialValues(specs), workers: "0" });
    expect(r.errors).toEqual({ ref: "required", workers: "0 is less than the minimum 1", api_key: "required" });
  });
  it("leaves out empty optional values and keeps the injection text verbatim", () => {
    const r = buildRunParams(specs, { ref: "$(touch /tmp/x)", workers: "", dry_run: true, notes: "", api_key: "'; rm -rf ~" });
    expect(r.errors).toEqual({});
    expect(r.params).toEqual({ ref: "$(touch /tmp/x)", dry_run: true, api_key: "'; rm -rf ~" });
  });
});

describe("paramErrorFromApi", () => {
  it("maps the API's 422 on params to the parameter", () => {
    expect(paramErrorFromApi(new ApiError(422, "invalid", "parameter `workers`: 0 is less than the minimum 1", "params"))).toEqual({
      name: "workers",
      message: "0 is less than the minimum 1",
    });
    expect(paramErrorFromApi(new ApiError(422, "invalid", "parameter `ref` is required", "params"))).toEqual({ name: "ref", message: "required" });
    expect(paramErrorFromApi(new ApiError(422, "invalid", "bad", "targets"))).toBeNull();
    expect(paramErrorFromApi(new Error("x"))).toBeNull();
  });
});

describe("draftsToSpecs (the API's check_specs)", () => {
  const d = (x: Partial<ReturnType<typeof emptyDraft>>) => ({ ...emptyDraft(), ...x });
  it("builds typed specs", () => {
    const r = draftsToSpecs([
      d({ name: "workers", type: "integer", min: "1", max: "16", default: "4", required: true }),
      d({ name: "stage", type: "choice", choices: "staging\nprod\n", default: "staging" }),
      d({ name: "dry_run", type: "boolean", default: "false" }),
      d({ name: "ref", type: "string", pattern: "[a-z]+", description: " the branch " }),
    ]);
    expect(r.errors).toEqual({});
    expect(r.specs).toEqual([
      { name: "workers", type: "integer", min: 1, max: 16, default: 4, required: true },
      { name: "stage", type: "choice", choices: ["staging", "prod"], default: "staging" },
      { name: "dry_run", type: "boolean", default: false },
      { name: "ref", type: "string", pattern: "[a-z]+", description: "the branch" },
    ]);
  });
  it("refuses what the API refuses", () => {
    const r = draftsToSpecs([
      d({ name: "1bad" }),
      d({ name: "ok" }),
      d({ name: "OK" }),
      d({ name: "c", type: "choice" }),
      d({ name: "s", type: "secret", default: "x" }),
      d({ name: "i", type: "integer", min: "5", max: "1" }),
      d({ name: "p", type: "integer", pattern: "\\d+" }),
      d({ name: "dflt", type: "integer", max: "3", default: "9" }),
      d({ name: "re", type: "string", pattern: "(?i)[a-z]+" }),
    ]);
    expect(r.errors).toEqual({
      0: expect.stringContaining("a name is"),
      2: expect.stringContaining("defined twice"),
      3: "a choice needs `choices`",
      4: expect.stringContaining("a secret has no default"),
      5: "min 5 is greater than max 1",
      6: "`pattern` applies to string, text and secret",
      7: "default: 9 is greater than the maximum 3",
    });
  });
  it("round-trips a spec through the builder", () => {
    const s: ParamSpec = { name: "stage", type: "choice", choices: ["a", "b"], default: "b" as never, required: true };
    expect(draftsToSpecs([specToDraft(s)]).specs[0]).toEqual(s);
  });
});

describe("parseEnv", () => {
  it("reads KEY=value lines; refuses bad names and REMORA_", async () => {
    const { parseEnv } = await import("@/lib/params");
    expect(parseEnv("A=1\n\nB_2=x=y\n")).toEqual({ env: { A: "1", B_2: "x=y" }, error: null });
    expect(parseEnv("nope").error).toBe("line 1: expected KEY=value");
    expect(parseEnv("REMORA_X=1").error).toMatch(/does not start with REMORA_/);
    expect(parseEnv("1A=1").error).toMatch(/a name is/);
  });
});

describe("retention toPolicy (the API's RetentionPolicy::validate)", () => {
  it("reads days per status, empty as forever", async () => {
    const { toPolicy } = await import("@/components/recurring/retention-form");
    const r = toPolicy({ completed: "30", failed: "", timed_out: "90", canceled: " " }, "1048576", true);
    expect(r.errors).toEqual({});
    expect(r.policy).toEqual({ jobs_days: { completed: 30, failed: null, timed_out: 90, canceled: null }, output_max_bytes: 1048576, export_before_delete: true });
  });
  it("refuses 0 days, more than 36500, fractions, and output under 1024 bytes", async () => {
    const { toPolicy } = await import("@/components/recurring/retention-form");
    const r = toPolicy({ completed: "0", failed: "36501", timed_out: "1.5", canceled: "" }, "100", false);
    expect(Object.keys(r.errors).sort()).toEqual(["jobs_days.completed", "jobs_days.failed", "jobs_days.timed_out", "output_max_bytes"]);
    expect(r.errors.output_max_bytes).toMatch(/at least 1024/);
  });
});
