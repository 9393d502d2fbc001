/**
 * The few libc socket calls Bun has no public API for, through `bun:ffi`:
 * creating a socket that is bound but not listening, reading back its address,
 * and raw `setsockopt`/`getsockopt` on the descriptors Bun exposes as
 * `socket.fd` and `listener.fd`; also a connection's addresses in one call
 * each, where Bun's getters make one per address and one per port. Linux
 * (glibc, x86_64 and aarch64 share these constants) only; {@link libc} throws
 * elsewhere so that callers can degrade.
 *
 * Only ever imported under Bun: `bun:ffi` does not exist anywhere else.
 *
 * @module
 */

import { dlopen, FFIType, read } from "bun:ffi";

/**
 * The Linux socket constants this package needs (the same on x86_64 and
 * aarch64).
 *
 * @example
 * ```ts
 * import { closeFd, LINUX, setIntOption, tcpSocket } from "./_bun_libc.ts";
 * const fd = tcpSocket(LINUX.AF_INET);
 * setIntOption(fd, LINUX.IPPROTO_IP, LINUX.IP_TTL, 42);
 * closeFd(fd);
 * ```
 */
export const LINUX = {
  AF_INET: 2,
  AF_INET6: 10,
  SOL_SOCKET: 1,
  SO_REUSEADDR: 2,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_KEEPALIVE: 9,
  IPPROTO_IP: 0,
  IP_TTL: 2,
  IPPROTO_IPV6: 41,
  IPV6_UNICAST_HOPS: 16,
  IPV6_V6ONLY: 26,
  IPPROTO_TCP: 6,
  TCP_KEEPIDLE: 4,
  TCP_KEEPINTVL: 5,
  TCP_KEEPCNT: 6,
} as const;

const { AF_INET, AF_INET6 } = LINUX;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOCKADDR_SIZE = 28; // sizeof(struct sockaddr_in6), the larger of the two
const EAFNOSUPPORT = 97;

const SYMBOLS = {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  getpeername: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  setsockopt: {
    args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32],
    returns: FFIType.i32,
  },
  getsockopt: {
    args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr],
    returns: FFIType.i32,
  },
  inet_pton: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  inet_ntop: {
    args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.u32],
    returns: FFIType.ptr,
  },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

/** The libc functions this package calls, as `bun:ffi` exposes them. */
export type Libc = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

let loaded: Libc | undefined;
let failure: Error | undefined;

/**
 * Opens libc on first use. Lazy so that importing the Bun backend costs
 * nothing until a socket needs a raw call.
 *
 * @returns The bound libc symbols.
 * @throws {Error} When libc cannot be opened (not Linux/glibc); the error is
 * cached so that later calls fail fast.
 * @example
 * ```ts
 * import { libc } from "./_bun_libc.ts";
 * libc().close(-1);
 * ```
 */
export function libc(): Libc {
  if (loaded) return loaded;
  if (failure) throw failure;
  if (process.platform !== "linux") {
    failure = new Error("Raw socket calls need Linux");
    throw failure;
  }
  try {
    loaded = dlopen("libc.so.6", SYMBOLS).symbols;
    return loaded;
  } catch (e) {
    failure = e instanceof Error ? e : new Error(String(e));
    throw failure;
  }
}

/**
 * Whether raw socket calls are available here, without throwing.
 *
 * @returns `true` when libc could be opened.
 * @example
 * ```ts
 * import { hasLibc } from "./_bun_libc.ts";
 * if (!hasLibc()) console.log("options will be stored only");
 * ```
 */
