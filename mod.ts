/**
 * wasi-tcp: the host side of `wasi:sockets/tcp@0.2.6` for Deno, Bun and Node.
 *
 * This entry exports the namespaces jco imports (`tcp`, `tcpCreateSocket`,
 * `network`, `instanceNetwork`, `streams`, `poll`, `error`, `monotonicClock`,
 * `wallClock`),
 * bound to the backend of the runtime it runs in: `Bun.listen/connect` under
 * Bun, `Deno.listen/connect` under Deno, `node:net` elsewhere. Map a
 * component's imports to it with jco:
 *
 * ```sh
 * jco transpile c.wasm -o out --map 'wasi:sockets/*=wasi-tcp#*' \
 *   --map 'wasi:io/*=wasi-tcp#*' --map 'wasi:clocks/*=wasi-tcp#*'
 * ```
 *
 * These namespaces lend read buffers, as jco hosts can: what
 * `InputStream.read` returns stays valid until the next read on that stream,
 * which lets the Deno backend read into reused memory. jco copies every result
 * into guest memory at once. JS code that keeps read results builds its own
 * namespaces with {@link createWasiSockets}, which does not lend by default,
 * and which also chooses the backend or adds a permission hook.
 *
 * @example
 * ```ts
 * import { instanceNetwork, tcpCreateSocket } from "@wasi-tcp/wasi-tcp";
 * const socket = tcpCreateSocket.createTcpSocket("ipv4");
 * socket.startBind(instanceNetwork.instanceNetwork(), {
 *   tag: "ipv4",
 *   val: { port: 0, address: [127, 0, 0, 1] },
 * });
 * socket.finishBind();
 * socket[Symbol.dispose]();
 * ```
 *
 * @module
 */

import type { TcpBackend } from "./core/backend.ts";
import {
  createWasiSockets,
  type ErrorNamespace,
  type InstanceNetworkNamespace,
  type MonotonicClockNamespace,
  type NetworkNamespace,
  type PollNamespace,
  type StreamsNamespace,
  type TcpCreateSocketNamespace,
  type TcpNamespace,
  type WallClockNamespace,
  type WasiSockets,
} from "./core/wasi_sockets.ts";

export {
  ASYNC_IMPORTS,
  asyncImports,
  createImportObject,
  createWasiSockets,
  WASI_VERSIONS,
} from "./core/wasi_sockets.ts";
export type { WasiSockets, WasiSocketsOptions } from "./core/wasi_sockets.ts";
export type { NetworkUse, PermissionHook } from "./core/tcp_socket.ts";
export { IoError, NetworkError, StreamError } from "./core/errors.ts";
export { COPIES_LIST_ARGUMENTS } from "./core/streams.ts";
export type { ErrorCode, StreamErrorPayload } from "./core/errors.ts";
export type { IpAddressFamily, IpSocketAddress } from "./core/ip_socket_address.ts";

/**
 * The backend of the runtime this module runs in.
 *
 * @returns A Bun, Deno or node:net backend.
 * @example
 * ```ts
 * import { createWasiSockets, runtimeBackend } from "@wasi-tcp/wasi-tcp";
 * const wasi = createWasiSockets({ backend: await runtimeBackend(), permission: () => true });
 * ```
 */
export async function runtimeBackend(): Promise<TcpBackend> {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return (await import("./runtimes/bun.ts")).createBunBackend();
  if (g.Deno !== undefined) return (await import("./runtimes/deno.ts")).createDenoBackend();
  return (await import("./runtimes/node.ts")).createNodeBackend();
}

// jco copies every read result into guest memory at once, so the namespaces
// jco imports lend read buffers (see WasiSocketsOptions.lendReadBuffers).
const wasi: WasiSockets = createWasiSockets({ backend: await runtimeBackend(), lendReadBuffers: true });

/**
 * `wasi:sockets/tcp`, bound to this runtime's backend.
 *
 * @example
 * ```ts
 * import { tcp } from "./mod.ts";
 * console.log(typeof tcp.TcpSocket); // "function"
 * ```
 */
export const tcp: TcpNamespace = wasi.tcp;
/**
 * `wasi:sockets/tcp-create-socket`, bound to this runtime's backend.
 *
 * @example
 * ```ts
 * import { tcpCreateSocket } from "./mod.ts";
 * const socket = tcpCreateSocket.createTcpSocket("ipv4");
 * socket[Symbol.dispose]();
 * ```
 */
export const tcpCreateSocket: TcpCreateSocketNamespace = wasi.tcpCreateSocket;
/**
 * `wasi:sockets/network`.
 *
 * @example
 * ```ts
 * import { network } from "./mod.ts";
 * console.log(typeof network.Network); // "function"
 * ```
 */
export const network: NetworkNamespace = wasi.network;
/**
 * `wasi:sockets/instance-network`.
 *
 * @example
 * ```ts
 * import { instanceNetwork } from "./mod.ts";
 * console.log(instanceNetwork.instanceNetwork() === instanceNetwork.instanceNetwork()); // true
 * ```
 */
export const instanceNetwork: InstanceNetworkNamespace = wasi.instanceNetwork;
/**
 * `wasi:io/streams`; read results are lent: valid until the next read on that stream.
 *
 * @example
 * ```ts
 * import { streams } from "./mod.ts";
 * console.log(typeof streams.InputStream); // "function"
 * ```
 */
export const streams: StreamsNamespace = wasi.streams;
/**
 * `wasi:io/poll`.
 *
 * @example
 * ```ts
 * import { monotonicClock, poll } from "./mod.ts";
 * console.log(await poll.poll([monotonicClock.subscribeDuration(0n)])); // Uint32Array [0]
 * ```
 */
export const poll: PollNamespace = wasi.poll;
/**
 * `wasi:io/error`.
 *
 * @example
 * ```ts
 * import { error } from "./mod.ts";
 * console.log(new error.Error("connection reset").toDebugString());
 * ```
 */
export const error: ErrorNamespace = wasi.error;
/**
 * `wasi:clocks/monotonic-clock`.
 *
 * @example
 * ```ts
 * import { monotonicClock } from "./mod.ts";
 * console.log(monotonicClock.now() > 0n); // true
 * ```
 */
export const monotonicClock: MonotonicClockNamespace = wasi.monotonicClock;
/**
 * `wasi:clocks/wall-clock`.
 *
 * @example
 * ```ts
 * import { wallClock } from "./mod.ts";
 * console.log(wallClock.now().seconds > 1_700_000_000n); // true
 * ```
 */
export const wallClock: WallClockNamespace = wasi.wallClock;
