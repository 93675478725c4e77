import { describe, expect, it, vi, beforeEach, afterEach } from "vitest";
import { render, screen, fireEvent, act, cleanup } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { ErrorState } from "@/components/states";
import { JobStatusBadge } from "@/components/status-badge";
import { ThroughputChart } from "@/components/throughput-chart";
import { CodeEditor } from "@/components/code-editor";
import { LogViewer } from "@/components/log-viewer";
import { Tabs } from "@/components/ui/tabs";
import { Dialog } from "@/components/ui/dialog";
import { SignIn } from "@/components/auth";
import { PemDropZone } from "@/components/pem-drop-zone";
import { ApiError, getToken } from "@/lib/api";
import { LogModel } from "@/lib/log-model";
import * as React from "react";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  sessionStorage.clear();
});

describe("ErrorState", () => {
  it("shows the API's message, code and field", () => {
    render(<ErrorState error={new ApiError(422, "invalid", "priority must be between 1 and 10", "priority")} />);
    expect(screen.getByRole("alert")).toHaveTextContent("priority must be between 1 and 10");
    expect(screen.getByRole("alert")).toHaveTextContent("invalid · field priority · HTTP 422");
  });
});

describe("JobStatusBadge", () => {
  it("renders the status in words with a data attribute", () => {
    render(<JobStatusBadge status="timed_out" />);
    expect(screen.getByText("timed out")).toHaveAttribute("data-status", "timed_out");
  });
});

describe("ThroughputChart", () => {
  it("labels the chart with the totals", () => {
    const points = [
      { minute: "2026-01-01T00:00:00Z", completed: 3, failed: 1, canceled: 0, total: 4 },
      { minute: "2026-01-01T00:01:00Z", completed: 5, failed: 0, canceled: 0, total: 5 },
    ];
    render(<ThroughputChart points={points} />);
    expect(screen.getByRole("img", { name: /9 in total, at most 5 in one minute/ })).toBeInTheDocument();
  });
});

describe("CodeEditor", () => {
  it("numbers lines and indents with Tab", () => {
    function Harness() {
      const [v, setV] = React.useState("a\nb\nc");
      return <CodeEditor id="ed" value={v} onChange={setV} aria-label="Script" />;
    }
    const { container } = render(<Harness />);
    expect(container.querySelectorAll("[data-line]")).toHaveLength(3);
    const ta = screen.getByLabelText("Script") as HTMLTextAreaElement;
    ta.setSelectionRange(0, 0);
    fireEvent.keyDown(ta, { key: "Tab" });
    expect(ta.value).toBe("  a\nb\nc");
  });
});

describe("Tabs", () => {
  it("moves between tabs with arrow keys", () => {
    const onChange = vi.fn();
    render(
      <Tabs label="Output" value="a" onChange={onChange} items={[{ value: "a", label: "A" }, { value: "b", label: "B" }]} />,
    );
    expect(screen.getByRole("tab", { name: "A" })).toHaveAttribute("aria-selected", "true");
    fireEvent.keyDown(screen.getByRole("tab", { name: "A" }), { key: "ArrowRight" });
    expect(onChange).toHaveBeenCalledWith("b");
  });
});

describe("Dialog", () => {
  it("closes on Escape", () => {
    const onClose = vi.fn();
    render(
      <Dialog open onClose={onClose} title="Delete web-1?">
        <button>ok</button>
      </Dialog>,
    );
    expect(screen.getByRole("dialog", { name: "Delete web-1?" })).toBeInTheDocument();
    fireEvent.keyDown(document, { key: "Escape" });
    expect(onClose).toHaveBeenCalled();
  });
  it("closes only the innermost of two open dialogs on Escape", () => {
    function Nested() {
      const [outer, setOuter] = React.useState(true);
      const [inner, setInner] = React.useState(true);
      return (
        <Dialog open={outer} onClose={() => setOuter(false)} title="Test connection">
          <Dialog open={inner} onClose={() => setInner(false)} title="Accept host key?">
            <button>accept</button>
          </Dialog>
        </Dialog>
      );
    }
    render(<Nested />);
    fireEvent.keyDown(document, { key: "Escape" });
    expect(screen.queryByRole("dialog", { name: "Accept host key?" })).not.toBeInTheDocument();
    expect(screen.getByRole("dialog", { name: "Test connection" })).toBeInTheDocument();
    fireEvent.keyDown(document, { key: "Escape" });
    expect(screen.queryByRole("dialog", { name: "Test connection" })).not.toBeInTheDocument();
  });
});

