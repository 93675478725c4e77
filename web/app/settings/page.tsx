"use client";
import * as React from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import { tokensQuery } from "@/lib/queries";
import type { ApiToken, TokenCreated } from "@/lib/types";
import { formatTime } from "@/lib/format";
import { queryKeys } from "@/lib/query-keys";
import { useAuth } from "@/components/auth";
import { EmptyState, ErrorState, LoadingRows, PageHeader } from "@/components/states";
import { RetentionCard } from "@/components/recurring/retention-form";
import { ThemeSelect } from "@/components/theme";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Dialog } from "@/components/ui/dialog";
import { Field, Input, Select } from "@/components/ui/input";
import { Table, Td, Th } from "@/components/ui/table";

export default function SettingsPage() {
  const qc = useQueryClient();
  const { signOut } = useAuth();
  const tokens = useQuery(tokensQuery());
  const [name, setName] = React.useState("");
  const [role, setRole] = React.useState("operator");
  const [created, setCreated] = React.useState<TokenCreated | null>(null);
  const [revoking, setRevoking] = React.useState<ApiToken | null>(null);
  const [copied, setCopied] = React.useState(false);
  const create = useMutation({
    mutationFn: () => api.post<TokenCreated>("/api/v1/tokens", { name: name.trim(), role }),
    onSuccess: (t) => {
      setCreated(t);
      setName("");
      qc.invalidateQueries({ queryKey: queryKeys.tokens });
    },
  });
  const revoke = useMutation({
    mutationFn: (t: ApiToken) => api.del(`/api/v1/tokens/${t.id}`),
    onSuccess: () => {
      setRevoking(null);
      qc.invalidateQueries({ queryKey: queryKeys.tokens });
    },
  });
  const list = tokens.data?.tokens ?? [];
  return (
    <div>
      <PageHeader title="Settings" description="API tokens, the retention policy and this browser's preferences." />
      <div className="grid gap-4 lg:grid-cols-3">
        <Card className="lg:col-span-2">
          <CardHeader>
            <CardTitle>API tokens</CardTitle>
          </CardHeader>
          <CardContent className="grid gap-4">
            <form
              className="flex flex-wrap items-end gap-2"
              onSubmit={(e) => {
                e.preventDefault();
                create.mutate();
              }}
            >
              <Field label="New token name" htmlFor="token-name" className="min-w-[14rem] flex-1">
                <Input id="token-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="ci-deploy" required />
              </Field>
              <Field label="Role" htmlFor="token-role" className="w-36">
                <Select id="token-role" value={role} onChange={(e) => setRole(e.target.value)}>
                  <option value="admin">admin</option>
                  <option value="operator">operator</option>
                  <option value="viewer">viewer</option>
                </Select>
              </Field>
              <Button type="submit" disabled={!name.trim() || create.isPending}>
                Create token
              </Button>
            </form>
            {create.isError ? <ErrorState error={create.error} title="No token was created" /> : null}
            {tokens.isError ? (
              <ErrorState error={tokens.error} onRetry={() => tokens.refetch()} title="Could not load tokens" />
            ) : tokens.isPending ? (
              <LoadingRows rows={2} label="Loading tokens" />
            ) : list.length === 0 ? (
              <EmptyState title="No tokens" />
            ) : (
              <Table aria-label="API tokens">
                <thead>
                  <tr>
                    <Th>Name</Th>
                    <Th>Role</Th>
                    <Th>Created</Th>
                    <Th>
                      <span className="sr-only">Actions</span>
                    </Th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((t) => (
                    <tr key={t.id} data-token={t.name} className={t.revoked_at ? "text-muted-foreground" : undefined}>
                      <Td className="font-medium">
                        {t.name}
                        {t.revoked_at ? (
                          <Badge tone="red" className="ml-2" title={`Revoked ${formatTime(t.revoked_at)}`}>
                            revoked
                          </Badge>
                        ) : null}
                      </Td>
                      <Td>
                        <Badge tone={t.role === "admin" ? "amber" : "neutral"}>{t.role}</Badge>
                      </Td>
                      <Td className="text-xs">{formatTime(t.created_at)}</Td>
                      <Td>
                        {t.revoked_at ? null : (
                          <Button size="sm" variant="ghost" className="text-destructive" onClick={() => setRevoking(t)} aria-label={`Revoke ${t.name}`}>
                            Revoke
                          </Button>
                        )}
                      </Td>
                    </tr>
                  ))}
                </tbody>
              </Table>
            )}
          </CardContent>
        </Card>
        <Card>
          <CardHeader>
            <CardTitle>This browser</CardTitle>
          </CardHeader>
          <CardContent className="grid gap-4">
            <Field label="Theme" htmlFor="settings-theme">
              <ThemeSelect id="settings-theme" />
            </Field>
            <p className="text-sm text-muted-foreground">Your token is kept in this tab&apos;s session storage and forgotten when the tab closes.</p>
            <Button variant="outline" onClick={signOut}>
              Sign out
            </Button>
          </CardContent>
        </Card>
        <RetentionCard />
      </div>
      {created ? (
        <Dialog open onClose={() => setCreated(null)} title={`Token “${created.name}” created`} description={`Role ${created.role}. Copy it now: it is shown only once.`}>
          <code className="block break-all rounded-md bg-muted p-3 font-mono text-xs" data-testid="new-token">
            {created.token}
          </code>
          <div className="mt-4 flex justify-end gap-2">
            <Button
              variant="outline"
              onClick={async () => {
                await navigator.clipboard?.writeText(created.token ?? "").catch(() => {});
                setCopied(true);
              }}
            >
              {copied ? "Copied" : "Copy"}
            </Button>
            <Button onClick={() => setCreated(null)}>Done</Button>
          </div>
        </Dialog>
      ) : null}
      {revoking ? (
        <Dialog open onClose={() => setRevoking(null)} title={`Revoke “${revoking.name}”?`} description="Anything using this token stops working at once.">
          {revoke.isError ? <ErrorState error={revoke.error} title="Not revoked" /> : null}
          <div className="mt-4 flex justify-end gap-2">
            <Button variant="outline" onClick={() => setRevoking(null)}>
              Cancel
            </Button>
            <Button variant="destructive" disabled={revoke.isPending} onClick={() => revoke.mutate(revoking)}>
              Revoke token
            </Button>
          </div>
        </Dialog>
      ) : null}
    </div>
  );
}
