/**
 * The `wasi:sockets/tcp` options on a raw descriptor, through `bun:ffi`
 * setsockopt/getsockopt. Bun exposes the descriptors (`socket.fd`,
 * `listener.fd`) but only `setKeepAlive` and `setNoDelay` as options, and its
 * `setKeepAlive(true, ms)` also forces the interval to 1 s and the count to 10,
 * so every keep-alive option goes through here to leave the others alone.
 *
 * @module
 */

import type { TcpOptionName, TcpOptions } from "../core/backend.ts";
import { getIntOption, hasLibc, LINUX, setIntOption } from "./_bun_libc.ts";

const {
  IP_TTL,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPV6_UNICAST_HOPS,
  SO_KEEPALIVE,
  SO_RCVBUF,
  SO_SNDBUF,
  SOL_SOCKET,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
} = LINUX;

const NS_PER_S = 1_000_000_000n;
const I32_MAX = 0x7fff_ffff;
// Linux refuses larger keep-alive times (MAX_TCP_KEEPIDLE) and counts.
const MAX_KEEPALIVE_SECS = 32767;
const MAX_KEEPALIVE_COUNT = 127;

/** Where an option lives: level and name for IPv4 and IPv6 sockets. */
type Slot = readonly [level: number, name: number, level6: number, name6: number];

const SLOTS: Readonly<Record<TcpOptionName, Slot>> = {
  keepAliveEnabled: [SOL_SOCKET, SO_KEEPALIVE, SOL_SOCKET, SO_KEEPALIVE],
  keepAliveIdleTime: [IPPROTO_TCP, TCP_KEEPIDLE, IPPROTO_TCP, TCP_KEEPIDLE],
  keepAliveInterval: [IPPROTO_TCP, TCP_KEEPINTVL, IPPROTO_TCP, TCP_KEEPINTVL],
  keepAliveCount: [IPPROTO_TCP, TCP_KEEPCNT, IPPROTO_TCP, TCP_KEEPCNT],
  hopLimit: [IPPROTO_IP, IP_TTL, IPPROTO_IPV6, IPV6_UNICAST_HOPS],
  receiveBufferSize: [SOL_SOCKET, SO_RCVBUF, SOL_SOCKET, SO_RCVBUF],
  sendBufferSize: [SOL_SOCKET, SO_SNDBUF, SOL_SOCKET, SO_SNDBUF],
};

/**
 * Every option name, for backends that can set them all.
 *
 * @example
 * ```ts
 * import { ALL_OPTIONS } from "./_bun_sockopt.ts";
 * console.log(ALL_OPTIONS.has("hopLimit")); // true
 * ```
 */
export const ALL_OPTIONS: ReadonlySet<TcpOptionName> = new Set(
  Object.keys(SLOTS) as TcpOptionName[],
);

function secs(ns: bigint): number {
  const s = Number(ns / NS_PER_S);
  return s < 1 ? 1 : s > MAX_KEEPALIVE_SECS ? MAX_KEEPALIVE_SECS : s;
}

function clamp(n: number, max: number): number {
  return n < 1 ? 1 : n > max ? max : n;
}

/**
 * The `int` the OS expects for an option value: whole seconds (at least 1)
 * for durations, buffer sizes clamped to i32 max.
 *
 * @param name The option.
 * @param value Its value, as the core holds it.
 * @returns The value to pass to setsockopt.
 * @example
 * ```ts
 * import { osValue } from "./_bun_sockopt.ts";
 * console.log(osValue("keepAliveIdleTime", 1_500_000_000n)); // 1
 * ```
 */
export function osValue<K extends TcpOptionName>(name: K, value: TcpOptions[K]): number {
  switch (name) {
    case "keepAliveEnabled":
      return value ? 1 : 0;
    case "keepAliveIdleTime":
    case "keepAliveInterval":
      return secs(value as bigint);
    case "keepAliveCount":
      return clamp(value as number, MAX_KEEPALIVE_COUNT);
    case "hopLimit":
      return clamp(value as number, 255);
    default: {
      const v = value as bigint;
      return v > BigInt(I32_MAX) ? I32_MAX : v < 1n ? 1 : Number(v);
    }
  }
}

/**
 * Sets one option on a descriptor.
 *
 * @param fd The socket descriptor; negative means none.
 * @param v6 Whether the socket is IPv6 (picks IPV6_UNICAST_HOPS over IP_TTL).
 * @param name The option.
 * @param value Its value.
 * @returns `true` when setsockopt succeeded, `false` when it failed or there
 * is no descriptor or no libc.
 * @example
 * ```ts
 * import { closeFd, LINUX, tcpSocket } from "./_bun_libc.ts";
 * import { setOption } from "./_bun_sockopt.ts";
 * const fd = tcpSocket(LINUX.AF_INET);
 * setOption(fd, false, "hopLimit", 42);
 * closeFd(fd);
 * ```
 */
export function setOption<K extends TcpOptionName>(
  fd: number,
  v6: boolean,
  name: K,
  value: TcpOptions[K],
): boolean {
  if (fd < 0 || !hasLibc()) return false;
  const slot = SLOTS[name];
  const level = v6 ? slot[2] : slot[0];
  const opt = v6 ? slot[3] : slot[1];
  return setIntOption(fd, level, opt, osValue(name, value)) === 0;
}

/**
 * Reads one option back from a descriptor, in the OS's units (seconds for
 * keep-alive times; Linux reports buffer sizes doubled).
 *
 * @param fd The socket descriptor.
 * @param v6 Whether the socket is IPv6.
 * @param name The option.
 * @returns The OS value, or `undefined` when it cannot be read.
 * @example
 * ```ts
 * import { closeFd, LINUX, tcpSocket } from "./_bun_libc.ts";
 * import { readOption } from "./_bun_sockopt.ts";
 * const fd = tcpSocket(LINUX.AF_INET);
 * console.log(readOption(fd, false, "hopLimit")); // 64
 * closeFd(fd);
 * ```
 */
export function readOption(fd: number, v6: boolean, name: TcpOptionName): number | undefined {
  if (fd < 0 || !hasLibc()) return undefined;
  const slot = SLOTS[name];
  return getIntOption(fd, v6 ? slot[2] : slot[0], v6 ? slot[3] : slot[1]);
}
