/**
 * The factory that binds the WASI TCP surface to one backend and one host
 * policy, in the namespace shapes jco imports, plus the import object of
 * jco's instantiation mode and the list of asynchronous imports for JSPI.
 *
 * @module
 */

import type { TcpBackend } from "./backend.ts";
import { IoError } from "./errors.ts";
import { checkBufferOptions } from "./_options.ts";
import type { IpAddressFamily } from "./ip_socket_address.ts";
import * as clock from "./monotonic_clock.ts";
import * as wall from "./wall_clock.ts";
import type { Datetime } from "./wall_clock.ts";
import { Pollable, poll, pollNow, useMacrotask } from "./pollable.ts";
import { installLowerings } from "./_cabi.ts";
import { InputStream, OutputStream } from "./streams.ts";
import { Network, type PermissionHook, type SocketContext, TcpSocket } from "./tcp_socket.ts";

/**
 * Options of {@link createWasiSockets}.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type WasiSocketsOptions } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const options: WasiSocketsOptions = { backend: new MemoryNetwork().backend, maxAcceptQueue: 16 };
 * const wasi = createWasiSockets(options);
 * ```
 */
export interface WasiSocketsOptions {
  /** The backend that does the I/O. */
  backend: TcpBackend;
  /**
   * The host's policy, consulted before any OS call with the address and its
   * use (`bind`, `connect`, `listen`, `accept`). `false` gives `access-denied`
   * for bind, connect and listen; a refused incoming connection is closed
   * without the guest seeing it.
   */
  permission?: PermissionHook;
  /** Bytes held per connection for a guest that does not read (default 256 KiB). */
  receiveWindow?: number;
  /** The most accepted connections held for a guest that does not accept (default 1024). */
  maxAcceptQueue?: number;
  /**
   * Lets backends reuse read buffers (default false): what `InputStream.read`
   * returns then stays valid only until the next `read` or `skip` on that
   * stream. jco copies every result into guest memory at once, so jco hosts can
   * turn it on; JS code that keeps read results must leave it off.
   */
  lendReadBuffers?: boolean;
}

/**
 * `wasi:sockets/tcp`.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type TcpNamespace } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const tcp: TcpNamespace = wasi.tcp;
 * console.log(typeof tcp.TcpSocket); // "function"
 * ```
 */
export interface TcpNamespace {
  /** The socket resource. */
  TcpSocket: typeof TcpSocket;
}

/**
 * `wasi:sockets/tcp-create-socket`.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type TcpCreateSocketNamespace } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const tcpCreateSocket: TcpCreateSocketNamespace = wasi.tcpCreateSocket;
 * const socket = tcpCreateSocket.createTcpSocket("ipv6");
 * socket[Symbol.dispose]();
 * ```
 */
export interface TcpCreateSocketNamespace {
  /**
   * Creates an unbound socket.
   *
   * @param addressFamily `"ipv4"` or `"ipv6"` (v6-only).
   * @returns The socket.
   */
  createTcpSocket(addressFamily: IpAddressFamily): TcpSocket;
}

/**
 * `wasi:sockets/network`.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type NetworkNamespace } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const network: NetworkNamespace = wasi.network;
 * console.log(typeof network.Network); // "function"
 * ```
 */
export interface NetworkNamespace {
  /** The network resource. */
  Network: typeof Network;
}

/**
 * `wasi:sockets/instance-network`.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type InstanceNetworkNamespace } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const instanceNetwork: InstanceNetworkNamespace = wasi.instanceNetwork;
 * console.log(instanceNetwork.instanceNetwork() === instanceNetwork.instanceNetwork()); // true
 * ```
 */
export interface InstanceNetworkNamespace {
  /**
   * The network capability of this instance.
   *
   * @returns The instance's network, the same object every time.
   */
  instanceNetwork(): Network;
}

/**
 * `wasi:io/streams`.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type StreamsNamespace } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const streams: StreamsNamespace = wasi.streams;
 * console.log(typeof streams.InputStream, typeof streams.OutputStream);
 * ```
 */
export interface StreamsNamespace {
  /** The input stream resource. */
  InputStream: typeof InputStream;
  /** The output stream resource. */
  OutputStream: typeof OutputStream;
}

/**
 * `wasi:io/poll`.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type PollNamespace } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const poll: PollNamespace = wasi.poll;
 * console.log(await poll.poll([wasi.monotonicClock.subscribeDuration(0n)])); // Uint32Array [0]
 * ```
 */
