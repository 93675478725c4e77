"use client";
// The servers page's writes: connection test, bulk check, delete, accepting a
// changed host key. Each refreshes the servers list.

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "./api";
import { queryKeys } from "./query-keys";
import type { BulkStatus, Server, ServerCheck } from "./types";

export function useServerActions({ onChecked, onCheckError, onDeleted, onAccepted }: {
  onChecked: (r: BulkStatus) => void;
  onCheckError: (e: unknown) => void;
  onDeleted: () => void;
  onAccepted: () => void;
}) {
  const qc = useQueryClient();
  const refresh = () => qc.invalidateQueries({ queryKey: queryKeys.servers });
  const test = useMutation({
    mutationFn: (s: Server) => api.post<ServerCheck>(`/api/v1/servers/${s.id}/test`),
    onSettled: refresh,
  });
  const check = useMutation({
    // POST runs the checks (operator); GET would only read the last stored ones.
    mutationFn: () => api.post<BulkStatus>("/api/v1/servers/status"),
    onSuccess: (r) => {
      onChecked(r);
      refresh();
    },
    onError: onCheckError,
  });
  const del = useMutation({
    mutationFn: (s: Server) => api.del(`/api/v1/servers/${s.id}`),
    onSuccess: () => {
      onDeleted();
      refresh();
    },
  });
  const accept = useMutation({
    mutationFn: ({ server, fingerprint }: { server: Server; fingerprint: string | null }) =>
      api.post<Server>(`/api/v1/servers/${server.id}/host-key/accept`, fingerprint ? { fingerprint } : undefined),
    onSuccess: () => {
      onAccepted();
      test.reset();
      refresh();
    },
  });
  return { test, check, del, accept };
}
