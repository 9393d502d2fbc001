/**
 * `wasi:sockets/network` address types in jco's shape, and the conversions and
 * checks the TCP state machine needs. Shape errors are TypeErrors; the WIT's
 * argument rules (family, unicast, unspecified) are `invalid-argument`.
 *
 * @module
 */

import type { HostAddress, IpFamily } from "./backend.ts";
import { NetworkError } from "./errors.ts";

/**
 * `wasi:sockets/network.ip-address-family`.
 *
 * @example
 * ```ts
 * import type { IpAddressFamily } from "./ip_socket_address.ts";
 * const family: IpAddressFamily = "ipv4";
 * ```
 */
export type IpAddressFamily = IpFamily;

/**
 * `wasi:sockets/network.ipv4-socket-address`.
 *
 * @example
 * ```ts
 * import type { Ipv4SocketAddress } from "./ip_socket_address.ts";
 * const addr: Ipv4SocketAddress = { port: 8080, address: [127, 0, 0, 1] };
 * ```
 */
export interface Ipv4SocketAddress {
  /** The port, 0 to 65535. */
  port: number;
  /** Four octets. */
  address: [number, number, number, number];
}

/**
 * `wasi:sockets/network.ipv6-socket-address`.
 *
 * @example
 * ```ts
 * import type { Ipv6SocketAddress } from "./ip_socket_address.ts";
 * const addr: Ipv6SocketAddress = {
 *   port: 8080, flowInfo: 0, scopeId: 0, address: [0, 0, 0, 0, 0, 0, 0, 1],
 * };
 * ```
 */
export interface Ipv6SocketAddress {
  /** The port, 0 to 65535. */
  port: number;
  /** The flow label, u32. */
  flowInfo: number;
  /** Eight 16-bit groups. */
  address: [number, number, number, number, number, number, number, number];
  /** The scope (interface) id, u32. */
  scopeId: number;
}

/**
 * `wasi:sockets/network.ip-socket-address`, as jco represents a variant.
 *
 * @example
 * ```ts
 * import type { IpSocketAddress } from "./ip_socket_address.ts";
 * const addr: IpSocketAddress = { tag: "ipv4", val: { port: 80, address: [10, 0, 0, 1] } };
 * ```
 */
export type IpSocketAddress =
  | { tag: "ipv4"; val: Ipv4SocketAddress }
  | { tag: "ipv6"; val: Ipv6SocketAddress };

function isInt(value: unknown, max: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 &&
    value <= max;
}

function isTuple(value: unknown, length: number, max: number): boolean {
  if (!Array.isArray(value) && !ArrayBuffer.isView(value)) return false;
  const list = value as ArrayLike<unknown>;
  if (list.length !== length) return false;
  for (let i = 0; i < length; i++) if (!isInt(list[i], max)) return false;
  return true;
}

/**
 * Checks that `value` has the shape of an `ip-socket-address`.
 *
 * @param value What the caller passed.
 * @param what The parameter's name, for the message.
 * @returns `value`, typed.
 * @throws {TypeError} When the shape or a field's range is wrong.
 * @example
 * ```ts
 * import { checkIpSocketAddress } from "./ip_socket_address.ts";
 * checkIpSocketAddress({ tag: "ipv4", val: { port: 80, address: [127, 0, 0, 1] } }, "remote");
 * ```
 */
export function checkIpSocketAddress(
  value: unknown,
  what: string,
): IpSocketAddress {
  const v = value as { tag?: unknown; val?: Record<string, unknown> } | null;
  if (typeof v !== "object" || v === null || typeof v.val !== "object" || v.val === null) {
    throw new TypeError(`Expected ${what} to be an ip-socket-address`);
  }
  const val = v.val;
  if (v.tag === "ipv4") {
    if (isInt(val.port, 0xffff) && isTuple(val.address, 4, 0xff)) {
      return value as IpSocketAddress;
    }
  } else if (v.tag === "ipv6") {
    if (
      isInt(val.port, 0xffff) && isTuple(val.address, 8, 0xffff) &&
      isInt(val.flowInfo ?? 0, 0xffffffff) && isInt(val.scopeId ?? 0, 0xffffffff)
    ) {
      return value as IpSocketAddress;
    }
  } else {
    throw new TypeError(`Expected ${what}.tag to be "ipv4" or "ipv6"`);
  }
  throw new TypeError(`Expected ${what} to have a valid port and ${v.tag} address`);
}

function isUnspecified(addr: IpSocketAddress): boolean {
  return (addr.val.address as number[]).every((x) => x === 0);
}

function isIpv4Mapped(a: Ipv6SocketAddress["address"]): boolean {
  return a[0] === 0 && a[1] === 0 && a[2] === 0 && a[3] === 0 && a[4] === 0 &&
    a[5] === 0xffff;
}

/**
 * Applies the WIT's argument rules shared by bind and connect: the family must
 * match the socket's, the address must be unicast, and an IPv6 socket takes no
 * IPv4-mapped address. Connect also refuses the unspecified address and port 0.
 *
 * @param addr A shape-checked address.
 * @param family The socket's family.
 * @param use Which call validates, since connect is stricter.
 * @throws {NetworkError} `invalid-argument` when a rule is broken.
 * @example
 * ```ts
 * import { validateSocketAddress } from "./ip_socket_address.ts";
 * validateSocketAddress({ tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } }, "ipv4", "bind");
 * ```
 */
