"use client";
import * as React from "react";
import Link from "next/link";
import { usePathname } from "next/navigation";
import { cn } from "@/lib/cn";
import { Logo, SignIn, useAuth } from "./auth";
import { EventsProvider, useLive } from "./events";
import { Shortcuts } from "./shortcuts";
import { ThemeSelect } from "./theme";
import { Button } from "./ui/button";

const NAV = [
  { href: "/", label: "Overview" },
  { href: "/jobs/", label: "Jobs" },
  { href: "/execute/", label: "Execute" },
  { href: "/templates/", label: "Templates" },
  { href: "/schedules/", label: "Schedules" },
  { href: "/notifications/", label: "Notifications" },
  { href: "/servers/", label: "Servers" },
  { href: "/credentials/", label: "Credentials" },
  { href: "/trusted-cas/", label: "Trusted CAs" },
  { href: "/workers/", label: "Workers" },
  { href: "/settings/", label: "Settings" },
];

function active(path: string, href: string) {
  const p = path.endsWith("/") ? path : `${path}/`;
  return href === "/" ? p === "/" : p.startsWith(href);
}

export function AppShell({ children }: { children: React.ReactNode }) {
  const { token, ready, signOut } = useAuth();
  const path = usePathname() ?? "/";
  if (!ready) return null;
  if (!token) return <SignIn />;
  return (
    <EventsProvider>
      <div className="flex min-h-screen flex-col md:flex-row">
        <aside className="border-b bg-card md:sticky md:top-0 md:h-screen md:w-56 md:shrink-0 md:border-b-0 md:border-r">
          <div className="flex items-center gap-2 px-4 py-3 md:py-5">
            <Logo />
            <span className="text-lg font-semibold">Remora</span>
            <LiveDot />
          </div>
          <nav aria-label="Main" className="flex gap-1 overflow-x-auto px-2 pb-2 md:flex-col md:pb-0">
            {NAV.map((n) => (
              <Link
                key={n.href}
                href={n.href}
                aria-current={active(path, n.href) ? "page" : undefined}
                className={cn(
                  "whitespace-nowrap rounded-md px-3 py-2 text-sm font-medium transition-colors",
                  active(path, n.href) ? "bg-accent text-accent-foreground" : "text-muted-foreground hover:bg-accent hover:text-foreground",
                )}
              >
                {n.label}
              </Link>
            ))}
          </nav>
          <div className="hidden gap-2 p-3 md:absolute md:bottom-0 md:flex md:w-56 md:flex-col">
            <ThemeSelect />
            <Button variant="outline" size="sm" onClick={() => window.dispatchEvent(new Event("remora-shortcuts"))}>
              Shortcuts <kbd className="rounded border px-1 font-mono text-xs">?</kbd>
            </Button>
            <Button variant="ghost" size="sm" onClick={signOut}>
              Sign out
            </Button>
          </div>
          <div className="flex gap-2 px-2 pb-2 md:hidden">
            <ThemeSelect id="theme-select-mobile" className="h-8 flex-1" />
            <Button variant="ghost" size="sm" onClick={signOut}>
              Sign out
            </Button>
          </div>
        </aside>
        <main className="min-w-0 flex-1 p-4 md:p-8">{children}</main>
      </div>
      <Shortcuts />
    </EventsProvider>
  );
}

function LiveDot() {
  const live = useLive();
  return (
    <span
      className={cn("ml-auto h-2 w-2 rounded-full", live ? "bg-emerald-500" : "bg-zinc-400")}
      title={live ? "Live updates connected" : "Live updates not connected; polling"}
      aria-label={live ? "Live updates connected" : "Live updates not connected"}
      role="img"
    />
  );
}
