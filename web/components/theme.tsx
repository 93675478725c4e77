"use client";
import * as React from "react";
import { applyTheme, storedTheme, THEME_KEY, type Theme } from "@/lib/theme";
import { Select } from "./ui/input";

const Ctx = React.createContext<{ theme: Theme; setTheme: (t: Theme) => void }>({ theme: "system", setTheme: () => {} });
export const useTheme = () => React.useContext(Ctx);

export function ThemeProvider({ children }: { children: React.ReactNode }) {
  const [theme, set] = React.useState<Theme>("system");
  React.useEffect(() => set(storedTheme()), []);
  React.useEffect(() => {
    applyTheme(theme);
    if (theme !== "system") return;
    const mq = window.matchMedia("(prefers-color-scheme: dark)");
    const on = () => applyTheme("system");
    mq.addEventListener("change", on);
    return () => mq.removeEventListener("change", on);
  }, [theme]);
  const setTheme = React.useCallback((t: Theme) => {
    window.localStorage.setItem(THEME_KEY, t);
    set(t);
  }, []);
  return <Ctx.Provider value={{ theme, setTheme }}>{children}</Ctx.Provider>;
}

export function ThemeSelect({ id = "theme-select", className }: { id?: string; className?: string }) {
  const { theme, setTheme } = useTheme();
  return (
    <Select id={id} aria-label="Theme" value={theme} onChange={(e) => setTheme(e.target.value as Theme)} className={className}>
      <option value="system">System theme</option>
      <option value="light">Light</option>
      <option value="dark">Dark</option>
    </Select>
  );
}
