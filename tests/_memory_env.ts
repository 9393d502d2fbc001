// Helpers for the core suites: a fresh MemoryNetwork and WASI namespaces per
// test, an owner list that disposes every resource in `finally`, a leak check
// on the network's stats, and small assertion helpers for WASI errors.

import assert from "node:assert/strict";
import type { TcpBackend } from "../core/backend.ts";
import { MemoryNetwork, type MemoryNetworkOptions } from "../core/memory_network.ts";
import type { Pollable } from "../core/pollable.ts";
import type { InputStream, OutputStream } from "../core/streams.ts";
import type { Network, PermissionHook, TcpSocket } from "../core/tcp_socket.ts";
import { createWasiSockets, type WasiSockets } from "../core/wasi_sockets.ts";
import { StreamError } from "../core/errors.ts";
import type { IpSocketAddress } from "../core/ip_socket_address.ts";
import { LOCALHOST4, within, withPort } from "./_wasi_helpers.ts";

export {
  concat,
  LOCALHOST4,
  LOCALHOST6,
  pattern,
  readAll,
  v4,
  v6,
  within,
  withPort,
  writeAll,
} from "./_wasi_helpers.ts";

export const WAIT_MS = 3000;

interface Disposable {
  [Symbol.dispose](): void;
}

export interface EnvOptions {
  permission?: PermissionHook;
  receiveWindow?: number;
  maxAcceptQueue?: number;
  lendReadBuffers?: boolean;
  network?: MemoryNetworkOptions;
  /** Wraps the memory backend, e.g. to count calls. */
  wrapBackend?: (backend: TcpBackend) => TcpBackend;
  /** Skip the stats check after cleanup (for tests that leave work in flight on purpose). */
  noLeakCheck?: boolean;
}

export interface Env {
  net: MemoryNetwork;
  wasi: WasiSockets;
  network: Network;
  /** Disposes `x` when the test ends, in reverse order of registration. */
  own<T extends Disposable>(x: T): T;
  /** A new socket, owned. */
  socket(family?: "ipv4" | "ipv6"): TcpSocket;
}

export interface Conn extends Disposable {
  socket: TcpSocket;
  input: InputStream;
  output: OutputStream;
}

/** Runs `fn` with a fresh network; disposes what it owns, then checks for leaks. */
export async function withEnv(
  options: EnvOptions,
  fn: (env: Env) => Promise<void> | void,
): Promise<void> {
  const net = new MemoryNetwork(options.network);
  const wasi = createWasiSockets({
    backend: options.wrapBackend ? options.wrapBackend(net.backend) : net.backend,
    permission: options.permission,
    receiveWindow: options.receiveWindow,
    maxAcceptQueue: options.maxAcceptQueue,
    lendReadBuffers: options.lendReadBuffers,
  });
  const owned: Disposable[] = [];
  const env: Env = {
    net,
    wasi,
    network: wasi.instanceNetwork.instanceNetwork(),
    own(x) {
      owned.push(x);
      return x;
    },
    socket(family = "ipv4") {
      return env.own(wasi.tcpCreateSocket.createTcpSocket(family));
    },
  };
  try {
    await fn(env);
  } finally {
    for (let i = owned.length - 1; i >= 0; i--) owned[i][Symbol.dispose]();
  }
  if (!options.noLeakCheck) {
    assert.deepEqual(net.stats, { connections: 0, bindings: 0, listeners: 0 }, "resources left after cleanup");
  }
}

export function portOf(socket: TcpSocket): number {
  return socket.localAddress().val.port;
}

/** Waits until `pollable` is ready, bounded by a deadline. */
export function waitUntil(pollable: Pollable, what: string, ms = WAIT_MS): Promise<void> {
  return within(pollable.block(), what, ms);
}

/**
 * Lets `n` macrotasks run. The memory network only uses microtasks and
 * zero-delay timers, so "nothing happened after n macrotasks" is exact there.
 */
export async function macrotasks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setTimeout(r, 0));
}

/** What a call did: "ok", a WIT error code, "TypeError" or "trap". */
export function outcome(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (e) {
    return classify(e);
  }
}

function classify(e: unknown): string {
  if (e instanceof TypeError) return "TypeError";
  if (e !== null && typeof e === "object" && "payload" in e) {
    const p = (e as { payload: unknown }).payload;
    if (typeof p === "string") return p;
    if (e instanceof StreamError) return e.payload.tag;
    return String(p);
  }
  if (e instanceof Error) return "trap";
  return `non-error ${String(e)}`;
}

/** What an async call did, as {@link outcome}. */
export async function outcomeAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return "ok";
  } catch (e) {
    return classify(e);
  }
}

/** Asserts that `fn` throws a NetworkError with `code`. */
export function assertCode(fn: () => unknown, code: string, message?: string): void {
  assert.equal(outcome(fn), code, message);
}

/** Asserts that `e` is a WIT trap: a plain Error with no `payload`. */
export function isTrap(e: unknown): boolean {
  return e instanceof Error && !(e instanceof TypeError) && !("payload" in e);
}

export function assertTraps(fn: () => unknown, message?: string): void {
  assert.throws(fn, (e: unknown) => isTrap(e), message);
}

/** Runs a finish-call, waiting on the socket's pollable while it would block. */
export async function finish<T>(socket: TcpSocket, call: () => T, what: string): Promise<T> {
  const pollable = socket.subscribe();
  const started = performance.now();
  for (;;) {
    try {
      return call();
    } catch (e) {
      if ((e as { payload?: unknown }).payload !== "would-block") throw e;
    }
    const left = WAIT_MS - (performance.now() - started);
    if (left <= 0) throw new Error(`Timed out: ${what}`);
    await within(pollable.block(), what, left);
  }
}

export async function bound(env: Env, addr: IpSocketAddress = LOCALHOST4): Promise<TcpSocket> {
  const socket = env.socket(addr.tag);
  socket.startBind(env.network, addr);
  await finish(socket, () => socket.finishBind(), "finish-bind");
  return socket;
}

export async function listening(env: Env, addr: IpSocketAddress = LOCALHOST4): Promise<TcpSocket> {
  const socket = await bound(env, addr);
  socket.startListen();
  await finish(socket, () => socket.finishListen(), "finish-listen");
  return socket;
}

function conn(env: Env, socket: TcpSocket, input: InputStream, output: OutputStream): Conn {
  return env.own({
    socket,
    input,
    output,
    [Symbol.dispose]() {
      input[Symbol.dispose]();
      output[Symbol.dispose]();
      socket[Symbol.dispose]();
    },
  });
}

/** Connects `socket` (a new one by default) to `remote`. */
export async function connected(
  env: Env,
  remote: IpSocketAddress,
  socket: TcpSocket = env.socket(remote.tag),
): Promise<Conn> {
  socket.startConnect(env.network, remote);
  const [input, output] = await finish(socket, () => socket.finishConnect(), "finish-connect");
  return conn(env, socket, input, output);
}

export async function accepted(env: Env, listener: TcpSocket): Promise<Conn> {
  const [socket, input, output] = await finish(listener, () => listener.accept(), "accept");
  return conn(env, socket, input, output);
}

/** A listener and one connection to it: `client` and the accepted `server`. */
export async function pair(
  env: Env,
  local: IpSocketAddress = LOCALHOST4,
): Promise<{ listener: TcpSocket; client: Conn; server: Conn }> {
  const listener = await listening(env, local);
  const client = await connected(env, withPort(local, portOf(listener)));
  const server = await accepted(env, listener);
  return { listener, client, server };
}

/** A promise with its resolve function, for asynchronous permission hooks. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
