"use client";
import * as React from "react";
import { useRouter } from "next/navigation";
import { Dialog } from "./ui/dialog";
import { useTheme } from "./theme";

export const SHORTCUTS: { keys: string; label: string }[] = [
  { keys: "?", label: "Show this list of shortcuts" },
  { keys: "g o", label: "Go to Overview" },
  { keys: "g j", label: "Go to Jobs" },
  { keys: "g e", label: "Go to Execute" },
  { keys: "g s", label: "Go to Servers" },
  { keys: "g m", label: "Go to Templates" },
  { keys: "g c", label: "Go to Schedules (cron)" },
  { keys: "g n", label: "Go to Notifications" },
  { keys: "g w", label: "Go to Workers" },
  { keys: "g t", label: "Go to Settings (tokens)" },
  { keys: "n", label: "New job (Execute)" },
  { keys: "/", label: "Focus the search box" },
  { keys: "t", label: "Cycle theme: system → light → dark" },
  { keys: "f", label: "Job page: toggle follow of the log" },
  { keys: "Esc", label: "Close a dialog" },
];

const GO: Record<string, string> = { o: "/", j: "/jobs/", e: "/execute/", s: "/servers/", w: "/workers/", t: "/settings/", m: "/templates/", c: "/schedules/", n: "/notifications/" };

function typing(e: KeyboardEvent) {
  const t = e.target as HTMLElement | null;
  return !!t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
}

export function Shortcuts() {
  const router = useRouter();
  const { theme, setTheme } = useTheme();
  const [open, setOpen] = React.useState(false);
  const prefix = React.useRef<number>(0);
  React.useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey || typing(e) || document.querySelector('[role="dialog"]')) return;
      if (e.key === "?") {
        e.preventDefault();
        setOpen(true);
        return;
      }
      if (prefix.current && Date.now() - prefix.current < 1500 && GO[e.key]) {
        prefix.current = 0;
        e.preventDefault();
        router.push(GO[e.key]);
        return;
      }
      prefix.current = 0;
      if (e.key === "g") prefix.current = Date.now();
      else if (e.key === "n") router.push("/execute/");
      else if (e.key === "t") setTheme(theme === "system" ? "light" : theme === "light" ? "dark" : "system");
      else if (e.key === "/") {
        const el = document.querySelector<HTMLInputElement>("[data-search]");
        if (el) {
          e.preventDefault();
          el.focus();
        }
      }
    };
    const openEv = () => setOpen(true);
    window.addEventListener("keydown", onKey);
    window.addEventListener("remora-shortcuts", openEv);
    return () => {
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("remora-shortcuts", openEv);
    };
  }, [router, theme, setTheme]);
  return (
    <Dialog open={open} onClose={() => setOpen(false)} title="Keyboard shortcuts">
      <dl className="grid grid-cols-[auto_1fr] gap-x-6 gap-y-2 text-sm">
        {SHORTCUTS.map((s) => (
          <React.Fragment key={s.keys}>
            <dt>
              {s.keys.split(" ").map((k) => (
                <kbd key={k} className="mr-1 rounded border bg-muted px-1.5 py-0.5 font-mono text-xs">
                  {k}
                </kbd>
              ))}
            </dt>
            <dd className="text-muted-foreground">{s.label}</dd>
          </React.Fragment>
        ))}
      </dl>
    </Dialog>
  );
}
