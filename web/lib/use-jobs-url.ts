"use client";
// The jobs page's filters, kept in the URL (shareable, survives a reload):
// the parsed state, a setter that patches the query string, and a reset.

import * as React from "react";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { patchJobsUrl, readJobsUrl } from "./jobs-list";

export function useJobsUrl() {
  const sp = useSearchParams();
  const router = useRouter();
  const pathname = usePathname();
  const state = readJobsUrl(new URLSearchParams(sp.toString()));
  const set = React.useCallback(
    (patch: Record<string, string | number | undefined>) => {
      const next = patchJobsUrl(new URLSearchParams(sp.toString()), patch);
      router.replace(`${pathname}?${next.toString()}`, { scroll: false });
    },
    [sp, router, pathname],
  );
  const clear = React.useCallback(() => router.replace(pathname), [router, pathname]);
  return { state, set, clear };
}
