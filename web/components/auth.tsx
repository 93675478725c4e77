"use client";
import * as React from "react";
import { useQueryClient } from "@tanstack/react-query";
import { API_BASE, getToken, setToken } from "@/lib/api";
import { Button } from "./ui/button";
import { Field, Input } from "./ui/input";
import { Card } from "./ui/card";

interface Auth {
  token: string | null;
  ready: boolean;
  signOut: () => void;
}
const Ctx = React.createContext<Auth>({ token: null, ready: false, signOut: () => {} });
export const useAuth = () => React.useContext(Ctx);

export function AuthProvider({ children }: { children: React.ReactNode }) {
  const qc = useQueryClient();
  const [token, set] = React.useState<string | null>(null);
  const [ready, setReady] = React.useState(false);
  React.useEffect(() => {
    const sync = () => set(getToken());
    sync();
    setReady(true);
    window.addEventListener("remora-auth", sync);
    return () => window.removeEventListener("remora-auth", sync);
  }, []);
  const signOut = React.useCallback(() => {
    setToken(null);
    qc.clear();
  }, [qc]);
  return <Ctx.Provider value={{ token, ready, signOut }}>{children}</Ctx.Provider>;
}

export function SignIn() {
  const [value, setValue] = React.useState("");
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const t = value.trim();
    try {
      // Any authenticated route proves the token; /workers is small.
      const res = await fetch(`${API_BASE}/api/v1/workers`, { headers: { Authorization: `Bearer ${t}` } });
      if (!res.ok) {
        const body = await res.json().catch(() => null);
        setError(body?.error?.message ?? `Sign-in failed: HTTP ${res.status}`);
        return;
      }
      setToken(t);
    } catch (err) {
      setError(`Cannot reach the Remora API: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="flex min-h-screen items-center justify-center p-4">
      <Card className="w-full max-w-sm p-6">
        <div className="mb-6 flex items-center gap-2">
          <Logo />
          <span className="text-xl font-semibold">Remora</span>
        </div>
        <h1 className="text-lg font-semibold">Sign in</h1>
        <p className="mb-4 mt-1 text-sm text-muted-foreground">
          Paste an API token. It is kept for this browser tab only and cleared when you sign out.
        </p>
        <form onSubmit={submit} className="grid gap-4">
          <Field label="API token" htmlFor="token" error={error}>
            <Input
              id="token"
              type="password"
              autoComplete="off"
              autoFocus
              required
              value={value}
              onChange={(e) => setValue(e.target.value)}
              placeholder="rmr_…"
            />
          </Field>
          <Button type="submit" disabled={busy || !value.trim()}>
            {busy ? "Checking…" : "Sign in"}
          </Button>
        </form>
      </Card>
    </div>
  );
}

export function Logo() {
  return (
    <svg width="24" height="24" viewBox="0 0 24 24" aria-hidden className="text-primary">
      <path d="M3 13c3-6 9-8 15-5l3-2-1 4c1 2 1 4-1 6-4 4-11 3-16-3z" fill="currentColor" opacity=".9" />
      <circle cx="16" cy="10.5" r="1.2" fill="hsl(var(--background))" />
    </svg>
  );
}
