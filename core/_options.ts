// Option defaults and the clamping wasmtime applies. Values the guest sets are
// validated here once, so backends only ever see values the OS accepts.

import type { TcpOptions } from "./backend.ts";
import { NetworkError } from "./errors.ts";

const NS_PER_S = 1_000_000_000n;
const I32_MAX = 0x7fff_ffffn;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Linux defaults, which is what wasmtime reports on these machines. */
export function defaultOptions(): TcpOptions {
  return {
    keepAliveEnabled: false,
    keepAliveIdleTime: 7200n * NS_PER_S,
    keepAliveInterval: 75n * NS_PER_S,
    keepAliveCount: 9,
    hopLimit: 64,
    receiveBufferSize: 131072n,
    sendBufferSize: 16384n,
  };
}

/** The default listen backlog: Linux's SOMAXCONN, as Node and Deno use. */
export const DEFAULT_BACKLOG = 511;

export function checkBigint(value: unknown, what: string): bigint {
  if (typeof value !== "bigint" || value < 0n || value > U64_MAX) {
    throw new TypeError(`Expected ${what} to be a u64 bigint`);
  }
  return value;
}

// The buffering options of createWasiSockets: zero would hold every
// connection (or the accept queue) paused for good.
export function checkBufferOptions(options: { receiveWindow?: unknown; maxAcceptQueue?: unknown }): void {
  for (const name of ["receiveWindow", "maxAcceptQueue"] as const) {
    const value = options[name];
    if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) > 0)) {
      throw new TypeError(`Expected options.${name} to be a positive integer, got ${String(value)}`);
    }
  }
}

export function checkInt(value: unknown, max: number, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw new TypeError(`Expected ${what} to be an integer from 0 to ${max}`);
  }
  return value;
}

export function checkBool(value: unknown, what: string): boolean {
  if (typeof value !== "boolean") throw new TypeError(`Expected ${what} to be a boolean`);
  return value;
}

function nonZero(value: bigint | number, what: string): void {
  if (value === 0 || value === 0n) {
    const name = what[0].toUpperCase() + what.slice(1);
    throw new NetworkError("invalid-argument", `${name} must be greater than 0`);
  }
}

/** Keep-alive times: whole seconds, rounded up, in [1 s, 32767 s]. */
export function clampKeepAliveTime(value: unknown, what: string): bigint {
  const ns = checkBigint(value, what);
  nonZero(ns, what);
  let secs = (ns + NS_PER_S - 1n) / NS_PER_S;
  if (secs > 32767n) secs = 32767n;
  return secs * NS_PER_S;
}

export function clampKeepAliveCount(value: unknown): number {
  const n = checkInt(value, 0xffff_ffff, "keep-alive count");
  nonZero(n, "keep-alive count");
  return Math.min(n, 127);
}

export function clampHopLimit(value: unknown): number {
  const n = checkInt(value, 0xff, "hop limit");
  nonZero(n, "hop limit");
  return n;
}

/** Buffer sizes and the backlog: [1, 2^31 - 1]. */
export function clampSize(value: unknown, what: string): bigint {
  const n = checkBigint(value, what);
  nonZero(n, what);
  return n > I32_MAX ? I32_MAX : n;
}
