/**
 * The OS error names (errno names such as `"ECONNREFUSED"`) that have a WIT
 * error code, shared by every backend: each backend reads its runtime's own
 * error shape in its own file, then names the errno here.
 *
 * @module
 */

import type { ErrorCode } from "../core/errors.ts";

/**
 * The operation that failed; a few OS codes mean different things per operation.
 *
 * @example
 * ```ts
 * import type { SocketOperation } from "./_errno_codes.ts";
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
 * import { witErrorCode } from "./_errno_codes.ts";
 * console.log(witErrorCode("EADDRINUSE", "bind")); // "address-in-use"
 * ```
 */
export function witErrorCode(code: string | undefined, operation: SocketOperation): ErrorCode {
  if (code === undefined) return "unknown";
  if (code === "EINVAL" && operation === "bind") return "address-not-bindable";
  return CODES[code] ?? "unknown";
}