export interface PollNamespace {
  /** The pollable resource. */
  Pollable: typeof Pollable;
  /** Waits for any of a list of pollables. */
  poll: typeof poll;
}

/**
 * `wasi:io/error`.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type ErrorNamespace } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const error: ErrorNamespace = wasi.error;
 * console.log(new error.Error("connection reset").toDebugString());
 * ```
 */
export interface ErrorNamespace {
  /** The error resource, under the name jco imports. */
  Error: typeof IoError;
}

/**
 * `wasi:clocks/monotonic-clock`.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type MonotonicClockNamespace } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const monotonicClock: MonotonicClockNamespace = wasi.monotonicClock;
 * console.log(monotonicClock.now() > 0n); // true
 * ```
 */
export interface MonotonicClockNamespace {
  /** The current instant in nanoseconds. */
  now: typeof clock.now;
  /** The clock's resolution in nanoseconds. */
  resolution: typeof clock.resolution;
  /** A pollable ready at an instant. */
  subscribeInstant: typeof clock.subscribeInstant;
  /** A pollable ready after a duration. */
  subscribeDuration: typeof clock.subscribeDuration;
}

/**
 * `wasi:clocks/wall-clock`.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type WallClockNamespace } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const wallClock: WallClockNamespace = wasi.wallClock;
 * console.log(wallClock.now().seconds > 1_700_000_000n); // true
 * ```
 */
export interface WallClockNamespace {
  /** The current time since the Unix epoch. */
  now: () => Datetime;
  /** The clock's resolution. */
  resolution: () => Datetime;
}

/**
 * The namespaces jco imports, bound to one backend.
 *
 * @example
 * ```ts
 * import { createWasiSockets, type WasiSockets } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi: WasiSockets = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const socket = wasi.tcpCreateSocket.createTcpSocket("ipv4");
 * socket[Symbol.dispose]();
 * ```
 */
export interface WasiSockets {
  /** `wasi:sockets/tcp`. */
  tcp: TcpNamespace;
  /** `wasi:sockets/tcp-create-socket`. */
  tcpCreateSocket: TcpCreateSocketNamespace;
  /** `wasi:sockets/network`. */
  network: NetworkNamespace;
  /** `wasi:sockets/instance-network`. */
  instanceNetwork: InstanceNetworkNamespace;
  /** `wasi:io/streams`. */
  streams: StreamsNamespace;
  /** `wasi:io/poll`. */
  poll: PollNamespace;
  /** `wasi:io/error`. */
  error: ErrorNamespace;
  /** `wasi:clocks/monotonic-clock`. */
  monotonicClock: MonotonicClockNamespace;
  /** `wasi:clocks/wall-clock`. */
  wallClock: WallClockNamespace;
}

// jco's optimized import bindings (`--import-bindings hybrid`) call the hot
// wasi:io functions without its generated per-call code; see core/_cabi.ts.
installLowerings({ InputStream, OutputStream, Pollable, IoError, TcpSocket, poll, pollNow });

/**
 * Binds the WASI TCP namespaces to a backend and a host policy.
 *
 * @param options The backend and the policy.
 * @returns The namespaces, shaped as jco imports them.
 * @throws {TypeError} When `options.backend` is missing, or `receiveWindow` or
 * `maxAcceptQueue` is not a positive integer.
 * @example
 * ```ts
 * import { createWasiSockets } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({
 *   backend: new MemoryNetwork().backend,
 *   permission: (address, use) => use !== "connect" || address.tag === "ipv4",
 * });
 * const socket = wasi.tcpCreateSocket.createTcpSocket("ipv4");
 * ```
 */
