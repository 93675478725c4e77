// Job output as lines, appended chunk by chunk without copying: stdout,
// stderr and the combined view (lines in arrival order) each keep an array
// whose last line may still be open. `version` bumps on every append so a
// component can re-render without cloning 100k-line arrays.

export type StreamName = "stdout" | "stderr";

export interface CombinedLine {
  stream: StreamName;
  text: string;
}

export class LogModel {
  stdout: string[] = [];
  stderr: string[] = [];
  combined: CombinedLine[] = [];
  bytes = { stdout: 0, stderr: 0 };
  version = 0;
  /** Longest line seen, in characters: the viewer's scroll width. */
  maxLen = 0;
  // Whether each stream's last line is still open (no newline yet), and
  // where that open line sits in `combined`.
  private open: Record<StreamName, number | null> = { stdout: null, stderr: null };

  append(stream: StreamName, data: string) {
    if (!data) return;
    this.bytes[stream] += data.length;
    const lines = this[stream];
    const parts = data.split("\n");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      const last = i === parts.length - 1;
      const openAt = this.open[stream];
      if (i === 0 && openAt !== null) {
        lines[lines.length - 1] += part;
        this.combined[openAt].text += part;
      } else if (!(last && part === "")) {
        lines.push(part);
        this.combined.push({ stream, text: part });
        this.open[stream] = this.combined.length - 1;
      }
      const len = lines[lines.length - 1]?.length ?? 0;
      if (len > this.maxLen) this.maxLen = len;
      // A newline follows every part but the last: that line is closed.
      if (!last) this.open[stream] = null;
    }
    this.version++;
  }

  reset() {
    this.stdout = [];
    this.stderr = [];
    this.combined = [];
    this.bytes = { stdout: 0, stderr: 0 };
    this.maxLen = 0;
    this.open = { stdout: null, stderr: null };
    this.version++;
  }
}