export function hasLibc(): boolean {
  try {
    libc();
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads `errno` right after a failed call. Nothing runs between the call and
 * this read (same thread, no await), so the value is the call's own.
 *
 * @returns The current thread's errno.
 * @example
 * ```ts
 * import { errno, libc } from "./_bun_libc.ts";
 * if (libc().close(-1) < 0) console.log(errno()); // 9 (EBADF)
 * ```
 */
export function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

const encoder = new TextEncoder();
// One scratch buffer each: calls are synchronous, so they can never overlap.
const scratchAddr = new Uint8Array(SOCKADDR_SIZE);
const scratchView = new DataView(scratchAddr.buffer);
const scratchLen = new Uint32Array(1);
const scratchInt = new Int32Array(1);
const scratchText = new Uint8Array(64);

/**
 * Encodes an IP and port as a `struct sockaddr_in` or `sockaddr_in6` in a
 * shared scratch buffer (valid until the next call of this module).
 *
 * @param family `LINUX.AF_INET` or `LINUX.AF_INET6`.
 * @param address The textual IP.
 * @param port The port.
 * @param flowInfo IPv6 flow info.
 * @param scopeId IPv6 scope id.
 * @returns The buffer and the length to pass to bind/connect.
 * @throws {RangeError} When `address` is not an IP of `family`.
 * @example
 * ```ts
 * import { encodeSockaddr, LINUX } from "./_bun_libc.ts";
 * const [buf, len] = encodeSockaddr(LINUX.AF_INET, "127.0.0.1", 80, 0, 0);
 * ```
 */
export function encodeSockaddr(
  family: number,
  address: string,
  port: number,
  flowInfo: number,
  scopeId: number,
): [Uint8Array, number] {
  scratchAddr.fill(0);
  scratchView.setUint16(0, family, true);
  scratchView.setUint16(2, port, false);
  const text = encoder.encode(address + "\0");
  if (family === AF_INET) {
    if (libc().inet_pton(AF_INET, text, scratchAddr.subarray(4, 8)) !== 1) {
      throw new RangeError(`Not an IPv4 address: ${address}`);
    }
    return [scratchAddr, 16];
  }
  scratchView.setUint32(4, flowInfo >>> 0, false);
  if (libc().inet_pton(AF_INET6, text, scratchAddr.subarray(8, 24)) !== 1) {
    throw new RangeError(`Not an IPv6 address: ${address}`);
  }
  scratchView.setUint32(24, scopeId >>> 0, true);
  return [scratchAddr, SOCKADDR_SIZE];
}

/** A decoded `getsockname` or `getpeername` result. */
export interface RawAddress {
  /** `LINUX.AF_INET` or `LINUX.AF_INET6`. */
  family: number;
  /** The IP in text form. */
  address: string;
  /** The port. */
  port: number;
  /** IPv6 flow info (0 for IPv4). */
  flowInfo: number;
  /** IPv6 scope id (0 for IPv4). */
  scopeId: number;
}

/**
 * The local address of a socket descriptor.
 *
 * @param fd The descriptor.
 * @returns The address, or the errno as a negative number on failure.
 * @throws {Error} When libc cannot be opened (see {@link libc}).
 * @example
 * ```ts
 * import { getsockname } from "./_bun_libc.ts";
 * const a = getsockname(3);
 * if (typeof a !== "number") console.log(a.port);
 * ```
 */
export function getsockname(fd: number): RawAddress | number {
  const c = libc();
  scratchLen[0] = SOCKADDR_SIZE;
  if (c.getsockname(fd, scratchAddr, scratchLen) < 0) return -errno();
  return decodeScratch(c);
}

/**
 * The remote address of a connected socket descriptor: one getpeername(2),
 * where Bun's `remoteAddress` and `remotePort` getters make one each.
 *
 * @param fd The descriptor.
 * @returns The address, or the errno as a negative number on failure
 * (`ENOTCONN` once the peer has reset the connection).
 * @throws {Error} When libc cannot be opened (see {@link libc}).
 * @example
 * ```ts
 * import { getpeername } from "./_bun_libc.ts";
 * const a = getpeername(3);
 * if (typeof a !== "number") console.log(a.address, a.port);
 * ```
 */
export function getpeername(fd: number): RawAddress | number {
  const c = libc();
  scratchLen[0] = SOCKADDR_SIZE;
  if (c.getpeername(fd, scratchAddr, scratchLen) < 0) return -errno();
  return decodeScratch(c);
}

// The sockaddr a getsockname or getpeername left in the scratch buffer.
function decodeScratch(c: Libc): RawAddress | number {
  const family = scratchView.getUint16(0, true);
  const port = scratchView.getUint16(2, false);
  if (family === AF_INET) {
    // Dotted quad without a call: a connection's addresses are read per accept or connect.
    const a = scratchAddr;
    return { family, address: `${a[4]}.${a[5]}.${a[6]}.${a[7]}`, port, flowInfo: 0, scopeId: 0 };
  }
  if (family !== AF_INET6) return -EAFNOSUPPORT;
  scratchText.fill(0);
  if (c.inet_ntop(family, scratchAddr.subarray(8, 24), scratchText, scratchText.length) === null) return -errno();
  const end = scratchText.indexOf(0);
  return {
    family,
    address: String.fromCharCode(...scratchText.subarray(0, end)),
    port,
    flowInfo: scratchView.getUint32(4, false),
    scopeId: scratchView.getUint32(24, true),
  };
}

/**
 * Sets an `int` socket option.
 *
 * @param fd The descriptor.
 * @param level `SOL_SOCKET`, `IPPROTO_TCP`, ...
 * @param name The option.
 * @param value The value.
 * @returns 0, or the errno as a negative number.
 * @example
 * ```ts
 * import { LINUX, setIntOption } from "./_bun_libc.ts";
 * setIntOption(3, LINUX.IPPROTO_IP, LINUX.IP_TTL, 42);
 * ```
 */
export function setIntOption(fd: number, level: number, name: number, value: number): number {
  scratchInt[0] = value;
  return libc().setsockopt(fd, level, name, scratchInt, 4) < 0 ? -errno() : 0;
}

/**
 * Reads an `int` socket option.
 *
 * @param fd The descriptor.
 * @param level `SOL_SOCKET`, `IPPROTO_TCP`, ...
 * @param name The option.
 * @returns The value, or `undefined` when the call failed.
 * @example
 * ```ts
 * import { getIntOption, LINUX } from "./_bun_libc.ts";
 * console.log(getIntOption(3, LINUX.IPPROTO_IP, LINUX.IP_TTL));
 * ```
 */
export function getIntOption(fd: number, level: number, name: number): number | undefined {
  scratchInt[0] = 0;
  scratchLen[0] = 4;
  return libc().getsockopt(fd, level, name, scratchInt, scratchLen) < 0 ? undefined : scratchInt[0];
}

/**
 * Creates a non-blocking, close-on-exec TCP socket. Non-blocking because Bun's
 * event loop accepts on it once it listens, and accepts until EAGAIN.
 *
 * @param family `LINUX.AF_INET` or `LINUX.AF_INET6`.
 * @returns The descriptor, or the errno as a negative number.
 * @example
 * ```ts
 * import { closeFd, LINUX, tcpSocket } from "./_bun_libc.ts";
 * const fd = tcpSocket(LINUX.AF_INET);
 * if (fd >= 0) closeFd(fd);
 * ```
 */
export function tcpSocket(family: number): number {
  const fd = libc().socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno() : fd;
}

/**
 * Binds a descriptor to the address last encoded by {@link encodeSockaddr}.
 *
 * @param fd The descriptor.
 * @param addr The buffer from encodeSockaddr.
 * @param len The length from encodeSockaddr.
 * @returns 0, or the errno as a negative number.
 * @example
 * ```ts
 * import { bindFd, encodeSockaddr, LINUX } from "./_bun_libc.ts";
 * bindFd(3, ...encodeSockaddr(LINUX.AF_INET, "127.0.0.1", 0, 0, 0));
 * ```
 */
export function bindFd(fd: number, addr: Uint8Array, len: number): number {
  return libc().bind(fd, addr, len) < 0 ? -errno() : 0;
}

/**
 * Calls `listen(2)`; on a socket that is already listening, Linux updates the
 * backlog.
 *
 * @param fd The descriptor.
 * @param backlog The accept queue length.
 * @returns 0, or the errno as a negative number.
 * @example
 * ```ts
 * import { listenFd } from "./_bun_libc.ts";
 * listenFd(3, 128);
 * ```
 */
export function listenFd(fd: number, backlog: number): number {
  return libc().listen(fd, backlog) < 0 ? -errno() : 0;
}

/**
 * Closes a descriptor this package created itself (never one Bun owns).
 *
 * @param fd The descriptor.
 * @returns Nothing.
 * @example
 * ```ts
 * import { closeFd } from "./_bun_libc.ts";
 * closeFd(3);
 * ```
 */
export function closeFd(fd: number): void {
  libc().close(fd);
}
