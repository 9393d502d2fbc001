/**
 * Turns `Deno.errors.*` into {@link NetworkError}s. Deno's errors carry the OS
 * code as `code` (`"EADDRINUSE"`) but no errno; the class name is the fallback
 * for the few without a code.
 *
 * @module
 */

import { type ErrorCode, NetworkError } from "../core/errors.ts";
import { type SocketOperation, witErrorCode } from "./_errno_codes.ts";

const NAMES: Readonly<Record<string, ErrorCode>> = {
  AddrInUse: "address-in-use",
  AddrNotAvailable: "address-not-bindable",
  ConnectionRefused: "connection-refused",
  ConnectionReset: "connection-reset",
  BrokenPipe: "connection-reset",
  ConnectionAborted: "connection-aborted",
  TimedOut: "timeout",
  NetworkUnreachable: "remote-unreachable",
  PermissionDenied: "access-denied",
  NotCapable: "access-denied",
  NotConnected: "invalid-state",
};

/**
 * Wraps an error thrown by `Deno.listen`, `Deno.connect` or a connection's
 * methods as a NetworkError. A NetworkError passes through unchanged.
 *
 * @param error The thrown value.
 * @param operation What failed; EINVAL on `bind` means address-not-bindable.
 * @param what A short description of the attempt, for the message.
 * @returns The NetworkError.
 * @example
 * ```ts
 * import { denoNetworkError } from "./_deno_errors.ts";
 * const err = denoNetworkError({ name: "ConnectionRefused", code: "ECONNREFUSED" }, "connect", "Connect");
 * console.log(err.payload); // "connection-refused"
 * ```
 */
export function denoNetworkError(
  error: unknown,
  operation: SocketOperation,
  what: string,
): NetworkError {
  if (error instanceof NetworkError) return error;
  const { code, name, message } = (error ?? {}) as {
    code?: unknown;
    name?: unknown;
    message?: unknown;
  };
  let wit = typeof code === "string" ? witErrorCode(code, operation) : "unknown";
  if (wit === "unknown" && typeof name === "string") wit = NAMES[name] ?? "unknown";
  const detail = typeof code === "string"
    ? code
    : typeof name === "string"
    ? name
    : String(message);
  return new NetworkError(wit, `${what} failed: ${detail}`);
}
