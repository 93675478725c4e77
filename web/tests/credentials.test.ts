import { describe, expect, it } from "vitest";
import { certificateDisplay, EXPIRING_SOON_MS, nameError, patternsError, publicKeyError, splitPatterns } from "@/lib/credentials";

const NOW = Date.parse("2026-06-01T12:00:00Z");
const H = 3600_000;
const iso = (t: number) => new Date(t).toISOString();
const cert = (after: number, before: number | "forever", status = "valid") => ({
  valid_after: iso(after),
  valid_before: before === "forever" ? "forever" : iso(before),
  status,
});

describe("certificateDisplay", () => {
  it("a certificate valid for weeks is green", () => {
    const d = certificateDisplay(cert(NOW - H, NOW + 30 * 24 * H), NOW);
    expect(d).toMatchObject({ state: "valid", tone: "green", label: "valid" });
    expect(d.detail).toContain("until 2026-07-01");
  });
  it("expiring within the window is amber with the time left", () => {
    expect(certificateDisplay(cert(NOW - H, NOW + 2 * 24 * H), NOW)).toMatchObject({ state: "expiring", tone: "amber", label: "expires in 2 d" });
    expect(certificateDisplay(cert(NOW - H, NOW + 5 * H), NOW)).toMatchObject({ state: "expiring", label: "expires in 5 h" });
    expect(certificateDisplay(cert(NOW - H, NOW + 90_000), NOW).label).toBe("expires in 2 min");
    // Just outside the window: valid.
    expect(certificateDisplay(cert(NOW - H, NOW + EXPIRING_SOON_MS + H), NOW).state).toBe("valid");
  });
  it("expired and not yet valid are red, computed from the times, not the API's stale status", () => {
    const exp = certificateDisplay(cert(NOW - 48 * H, NOW - 24 * H, "valid"), NOW);
    expect(exp).toMatchObject({ state: "expired", tone: "red", label: "expired" });
    expect(exp.detail).toMatch(/^expired 24 h ago/);
    const early = certificateDisplay(cert(NOW + 24 * H, NOW + 48 * H, "valid"), NOW);
    expect(early).toMatchObject({ state: "not_yet_valid", tone: "red", label: "not yet valid" });
    expect(early.detail).toMatch(/^not valid for another 24 h/);
  });
  it("the boundary: valid_before itself is expired (the API's now >= valid_before)", () => {
    expect(certificateDisplay(cert(NOW - H, NOW), NOW).state).toBe("expired");
    expect(certificateDisplay(cert(NOW, NOW + 30 * 24 * H), NOW).state).toBe("valid");
  });
  it("forever never expires", () => {
    expect(certificateDisplay(cert(NOW - H, "forever"), NOW)).toMatchObject({ state: "valid", label: "valid forever" });
  });
  it("falls back to the API's status when the times do not parse", () => {
    expect(certificateDisplay({ valid_after: "?", valid_before: "?", status: "expired" }, NOW)).toMatchObject({ state: "expired", tone: "red" });
    expect(certificateDisplay({ valid_after: "?", valid_before: "?", status: "not_yet_valid" }, NOW).label).toBe("not yet valid");
  });
});

describe("trusted CA patterns (the API's check_patterns)", () => {
  it("splits on lines, commas and spaces", () => {
    expect(splitPatterns("*.prod.example.com\n!db.prod.example.com, 10.0.0.?  ")).toEqual(["*.prod.example.com", "!db.prod.example.com", "10.0.0.?"]);
  });
  it("accepts positives with negations", () => {
    expect(patternsError(["*.prod.example.com", "!db.prod.example.com"])).toBeNull();
    expect(patternsError(["*"])).toBeNull();
  });
  it("refuses none, only negations, a bare !, too long, too many", () => {
    expect(patternsError([])).toMatch(/at least one/);
    expect(patternsError(["!a", "!b"])).toMatch(/add a positive one/);
    expect(patternsError(["a", "!"])).toMatch(/not a host pattern/);
    expect(patternsError(["x".repeat(256)])).toMatch(/255/);
    expect(patternsError(["x".repeat(255)])).toBeNull();
    expect(patternsError(Array.from({ length: 101 }, (_, i) => `h${i}`))).toMatch(/At most 100/);
    expect(patternsError(Array.from({ length: 100 }, (_, i) => `h${i}`))).toBeNull();
  });
});

describe("names and public keys", () => {
  it("names: 1–64 of letters, digits, - _ .", () => {
    expect(nameError("deploy-key_1.2")).toBeNull();
    expect(nameError("")).toBe("Give a name");
    expect(nameError("has space")).toMatch(/letters, digits/);
    expect(nameError("pem:1")).toMatch(/letters, digits/);
    expect(nameError("a".repeat(65))).toMatch(/1–64/);
  });
  it("a public key line, not a certificate or garbage", () => {
    expect(publicKeyError("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo host-ca")).toBeNull();
    expect(publicKeyError("ecdsa-sha2-nistp256 AAAAE2VjZHNh")).toBeNull();
    expect(publicKeyError("")).toMatch(/Paste/);
    expect(publicKeyError("hello world")).toMatch(/Not an OpenSSH public key/);
    expect(publicKeyError("ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1")).toMatch(/certificate/);
    expect(publicKeyError("ssh-ed25519 AAAAC3\nssh-ed25519 AAAAC3")).toMatch(/One key line/);
  });
});
