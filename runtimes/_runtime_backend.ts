// Picks the backend of the runtime the code runs in; shared by mod.ts and the
// synchronous mode's worker.

import type { TcpBackend } from "../core/backend.ts";

/**
 * The backend of the runtime this module runs in.
 *
 * @returns A Bun, Deno or node:net backend.
 * @example
 * ```ts
 * import { createWasiSockets } from "../core/wasi_sockets.ts";
 * import { runtimeBackend } from "./_runtime_backend.ts";
 * const wasi = createWasiSockets({ backend: await runtimeBackend(), permission: () => true });
 * ```
 */
export async function runtimeBackend(): Promise<TcpBackend> {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return (await import("./bun.ts")).createBunBackend();
  if (g.Deno !== undefined) return (await import("./deno.ts")).createDenoBackend();
  return (await import("./node.ts")).createNodeBackend();
}
