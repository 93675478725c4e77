// Server-sent events over fetch, so the token travels in the Authorization
// header (never in a URL that ends up in logs). Parses the text/event-stream
// format, remembers the last event id and resumes with Last-Event-ID after a
// dropped connection, with capped backoff.

import { authHeaders, errorFrom, url, ApiError } from "./api";

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Incremental parser for the event-stream format; feed it text, get events. */
export class SseParser {
  private buf = "";
  private event = "";
  private data: string[] = [];
  private id: string | undefined;
  lastId: string | undefined;

  feed(text: string): SseEvent[] {
    this.buf += text;
    const out: SseEvent[] = [];
    let nl: number;
    while ((nl = this.buf.search(/\r\n|\n|\r/)) >= 0) {
      const line = this.buf.slice(0, nl);
      const sepLen = this.buf.startsWith("\r\n", nl) ? 2 : 1;
      this.buf = this.buf.slice(nl + sepLen);
      if (line === "") {
        if (this.data.length > 0) {
          if (this.id !== undefined) this.lastId = this.id;
          out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
        }
        this.event = "";
        this.data = [];
        this.id = undefined;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.event = value;
      else if (field === "data") this.data.push(value);
      else if (field === "id") this.id = value;
    }
    return out;
  }
}

export interface StreamOptions {
  onEvent: (e: SseEvent) => void;
  /** Called with true once connected, false when the connection drops. */
  onState?: (connected: boolean, error?: ApiError) => void;
  /** Return true to stop for good (e.g. the job reached a final status). */
  done?: () => boolean;
  signal: AbortSignal;
}

export async function streamEvents(path: string, opts: StreamOptions): Promise<void> {
  let lastId: string | undefined;
  let delay = 500;
  while (!opts.signal.aborted && !opts.done?.()) {
    try {
      const headers: Record<string, string> = { ...authHeaders(), Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const res = await fetch(url(path), { headers, signal: opts.signal, cache: "no-store" });
      if (!res.ok || !res.body) {
        const err = await errorFrom(res);
        opts.onState?.(false, err);
        // A missing route or a bad token will not fix itself by retrying fast.
        if (res.status === 404 || res.status === 401 || res.status === 403) return;
        throw err;
      }
      opts.onState?.(true);
      delay = 500;
      const parser = new SseParser();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const ev of parser.feed(value)) opts.onEvent(ev);
        if (parser.lastId) lastId = parser.lastId;
      }
      opts.onState?.(false);
    } catch (e) {
      if (opts.signal.aborted) return;
      opts.onState?.(false, e instanceof ApiError ? e : undefined);
    }
    if (opts.done?.() || opts.signal.aborted) return;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}
