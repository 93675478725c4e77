import { describe, expect, it } from "vitest";
import { SseParser } from "@/lib/sse";

describe("SseParser", () => {
  it("parses events split at any byte, with ids and multi-line data", () => {
    const text = 'event: status\ndata: {"a":1}\n\n: keep-alive\n\nevent: output\nid: 5:0\ndata: line1\ndata: line2\n\n';
    for (let cut = 0; cut < text.length; cut++) {
      const p = new SseParser();
      const evs = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut))];
      expect(evs).toEqual([
        { event: "status", data: '{"a":1}', id: undefined },
        { event: "output", data: "line1\nline2", id: "5:0" },
      ]);
      expect(p.lastId).toBe("5:0");
    }
  });

  it("accepts CRLF line ends", () => {
    const p = new SseParser();
    expect(p.feed("data: x\r\n\r\n")).toEqual([{ event: "message", data: "x", id: undefined }]);
  });
});
