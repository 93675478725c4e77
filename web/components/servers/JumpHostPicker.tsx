"use client";
// The server form's jump host: pick another server to reach this one through (searchable), with
// the chain it makes ("target ← B ← A") and the API's refusal (loop, too deep) on the field.
import * as React from "react";
import { useQuery } from "@tanstack/react-query";
import { serversQuery } from "@/lib/queries";
import { chainText, jumpChain } from "@/lib/hostkeys";
import type { Server } from "@/lib/types";
import { Button } from "../ui/button";
import { Input, Label } from "../ui/input";

const SHOWN = 8;

export function JumpHostPicker({
  server,
  name,
  value,
  onChange,
  error,
}: {
  /** The server being edited (null while creating). */
  server: Server | null;
  /** Its name as typed (for the chain). */
  name: string;
  /** The jump host's id, or "" for none. */
  value: string;
  onChange: (id: string) => void;
  error?: string | null;
}) {
  const all = useQuery(serversQuery()).data?.servers ?? [];
  const [q, setQ] = React.useState("");
  const [open, setOpen] = React.useState(false);
  // The list closes a moment after the field loses focus (so a click on an option lands first);
  // focusing or typing again cancels that, so a late blur never closes a list being typed into.
  const closing = React.useRef<ReturnType<typeof setTimeout> | null>(null);
  const keepOpen = () => {
    if (closing.current) clearTimeout(closing.current);
    closing.current = null;
    setOpen(true);
  };
  React.useEffect(() => () => {
    if (closing.current) clearTimeout(closing.current);
  }, []);
  const current = all.find((s) => s.id === value);
  const needle = q.trim().toLowerCase();
  const matches = all
    .filter((s) => s.id !== server?.id && (!needle || s.name.toLowerCase().includes(needle) || s.hostname.toLowerCase().includes(needle)))
    .slice(0, SHOWN);
  const chain = jumpChain(all, { id: server?.id, name: name.trim() || "this server" }, value);
  const listId = "srv-jump-list";
  return (
    <div className="grid gap-1.5" data-testid="jump-picker">
      <div className="flex items-baseline gap-2">
        <Label htmlFor="srv-jump">Jump host</Label>
        {current ? (
          <span className="text-sm text-muted-foreground" data-testid="jump-selected">
            {current.name} ({current.user}@{current.hostname}:{current.port})
          </span>
        ) : null}
      </div>
      <div className="flex gap-2">
        <div className="relative flex-1">
          <Input
            id="srv-jump"
            role="combobox"
            aria-expanded={open}
            aria-controls={listId}
            aria-describedby="srv-jump-msg"
            aria-invalid={error ? true : undefined}
            autoComplete="off"
            placeholder={current ? "Type to pick another server" : "None: connect directly. Type to search servers"}
            value={q}
            onChange={(e) => {
              setQ(e.target.value);
              keepOpen();
            }}
            onFocus={keepOpen}
            onBlur={() => {
              closing.current = setTimeout(() => setOpen(false), 150);
            }}
            onKeyDown={(e) => {
              if (e.key === "Enter" && open && matches[0]) {
                e.preventDefault();
                onChange(matches[0].id);
                setQ("");
                setOpen(false);
              }
            }}
          />
          {open && (needle || !current) ? (
            <ul id={listId} role="listbox" aria-label="Jump host candidates" className="absolute z-20 mt-1 max-h-60 w-full overflow-auto rounded-md border bg-card shadow-md">
              {matches.length ? (
                matches.map((s) => (
                  <li
                    key={s.id}
                    role="option"
                    aria-selected={s.id === value}
                    className="cursor-pointer px-3 py-1.5 text-sm hover:bg-accent"
                    onMouseDown={(e) => {
                      e.preventDefault();
                      onChange(s.id);
                      setQ("");
                      setOpen(false);
                    }}
                  >
                    <span className="font-medium">{s.name}</span>{" "}
                    <span className="font-mono text-xs text-muted-foreground">
                      {s.user}@{s.hostname}:{s.port}
                    </span>
                  </li>
                ))
              ) : (
                <li className="px-3 py-1.5 text-sm text-muted-foreground">No server matches</li>
              )}
            </ul>
          ) : null}
        </div>
        {value ? (
          <Button variant="outline" onClick={() => onChange("")} aria-label="No jump host">
            Clear
          </Button>
        ) : null}
      </div>
      {error ? (
        <p className="text-xs text-destructive" role="alert">
          {error}
        </p>
      ) : null}
      <p id="srv-jump-msg" className="text-xs text-muted-foreground">
        {value ? (
          <>
            Chain: <span className="font-mono" data-testid="jump-chain-preview">{chainText(chain)}</span>
            {chain.loop ? " (loops: the API will refuse it)" : ""}
          </>
        ) : (
          "Connects directly."
        )}
      </p>
    </div>
  );
}
