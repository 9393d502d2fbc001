// Helpers for tests that drive sockets through the WASI API: bounded waits and
// the bind/listen/connect/accept sequences a guest performs.

import type { IpSocketAddress } from "../core/ip_socket_address.ts";
import type { InputStream, OutputStream } from "../core/streams.ts";
import type { TcpSocket } from "../core/tcp_socket.ts";
import type { WasiSockets } from "../core/wasi_sockets.ts";
import { StreamError } from "../core/errors.ts";

export const DEADLINE_MS = 10_000;

/** Rejects with `what` if `promise` has not settled within `ms`. */
export function within<T>(promise: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export function v4(a: number, b: number, c: number, d: number, port = 0): IpSocketAddress {
  return { tag: "ipv4", val: { port, address: [a, b, c, d] } };
}

export function v6(groups: number[], port = 0): IpSocketAddress {
  return {
    tag: "ipv6",
    val: {
      port,
      flowInfo: 0,
      address: groups as [number, number, number, number, number, number, number, number],
      scopeId: 0,
    },
  };
}

export const LOCALHOST4: IpSocketAddress = v4(127, 0, 0, 1);
export const LOCALHOST6: IpSocketAddress = v6([0, 0, 0, 0, 0, 0, 0, 1]);

export function withPort(addr: IpSocketAddress, port: number): IpSocketAddress {
  return addr.tag === "ipv4"
    ? { tag: "ipv4", val: { ...addr.val, port } }
    : { tag: "ipv6", val: { ...addr.val, port } };
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
    const left = DEADLINE_MS - (performance.now() - started);
    if (left <= 0) throw new Error(`Timed out: ${what}`);
    await within(pollable.block(), what, left);
  }
}

export async function bind(
  wasi: WasiSockets,
  addr: IpSocketAddress,
): Promise<TcpSocket> {
  const socket = wasi.tcpCreateSocket.createTcpSocket(addr.tag);
  try {
    socket.startBind(wasi.instanceNetwork.instanceNetwork(), addr);
    await finish(socket, () => socket.finishBind(), "finish-bind");
    return socket;
  } catch (e) {
    socket[Symbol.dispose]();
    throw e;
  }
}

export async function listen(wasi: WasiSockets, addr: IpSocketAddress): Promise<TcpSocket> {
  const socket = await bind(wasi, addr);
  try {
    socket.startListen();
    await finish(socket, () => socket.finishListen(), "finish-listen");
    return socket;
  } catch (e) {
    socket[Symbol.dispose]();
    throw e;
  }
}

export interface Conn {
  socket: TcpSocket;
  input: InputStream;
  output: OutputStream;
  [Symbol.dispose](): void;
}

function conn(socket: TcpSocket, input: InputStream, output: OutputStream): Conn {
  return {
    socket,
    input,
    output,
    [Symbol.dispose]() {
      input[Symbol.dispose]();
      output[Symbol.dispose]();
      socket[Symbol.dispose]();
    },
  };
}

export async function connect(
  wasi: WasiSockets,
  remote: IpSocketAddress,
  socket: TcpSocket = wasi.tcpCreateSocket.createTcpSocket(remote.tag),
): Promise<Conn> {
  try {
    socket.startConnect(wasi.instanceNetwork.instanceNetwork(), remote);
    const [input, output] = await finish(socket, () => socket.finishConnect(), "finish-connect");
    return conn(socket, input, output);
  } catch (e) {
    socket[Symbol.dispose]();
    throw e;
  }
}

export async function accept(listener: TcpSocket): Promise<Conn> {
  const [socket, input, output] = await finish(listener, () => listener.accept(), "accept");
  return conn(socket, input, output);
}

/** Writes all of `bytes`, waiting on the output pollable when it is full. */
export async function writeAll(output: OutputStream, bytes: Uint8Array): Promise<void> {
  const pollable = output.subscribe();
  let offset = 0;
  while (offset < bytes.length) {
    const room = Number(output.checkWrite());
    if (room === 0) {
      await within(pollable.block(), "output stream to drain");
      continue;
    }
    const n = Math.min(room, bytes.length - offset);
    output.write(bytes.slice(offset, offset + n));
    offset += n;
  }
}

/** Reads until the stream reports `closed`, or `limit` bytes. */
export async function readAll(input: InputStream, limit = Infinity): Promise<Uint8Array> {
  const pollable = input.subscribe();
  const parts: Uint8Array[] = [];
  let total = 0;
  while (total < limit) {
    let chunk: Uint8Array;
    try {
      // Never past `limit`, so that what follows stays in the stream.
      chunk = input.read(BigInt(Math.min(65536, limit - total)));
    } catch (e) {
      if (e instanceof StreamError && e.payload.tag === "closed") break;
      throw e;
    }
    if (chunk.length === 0) {
      await within(pollable.block(), "input stream data");
      continue;
    }
    // Copied: namespaces that lend read buffers reuse a chunk after the next read.
    parts.push(chunk.slice());
    total += chunk.length;
  }
  return concat(parts);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deterministic bytes, so a corrupted or reordered stream is caught. */
export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The WIT error code `fn` throws, or undefined when it returns. */
export function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { payload?: string }).payload;
  }
  return undefined;
}
