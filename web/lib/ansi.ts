import { AnsiUp } from "ansi_up";

/**
 * One line of output as HTML with its ANSI colours. A fresh converter per
 * line: the viewer renders lines out of order, so no state may leak from one
 * line into the next. ansi_up escapes HTML, so the result is safe to inject.
 */
export function ansiLineToHtml(text: string): string {
  if (!text.includes("\x1b")) return escapeHtml(text);
  const au = new AnsiUp();
  au.use_classes = false;
  return au.ansi_to_html(text);
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** Strip escape sequences (for width estimates and plain downloads). */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*(\x07|\x1b\\)/g, "");
}