export function validateSocketAddress(
  addr: IpSocketAddress,
  family: IpAddressFamily,
  use: "bind" | "connect",
): void {
  if (addr.tag !== family) {
    throw new NetworkError(
      "invalid-argument",
      `Address family ${addr.tag} does not match the socket's ${family}`,
    );
  }
  if (addr.tag === "ipv4") {
    const a = addr.val.address;
    if (a[0] >= 224 && a[0] <= 239) {
      throw new NetworkError("invalid-argument", "Multicast addresses are not unicast");
    }
    if (a[0] === 255 && a[1] === 255 && a[2] === 255 && a[3] === 255) {
      throw new NetworkError("invalid-argument", "The broadcast address is not unicast");
    }
  } else {
    const a = addr.val.address;
    if ((a[0] & 0xff00) === 0xff00) {
      throw new NetworkError("invalid-argument", "Multicast addresses are not unicast");
    }
    if (isIpv4Mapped(a)) {
      throw new NetworkError(
        "invalid-argument",
        "IPv4-mapped addresses are not allowed on IPv6 sockets, which are v6-only",
      );
    }
  }
  if (use === "connect") {
    if (isUnspecified(addr)) {
      throw new NetworkError("invalid-argument", "Cannot connect to the unspecified address");
    }
    if (addr.val.port === 0) {
      throw new NetworkError("invalid-argument", "Cannot connect to port 0");
    }
  }
}

/**
 * Converts a WASI address to the textual form backends use.
 *
 * @param addr A shape-checked address.
 * @returns The same address with a textual IP.
 * @example
 * ```ts
 * import { toHostAddress } from "./ip_socket_address.ts";
 * toHostAddress({ tag: "ipv4", val: { port: 8080, address: [127, 0, 0, 1] } }).address; // "127.0.0.1"
 * ```
 */
export function toHostAddress(addr: IpSocketAddress): HostAddress {
  if (addr.tag === "ipv4") {
    const a = addr.val.address;
    return {
      family: "ipv4",
      address: `${a[0]}.${a[1]}.${a[2]}.${a[3]}`,
      port: addr.val.port,
    };
  }
  return {
    family: "ipv6",
    address: formatIpv6(addr.val.address),
    port: addr.val.port,
    flowInfo: addr.val.flowInfo ?? 0,
    scopeId: addr.val.scopeId ?? 0,
  };
}

/**
 * Converts a backend's textual address to the WASI shape.
 *
 * @param host An address reported by a backend.
 * @returns The WASI address.
 * @throws {TypeError} When the backend reported an unparsable IP.
 * @example
 * ```ts
 * import { fromHostAddress } from "./ip_socket_address.ts";
 * fromHostAddress({ family: "ipv6", address: "::1", port: 80 }).val.address; // [0, 0, 0, 0, 0, 0, 0, 1]
 * ```
 */
export function fromHostAddress(host: HostAddress): IpSocketAddress {
  if (host.family === "ipv4") {
    const a = parseIpv4(host.address);
    if (!a) throw new TypeError(`Backend reported an invalid IPv4 address: ${host.address}`);
    return { tag: "ipv4", val: { port: host.port, address: a } };
  }
  const a = parseIpv6(host.address);
  if (!a) throw new TypeError(`Backend reported an invalid IPv6 address: ${host.address}`);
  return {
    tag: "ipv6",
    val: {
      port: host.port,
      flowInfo: host.flowInfo ?? 0,
      address: a,
      scopeId: host.scopeId ?? 0,
    },
  };
}

/**
 * Parses dotted-quad IPv4 text.
 *
 * @param text E.g. `"127.0.0.1"`.
 * @returns Four octets, or `undefined` when `text` is not an IPv4 address.
 * @example
 * ```ts
 * import { parseIpv4 } from "./ip_socket_address.ts";
 * parseIpv4("10.0.0.1"); // [10, 0, 0, 1]
 * ```
 */
export function parseIpv4(
  text: string,
): [number, number, number, number] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    // No leading zeros: inet_pton refuses them, and some parsers read them as octal.
    if (!/^(?:0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out as [number, number, number, number];
}

/**
 * Parses IPv6 text, with `::` compression, an embedded IPv4 tail and an
 * optional `%zone` (ignored).
 *
 * @param text E.g. `"::1"` or `"::ffff:127.0.0.1"`.
 * @returns Eight groups, or `undefined` when `text` is not an IPv6 address.
 * @example
 * ```ts
 * import { parseIpv6 } from "./ip_socket_address.ts";
 * parseIpv6("fe80::1"); // [0xfe80, 0, 0, 0, 0, 0, 0, 1]
 * ```
 */
export function parseIpv6(text: string): Ipv6SocketAddress["address"] | undefined {
  let s = text;
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  if (lastColon >= 0 && s.indexOf(".", lastColon) > 0) {
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    tail.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    s = s.slice(0, lastColon + 1);
    if (!s.endsWith("::")) s = s.slice(0, -1);
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const group = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    for (const g of part.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = group(halves[0]);
  if (!head) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const rest = group(halves[1]);
    if (!rest) return undefined;
    const fill = 8 - head.length - rest.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array(fill).fill(0), ...rest, ...tail];
  } else {
    groups = [...head, ...tail];
  }
  return groups.length === 8 ? groups as Ipv6SocketAddress["address"] : undefined;
}

/**
 * Formats eight groups as compressed IPv6 text (RFC 5952 style).
 *
 * @param groups Eight 16-bit groups.
 * @returns E.g. `"::1"`.
 * @example
 * ```ts
 * import { formatIpv6 } from "./ip_socket_address.ts";
 * formatIpv6([0, 0, 0, 0, 0, 0, 0, 1]); // "::1"
 * ```
 */
export function formatIpv6(groups: ArrayLike<number>): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string[] => {
    const out: string[] = [];
    for (let i = from; i < to; i++) out.push(groups[i].toString(16));
    return out;
  };
  if (bestStart < 0) return hex(0, 8).join(":");
  return `${hex(0, bestStart).join(":")}::${hex(bestStart + bestLen, 8).join(":")}`;
}
