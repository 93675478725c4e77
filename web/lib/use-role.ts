// The signed-in token's role, so pages hide write actions from a `viewer`
// (the API refuses them anyway: 403 for any non-GET request).
import { useQuery } from "@tanstack/react-query";
import { meQuery } from "./queries";

/** True once the role is known and is not `viewer`. */
export function useCanWrite(): boolean {
  const me = useQuery(meQuery());
  return !!me.data && me.data.role !== "viewer";
}