export function createWasiSockets(options: WasiSocketsOptions): WasiSockets {
  if (typeof options?.backend?.bind !== "function") {
    throw new TypeError("Expected options.backend to be a TcpBackend");
  }
  checkBufferOptions(options);
  const ctx: SocketContext = {
    backend: options.backend,
    permission: options.permission,
    receiveWindow: options.receiveWindow,
    maxAcceptQueue: options.maxAcceptQueue,
    lendReadBuffers: options.lendReadBuffers,
  };
  if (options.backend.macrotask) useMacrotask(options.backend.macrotask);
  const network = new Network();
  return {
    tcp: { TcpSocket },
    tcpCreateSocket: {
      createTcpSocket(addressFamily: IpAddressFamily): TcpSocket {
        if (addressFamily !== "ipv4" && addressFamily !== "ipv6") {
          throw new TypeError('Expected addressFamily to be "ipv4" or "ipv6"');
        }
        return TcpSocket.create(ctx, addressFamily);
      },
    },
    network: { Network },
    instanceNetwork: { instanceNetwork: (): Network => network },
    streams: { InputStream, OutputStream },
    poll: { Pollable, poll },
    error: { Error: IoError },
    monotonicClock: {
      now: clock.now,
      resolution: clock.resolution,
      subscribeInstant: clock.subscribeInstant,
      subscribeDuration: clock.subscribeDuration,
    },
    wallClock: { now: wall.now, resolution: wall.resolution },
  };
}

/**
 * The 0.2.x versions that share the 0.2.6 surface.
 *
 * @example
 * ```ts
 * import { WASI_VERSIONS } from "./wasi_sockets.ts";
 * console.log(WASI_VERSIONS.includes("0.2.6")); // true
 * ```
 */
export const WASI_VERSIONS: readonly string[] = Array.from(
  { length: 13 },
  (_, i) => `0.2.${i}`,
);

/**
 * The imports that return Promises, in jco's `--async-imports` form, for
 * `jco transpile --async-mode jspi`. jco matches names without a version
 * against every version a component imports, so the default form serves all
 * of 0.2.x (guests built with wasi-libc or componentize-qjs import 0.2.12).
 *
 * @param version A version to pin the names to, such as `"0.2.6"`; omit it
 * for the unversioned names jco matches against any version.
 * @returns Names such as `wasi:io/poll#poll`.
 * @example
 * ```ts
 * import { asyncImports } from "./wasi_sockets.ts";
 * const flags = asyncImports().flatMap((name) => ["--async-imports", name]);
 * ```
 */
export function asyncImports(version?: string): string[] {
  const at = version === undefined ? "" : `@${version}`;
  const io = (iface: string, names: string[]): string[] =>
    names.map((n) => `wasi:io/${iface}${at}#${n}`);
  return [
    ...io("poll", ["poll", "[method]pollable.block"]),
    ...io("streams", [
      "[method]input-stream.blocking-read",
      "[method]input-stream.blocking-skip",
      "[method]output-stream.blocking-write-and-flush",
      "[method]output-stream.blocking-flush",
      "[method]output-stream.blocking-write-zeroes-and-flush",
      "[method]output-stream.blocking-splice",
    ]),
  ];
}

/**
 * {@link asyncImports} in the unversioned form, which serves every 0.2.x.
 *
 * @example
 * ```ts
 * import { ASYNC_IMPORTS } from "./wasi_sockets.ts";
 * console.log(ASYNC_IMPORTS.includes("wasi:io/poll#poll")); // true
 * ```
 */
export const ASYNC_IMPORTS: readonly string[] = asyncImports();

/**
 * The import object of jco's instantiation mode: the namespaces under every
 * interface name they serve, unversioned and for each 0.2.x version.
 *
 * @param wasi Namespaces from {@link createWasiSockets}.
 * @returns An object keyed like `"wasi:sockets/tcp@0.2.6"`.
 * @example
 * ```ts
 * import { createImportObject, createWasiSockets } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const imports = createImportObject(createWasiSockets({ backend: new MemoryNetwork().backend }));
 * console.log(Object.keys(imports).includes("wasi:sockets/tcp@0.2.6")); // true
 * ```
 */
export function createImportObject(wasi: WasiSockets): Record<string, object> {
  const byName: Record<string, object> = {
    "wasi:sockets/tcp": wasi.tcp,
    "wasi:sockets/tcp-create-socket": wasi.tcpCreateSocket,
    "wasi:sockets/network": wasi.network,
    "wasi:sockets/instance-network": wasi.instanceNetwork,
    "wasi:io/streams": wasi.streams,
    "wasi:io/poll": wasi.poll,
    "wasi:io/error": wasi.error,
    "wasi:clocks/monotonic-clock": wasi.monotonicClock,
    "wasi:clocks/wall-clock": wasi.wallClock,
  };
  const out: Record<string, object> = {};
  for (const [name, ns] of Object.entries(byName)) {
    out[name] = ns;
    for (const v of WASI_VERSIONS) out[`${name}@${v}`] = ns;
  }
  return out;
}
