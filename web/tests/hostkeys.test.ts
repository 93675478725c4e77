import { describe, expect, it } from "vitest";
import {
  acceptBody,
  acceptable,
  chainText,
  defaultSelection,
  guessFormat,
  hops,
  importedIds,
  jumpChain,
  reviewState,
  stateCounts,
  storedKeys,
  keyTypeNote,
  toggle,
  toggleState,
  type ImportResult,
  type ScannedKey,
} from "@/lib/hostkeys";

const FP = (c: string) => `SHA256:${c.repeat(43)}`;
const key = (id: string, status: string, presented: string | null, pinned: string | null = null): ScannedKey => ({
  server_id: id,
  name: `n-${id}`,
  status,
  presented,
  pinned,
  first_seen_at: null,
  error: presented ? null : "connection refused",
});

const keys = [key("a", "unpinned", FP("a")), key("b", "mismatch", FP("b"), FP("x")), key("c", "match", FP("c"), FP("c")), key("d", "error", null), key("e", "unpinned", FP("e"))];

describe("host-key review selection", () => {
  it("names the scan's states as the review does", () => {
    expect(keys.map(reviewState)).toEqual(["new", "mismatch", "matches", "unreachable", "new"]);
    expect(reviewState({ status: "stored" })).toBe("not scanned");
    expect(stateCounts(keys)).toEqual({ new: 2, matches: 1, mismatch: 1, unreachable: 1, "not scanned": 0 });
  });

  it("ticks new keys by default, never a mismatch, a match or an unreachable host", () => {
    expect([...defaultSelection(keys)].sort()).toEqual(["a", "e"]);
  });

  it("only lets hosts with a presented key that differs be ticked", () => {
    expect(keys.map(acceptable)).toEqual([true, true, false, false, true]);
    let sel = defaultSelection(keys);
    sel = toggle(keys, sel, "b", true);
    expect(sel.has("b")).toBe(true);
    sel = toggle(keys, sel, "c", true);
    sel = toggle(keys, sel, "d", true);
    sel = toggle(keys, sel, "zz", true);
    expect([...sel].sort()).toEqual(["a", "b", "e"]);
    sel = toggle(keys, sel, "a", false);
    expect([...sel].sort()).toEqual(["b", "e"]);
    expect([...toggleState(keys, sel, "new", false)]).toEqual(["b"]);
    expect([...toggleState(keys, new Set(), "mismatch", true)]).toEqual(["b"]);
  });

  it("accepts exactly the reviewed fingerprints of the ticked hosts", () => {
    const sel = toggle(keys, defaultSelection(keys), "b", true);
    expect(acceptBody(keys, sel)).toEqual({
      keys: [
        { server: "a", fingerprint: FP("a") },
        { server: "b", fingerprint: FP("b") },
        { server: "e", fingerprint: FP("e") },
      ],
    });
    // A ticked id that is not acceptable (set by hand) is still left out.
    expect(acceptBody(keys, new Set(["c", "d"]))).toEqual({ keys: [] });
  });

  it("shows a read-only token the stored pins and pending mismatches, nothing acceptable", () => {
    const stored = storedKeys([
      { id: "p", name: "pinned", host_key_fingerprint: FP("p") },
      { id: "m", name: "moved", host_key_fingerprint: FP("p"), host_key_presented: FP("q") },
      { id: "u", name: "fresh" },
    ]);
    expect(stored.map(reviewState)).toEqual(["not scanned", "mismatch", "not scanned"]);
    expect(stored[1].presented).toBe(FP("q"));
    expect([...defaultSelection(stored)]).toEqual([]);
  });
});

