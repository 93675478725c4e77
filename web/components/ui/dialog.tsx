"use client";
import * as React from "react";
import { cn } from "@/lib/cn";

/** Open dialogs, innermost (most recently opened) last: Escape closes only that one. */
const openDialogs: { id: symbol; el: HTMLElement | null }[] = [];

/** A modal dialog: focus moves in, Escape and the backdrop close it. */
export function Dialog({
  open,
  onClose,
  title,
  description,
  children,
  className,
}: {
  open: boolean;
  onClose: () => void;
  title: string;
  description?: React.ReactNode;
  children: React.ReactNode;
  className?: string;
}) {
  const ref = React.useRef<HTMLDivElement>(null);
  const id = React.useId();
  // The latest onClose, read by the Escape handler: the effect below runs only when the dialog
  // opens or closes. Depending on onClose (a new function at each parent render) re-ran it on every
  // render and moved the focus back to the first field while the user was typing elsewhere.
  const closeRef = React.useRef(onClose);
  React.useEffect(() => {
    closeRef.current = onClose;
  }, [onClose]);
  React.useEffect(() => {
    if (!open) return;
    const prev = document.activeElement as HTMLElement | null;
    const el = ref.current;
    const first = el?.querySelector<HTMLElement>("input, textarea, select, button:not([data-close])");
    (first ?? el)?.focus();
    const me = Symbol("dialog");
    // React runs a child's effect before its parent's: a dialog nested in another and opened with
    // it goes above it, not below.
    const under = openDialogs.findIndex((d) => el && d.el && el.contains(d.el));
    openDialogs.splice(under < 0 ? openDialogs.length : under, 0, { id: me, el });
    const onKey = (e: KeyboardEvent) => {
      // Every open dialog listens on document; only the innermost answers.
      if (e.key === "Escape" && openDialogs[openDialogs.length - 1]?.id === me) {
        e.stopPropagation();
        closeRef.current();
      }
    };
    document.addEventListener("keydown", onKey, true);
    return () => {
      document.removeEventListener("keydown", onKey, true);
      const i = openDialogs.findIndex((d) => d.id === me);
      if (i >= 0) openDialogs.splice(i, 1);
      prev?.focus?.();
    };
  }, [open]);
  if (!open) return null;
  return (
    <div className="fixed inset-0 z-50 flex items-start justify-center overflow-y-auto bg-black/50 p-4 sm:items-center" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        ref={ref}
        role="dialog"
        aria-modal="true"
        aria-labelledby={`${id}-title`}
        tabIndex={-1}
        // A width given in className replaces the default (both in one class list: the CSS order, not the
        // list's, would pick the winner, and Tailwind sorts max-w-lg after max-w-2xl / 3xl).
        className={cn("relative w-full rounded-lg border bg-card p-5 text-card-foreground shadow-lg outline-none", /\bmax-w-/.test(className ?? "") ? null : "max-w-lg", className)}
      >
        <div className="mb-4 pr-8">
          <h2 id={`${id}-title`} className="text-lg font-semibold">
            {title}
          </h2>
          {description ? <div className="mt-1 text-sm text-muted-foreground">{description}</div> : null}
        </div>
        <button
          data-close
          aria-label="Close"
          className="absolute right-3 top-3 rounded p-1 text-muted-foreground hover:bg-accent"
          onClick={onClose}
        >
          ✕
        </button>
        {children}
      </div>
    </div>
  );
}