describe("LogViewer", () => {
  beforeEach(() => {
    // jsdom has no layout: give the scroller a size so the virtualiser renders rows.
    vi.spyOn(HTMLElement.prototype, "clientHeight", "get").mockReturnValue(400);
    vi.spyOn(HTMLElement.prototype, "clientWidth", "get").mockReturnValue(800);
  });
  it("renders only a window of a 100k-line log, with ANSI colours", () => {
    const m = new LogModel();
    m.append("stdout", "\x1b[32mgreen\x1b[0m\n");
    m.append("stdout", Array.from({ length: 100_000 }, (_, i) => `line ${i}`).join("\n") + "\n");
    m.append("stderr", "bad\n");
    render(<LogViewer model={m} version={m.version} tab="combined" follow={false} onFollowChange={() => {}} height={400} />);
    const log = screen.getByRole("log");
    expect(log).toHaveAttribute("data-lines", "100002");
    const rows = log.querySelectorAll(".log-line");
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(200);
    expect(log.innerHTML).toContain("color:rgb(0,187,0)");
  });
  it("shows the stderr tab on its own", () => {
    const m = new LogModel();
    m.append("stdout", "out\n");
    m.append("stderr", "err\n");
    render(<LogViewer model={m} version={m.version} tab="stderr" follow={false} onFollowChange={() => {}} height={400} />);
    expect(screen.getByRole("log")).toHaveAttribute("data-lines", "1");
  });
});

describe("SignIn", () => {
  it("shows the API's message for a bad token and keeps a good one in sessionStorage", async () => {
    const fetchMock = vi
      .fn()
      .mockResolvedValueOnce(new Response(JSON.stringify({ error: { code: "unauthorized", message: "the token is invalid or was revoked" } }), { status: 401, headers: { "content-type": "application/json" } }))
      .mockResolvedValueOnce(new Response(JSON.stringify({ workers: [] }), { status: 200, headers: { "content-type": "application/json" } }));
    vi.stubGlobal("fetch", fetchMock);
    render(<SignIn />);
    fireEvent.change(screen.getByLabelText("API token"), { target: { value: "nope" } });
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Sign in" })));
    expect(await screen.findByRole("alert")).toHaveTextContent("the token is invalid or was revoked");
    expect(getToken()).toBeNull();
    fireEvent.change(screen.getByLabelText("API token"), { target: { value: "rmr_good" } });
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Sign in" })));
    expect(getToken()).toBe("rmr_good");
    expect(fetchMock.mock.calls[1][1].headers.Authorization).toBe("Bearer rmr_good");
  });
});

describe("PemDropZone", () => {
  it("uploads a dropped file as multipart `file` and shows its fingerprint", async () => {
    sessionStorage.setItem("remora.token", "t");
    const fetchMock = vi.fn().mockResolvedValue(
      new Response(JSON.stringify({ id: "p1", key_type: "rsa", fingerprint: "SHA256:abc", size: 1700, created_at: "2026-01-01T00:00:00Z" }), {
        status: 201,
        headers: { "content-type": "application/json" },
      }),
    );
    vi.stubGlobal("fetch", fetchMock);
    function Harness() {
      const [v, setV] = React.useState<null | { id: string; key_type: string; fingerprint: string; size: number; created_at: string }>(null);
      return <PemDropZone value={v} onUploaded={setV} />;
    }
    const qc = new QueryClient();
    render(
      <QueryClientProvider client={qc}>
        <Harness />
      </QueryClientProvider>,
    );
    const file = new File(["-----BEGIN RSA PRIVATE KEY-----"], "id_rsa.pem");
    await act(async () => fireEvent.drop(screen.getByRole("button", { name: /PEM key file/ }), { dataTransfer: { files: [file] } }));
    expect(await screen.findByTestId("pem-uploaded")).toHaveTextContent("SHA256:abc");
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe("/api/v1/pem-files");
    expect((init.body as FormData).get("file")).toBeInstanceOf(File);
    expect(init.headers.Authorization).toBe("Bearer t");
  });
});