it("says what a one-server scan tells of the pinned key's type", () => {
  expect(keyTypeNote({ status: "match", key_type: "ssh-ed25519" })).toBe("ssh-ed25519 (read from the host, which presents the pinned key)");
  expect(keyTypeNote({ status: "mismatch", key_type: "ssh-rsa" })).toMatch(/^unknown: .*ssh-rsa key that is not the pinned one/);
  expect(keyTypeNote({ status: "unpinned", key_type: "ssh-ed25519" })).toContain("nothing pinned");
  expect(keyTypeNote({ status: "error", key_type: null, error: "connection refused" })).toBe("could not read it: connection refused");
});

describe("jump chains", () => {
  const servers = [
    { id: "A", name: "bastion" },
    { id: "B", name: "inner", jump_server_id: "A" },
    { id: "C", name: "deep", jump_server_id: "B" },
    { id: "L1", name: "loop1", jump_server_id: "L2" },
    { id: "L2", name: "loop2", jump_server_id: "L1" },
  ];
  it("renders target ← B ← A", () => {
    const c = jumpChain(servers, { id: "T", name: "target" }, "B");
    expect(chainText(c)).toBe("target ← inner ← bastion");
    expect(hops(c)).toBe(2);
    expect(chainText(jumpChain(servers, servers[2], "B"))).toBe("deep ← inner ← bastion");
  });
  it("is just the target without a jump host", () => {
    expect(chainText(jumpChain(servers, { name: "solo" }, ""))).toBe("solo");
    expect(chainText(jumpChain(servers, { name: "" }, null))).toBe("(this server)");
  });
  it("marks a loop back to the target or inside the chain", () => {
    const self = jumpChain(servers, servers[0], "C");
    expect(self.loop).toBe(true);
    expect(chainText(self)).toBe("bastion ← deep ← inner ← bastion");
    const inner = jumpChain(servers, { name: "t" }, "L1");
    expect(inner.loop).toBe(true);
    expect(chainText(inner)).toBe("t ← loop1 ← loop2 ← loop1");
  });
  it("names an unknown hop", () => {
    const c = jumpChain([{ id: "X", name: "x", jump_server_id: "0123456789ab" }], { name: "t" }, "X");
    expect(c.unknown).toBe("0123456789ab");
    expect(chainText(c)).toBe("t ← x ← (unknown 01234567)");
    expect(hops(c)).toBe(2);
  });
});

describe("import format guess", () => {
  it("goes by the file name first", () => {
    expect(guessFormat("hosts.csv", "")).toBe("csv");
    expect(guessFormat("/home/me/.ssh/known_hosts", "")).toBe("known_hosts");
    expect(guessFormat("config", "")).toBe("ssh_config");
    expect(guessFormat("inventory.yml", "")).toBe("ansible");
    expect(guessFormat("hosts", "")).toBe("ansible");
  });
  it("else by the content", () => {
    expect(guessFormat(null, "# mine\nHost web1\n  HostName 10.0.0.1\n")).toBe("ssh_config");
    expect(guessFormat(null, "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\n")).toBe("known_hosts");
    expect(guessFormat(null, "|1|abc=|def= ssh-ed25519 AAAA\n")).toBe("known_hosts");
    expect(guessFormat(null, "[web]\nweb1 ansible_host=10.0.0.1\n")).toBe("ansible");
    expect(guessFormat(null, "all:\n  hosts:\n")).toBe("ansible");
    expect(guessFormat(null, "name,hostname,port\nweb1,10.0.0.1,22\n")).toBe("csv");
    expect(guessFormat(null, "")).toBeNull();
    expect(guessFormat(null, "hello world")).toBeNull();
  });
});

it("reviews the servers an import named, once each", () => {
  const r = {
    rows: [
      { line: 1, name: "a", action: "create", server_id: "1", reasons: [] },
      { line: 2, name: "a", action: "update", server_id: "1", reasons: [] },
      { line: 3, name: "b", action: "skip", server_id: "2", reasons: [] },
      { line: 4, name: "c", action: "create", server_id: null, reasons: [] },
    ],
  } as unknown as ImportResult;
  expect(importedIds(r)).toEqual(["1", "2"]);
});
