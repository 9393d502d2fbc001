/**
 * Turns the errors of `node:net` (Node, and the node:net of Deno and Bun) into
 * {@link NetworkError}s with WIT error codes. Errors arrive as objects with a
 * `code` string (`"EADDRINUSE"`) or, from the internal handle API, as negative
 * errno numbers.
 *
 * @module
 */

import { getSystemErrorName } from "node:util";
import { type ErrorCode, NetworkError } from "../core/errors.ts";

/**
 * The operation that failed; a few OS codes mean different things per operation.
 *
 * @example
 * ```ts
 * import type { SocketOperation } from "./_node_errors.ts";
 * const operation: SocketOperation = "bind";
 * ```
 */
export type SocketOperation = "bind" | "listen" | "connect" | "accept" | "io";

const CODES: Readonly<Record<string, ErrorCode>> = {
  EADDRINUSE: "address-in-use",
  EADDRNOTAVAIL: "address-not-bindable",
  ECONNREFUSED: "connection-refused",
  ECONNRESET: "connection-reset",
  // The core turns a reset on a write into stream `closed`, as wasmtime does for EPIPE.
  EPIPE: "connection-reset",
  ECONNABORTED: "connection-aborted",
  ETIMEDOUT: "timeout",
  EHOSTUNREACH: "remote-unreachable",
  ENETUNREACH: "remote-unreachable",
  EHOSTDOWN: "remote-unreachable",
  ENETDOWN: "remote-unreachable",
  EMFILE: "new-socket-limit",
  ENFILE: "new-socket-limit",
  ENOBUFS: "out-of-memory",
  ENOMEM: "out-of-memory",
  EACCES: "access-denied",
  EPERM: "access-denied",
  EAFNOSUPPORT: "invalid-argument",
  EINVAL: "invalid-argument",
  ENOTCONN: "invalid-state",
  EISCONN: "invalid-state",
};

/**
 * Maps an OS error code string to a WIT error code.
 *
 * @param code The OS code, such as `"ECONNREFUSED"`; unknown or missing codes give `unknown`.
 * @param operation What failed. On `bind`, EINVAL means address-not-bindable:
 * Deno's node:net reports EADDRNOTAVAIL that way, and Linux uses EINVAL for
 * an address that cannot be bound.
 * @returns The WIT error code.
 * @example
 * ```ts
 * import { witErrorCode } from "./_node_errors.ts";
 * console.log(witErrorCode("EADDRINUSE", "bind")); // "address-in-use"
 * ```
 */
export function witErrorCode(code: string | undefined, operation: SocketOperation): ErrorCode {
  if (code === undefined) return "unknown";
  if (code === "EINVAL" && operation === "bind") return "address-not-bindable";
  return CODES[code] ?? "unknown";
}

/**
 * Wraps a `node:net` error (or anything thrown) as a NetworkError. A
 * NetworkError passes through unchanged.
 *
 * @param error The error event's value or the thrown value.
 * @param operation What failed, see {@link witErrorCode}.
 * @param what A short description of the attempt, for the message.
 * @returns The NetworkError to throw or report.
 * @example
 * ```ts
 * import { toNetworkError } from "./_node_errors.ts";
 * const err = toNetworkError({ code: "ECONNREFUSED" }, "connect", "Connect to 127.0.0.1:1");
 * console.log(err.payload); // "connection-refused"
 * ```
 */
export function toNetworkError(
  error: unknown,
  operation: SocketOperation,
  what: string,
): NetworkError {
  if (error instanceof NetworkError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const text = typeof code === "string" ? code : String((error as Error)?.message ?? error);
  return new NetworkError(
    witErrorCode(typeof code === "string" ? code : undefined, operation),
    `${what} failed: ${text}`,
  );
}

/**
 * Wraps a negative errno, as the internal handle API returns it, as a
 * NetworkError.
 *
 * @param errno A negative errno such as -98.
 * @param operation What failed, see {@link witErrorCode}.
 * @param what A short description of the attempt, for the message.
 * @returns The NetworkError to throw.
 * @example
 * ```ts
 * import { errnoToNetworkError } from "./_node_errors.ts";
 * console.log(errnoToNetworkError(-98, "bind", "Bind to 127.0.0.1:80").payload); // "address-in-use"
 * ```
 */
export function errnoToNetworkError(
  errno: number,
  operation: SocketOperation,
  what: string,
): NetworkError {
  let code: string | undefined;
  try {
    code = getSystemErrorName(errno);
  } catch {
    // Not a known errno (getSystemErrorName throws for 0 and positive values).
  }
  return new NetworkError(witErrorCode(code, operation), `${what} failed: ${code ?? errno}`);
}

/**
 * Formats an address as `ip:port`, with brackets for IPv6, for messages.
 *
 * @param address The IP in text form.
 * @param port The port.
 * @returns The printable address.
 * @example
 * ```ts
 * import { formatAddress } from "./_node_errors.ts";
 * console.log(formatAddress("::1", 80)); // "[::1]:80"
 * ```
 */
export function formatAddress(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
