/**
 * The `node:net` backend. Runs on Node 20 and on the node:net of Deno 2.9 and
 * Bun 1.4.
 *
 * - bind: the internal `net._createServerHandle` binds without listening
 *   (SO_REUSEADDR, UV_TCP_IPV6ONLY for v6-only). Deno's node:net ignores the
 *   v6-only flag, so "::" stays dual-stack there. Bun's node:net has no such
 *   function: a bind there listens briefly to resolve and check the address
 *   and closes again, so the port is not held until listen or connect.
 * - listen: `server.listen(handle, backlog)` on a server with `allowHalfOpen`
 *   and `pauseOnConnect`.
 * - connect: `net.connect` with `allowHalfOpen`; from a binding, the binding's
 *   socket is closed and node:net binds the same address and port again
 *   (`localAddress`, `localPort`).
 * - options: keep-alive on/off and idle time are applied; the rest are stored
 *   by the core only.
 *
 * Besides {@link createNodeBackend}, the module exports the namespaces jco
 * imports, bound to this backend, so that a host can pick it explicitly.
 *
 * @module
 */

import type {
  BackendBinding,
  BackendConnection,
  BindRequest,
  ConnectRequest,
  TcpBackend,
  TcpOptionName,
} from "../core/backend.ts";
import { NodeBinding, reserveAddress } from "./_node_binding.ts";
import { connectNode } from "./_node_connection.ts";
import type { NetworkError } from "../core/errors.ts";
import { setImmediate } from "node:timers";
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
} from "../core/wasi_sockets.ts";

// setImmediate runs after the poll phase on Node and Bun; Deno's runs before
// its I/O is polled, so there the core's setTimeout(0) default is kept.
const macrotask: ((cb: () => void) => void) | undefined =
  (globalThis as { Deno?: unknown }).Deno === undefined ? (cb) => setImmediate(cb) : undefined;

const REAL_OPTIONS: ReadonlySet<TcpOptionName> = new Set<TcpOptionName>([
  "keepAliveEnabled",
  "keepAliveIdleTime",
]);

/**
 * Creates the node:net backend.
 *
 * @returns A backend named `"node"`.
 * @example
 * ```ts
 * import { createNodeBackend } from "./node.ts";
 * const backend = createNodeBackend();
 * const binding = await backend.bind({
 *   local: { family: "ipv4", address: "127.0.0.1", port: 0 },
 *   ipv6Only: false,
 * });
 * console.log(binding.localAddress.port > 0); // true
 * binding.close();
 * ```
 */
export function createNodeBackend(): TcpBackend {
  return {
    name: "node",
    realOptions: REAL_OPTIONS,
    macrotask,
    bind(request: BindRequest): BackendBinding | Promise<BackendBinding> {
      const reservation = reserveAddress(request);
      return reservation instanceof Promise
        ? reservation.then((r) => new NodeBinding(r))
        : new NodeBinding(reservation);
    },
    connect(request: ConnectRequest): Promise<BackendConnection> {
      let local;
      const binding = request.binding;
      if (binding !== undefined) {
        try {
          local = binding instanceof NodeBinding ? binding.release() : binding.localAddress;
        } catch (error) {
          return Promise.reject(error as NetworkError);
        }
        binding.close();
      }
      return connectNode({
        remote: request.remote,
        local,
        options: request.options,
        changed: request.changed,
        signal: request.signal,
      });
    },
  };
}

// jco copies every read result into guest memory at once, so the namespaces
// jco imports lend read buffers (see WasiSocketsOptions.lendReadBuffers).
const wasi: WasiSockets = createWasiSockets({ backend: createNodeBackend(), lendReadBuffers: true });

/**
 * `wasi:sockets/tcp` on node:net, for `jco transpile --map 'wasi:sockets/*=wasi-tcp/node#*'`.
 *
 * @example
 * ```ts
 * import { tcp } from "./node.ts";
 * console.log(typeof tcp.TcpSocket); // "function"
 * ```
 */
export const tcp: TcpNamespace = wasi.tcp;
/**
 * `wasi:sockets/tcp-create-socket` on node:net.
 *
 * @example
 * ```ts
 * import { tcpCreateSocket } from "./node.ts";
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
 * import { network } from "./node.ts";
 * console.log(typeof network.Network); // "function"
 * ```
 */
export const network: NetworkNamespace = wasi.network;
/**
 * `wasi:sockets/instance-network`.
 *
 * @example
 * ```ts
 * import { instanceNetwork } from "./node.ts";
 * console.log(instanceNetwork.instanceNetwork() === instanceNetwork.instanceNetwork()); // true
 * ```
 */
export const instanceNetwork: InstanceNetworkNamespace = wasi.instanceNetwork;
/**
 * `wasi:io/streams`; read results are lent: valid until the next read on that stream.
 *
 * @example
 * ```ts
 * import { streams } from "./node.ts";
 * console.log(typeof streams.InputStream); // "function"
 * ```
 */
export const streams: StreamsNamespace = wasi.streams;
/**
 * `wasi:io/poll`.
 *
 * @example
 * ```ts
 * import { monotonicClock, poll } from "./node.ts";
 * console.log(await poll.poll([monotonicClock.subscribeDuration(0n)])); // Uint32Array [0]
 * ```
 */
export const poll: PollNamespace = wasi.poll;
/**
 * `wasi:io/error`.
 *
 * @example
 * ```ts
 * import { error } from "./node.ts";
 * console.log(new error.Error("connection reset").toDebugString());
 * ```
 */
export const error: ErrorNamespace = wasi.error;
/**
 * `wasi:clocks/monotonic-clock`.
 *
 * @example
 * ```ts
 * import { monotonicClock } from "./node.ts";
 * console.log(monotonicClock.now() > 0n); // true
 * ```
 */
export const monotonicClock: MonotonicClockNamespace = wasi.monotonicClock;
/**
 * `wasi:clocks/wall-clock`.
 *
 * @example
 * ```ts
 * import { wallClock } from "./node.ts";
 * console.log(wallClock.now().seconds > 1_700_000_000n); // true
 * ```
 */
export const wallClock: WallClockNamespace = wasi.wallClock;
