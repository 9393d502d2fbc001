/**
 * Turns the errors of `node:net` (Node, and the node:net of Deno and Bun) into
 * {@link NetworkError}s with WIT error codes. Errors arrive as objects with a
 * `code` string (`"EADDRINUSE"`) or, from the internal handle API, as negative
 * errno numbers.
 *
 * @module
 */

import { getSystemErrorName } from "node:util";
import { NetworkError } from "../core/errors.ts";
import { type SocketOperation, witErrorCode } from "./_errno_codes.ts";



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
