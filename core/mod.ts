/**
 * The runtime-free core of wasi-tcp: the WASI 0.2.6 TCP state machine, its
 * streams and pollables, the backend interface, and an in-memory virtual
 * network to test guests and hosts on. Use it to drive your own backend.
 *
 * @example
 * ```ts
 * import { createWasiSockets, MemoryNetwork } from "@wasi-tcp/wasi-tcp/core";
 * const vnet = new MemoryNetwork();
 * const wasi = createWasiSockets({ backend: vnet.backend });
 * const socket = wasi.tcpCreateSocket.createTcpSocket("ipv4");
 * ```
 *
 * @module
 */

export * from "./backend.ts";
export * from "./errors.ts";
export * from "./ip_socket_address.ts";
export * from "./memory_network.ts";
export * from "./monotonic_clock.ts";
export * from "./pollable.ts";
export * from "./streams.ts";
export * from "./tcp_socket.ts";
export * from "./wasi_sockets.ts";
/**
 * `wasi:clocks/wall-clock`, as a namespace: its `now` and `resolution` would
 * clash with the monotonic clock's.
 *
 * @example
 * ```ts
 * import { wallClock } from "./mod.ts";
 * console.log(wallClock.now().seconds > 0n); // true
 * ```
 */
export * as wallClock from "./wall_clock.ts";
export type { Datetime } from "./wall_clock.ts";
