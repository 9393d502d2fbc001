/**
 * Turns Bun's socket errors, and raw errnos from `bun:ffi` calls, into
 * {@link NetworkError}s with WIT error codes.
 *
 * Bun's errors look like `{ code: "EADDRINUSE", errno: 98 }`; the errno is
 * positive for listen failures and negative for connect failures, so only its
 * absolute value is used, and `code` wins when both are there.
 *
 * Bun.connect reports every connect failure as `ECONNREFUSED`: an unreachable
 * host, a timeout and a real refusal all look the same (measured with Bun
 * 1.4.5), so a Bun guest can see `connection-refused` where wasmtime would say
 * `remote-unreachable` or `timeout`. Nothing here can recover the real cause.
 *
 * @module
 */

import { type ErrorCode, NetworkError } from "../core/errors.ts";
import { witErrorCode } from "./_errno_codes.ts";

/** Linux errno numbers of the errors that have a WIT code. */
const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  12: "ENOMEM",
  13: "EACCES",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  32: "EPIPE",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  100: "ENETDOWN",
  101: "ENETUNREACH",
  103: "ECONNABORTED",
  104: "ECONNRESET",
  105: "ENOBUFS",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  112: "EHOSTDOWN",
  113: "EHOSTUNREACH",
};


/** The operation that failed, which decides the few context-dependent codes. */
export type Operation = "bind" | "listen" | "connect" | "io";

const VERBS: Readonly<Record<Operation, string>> = {
  bind: "Cannot bind",
  listen: "Cannot listen on",
  connect: "Cannot connect to",
  io: "Connection failed with",
};

/**
 * Maps an errno name such as `"EADDRINUSE"` to a WIT error code.
 *
 * @param name The errno name.
 * @param op The failed operation: on bind, `EINVAL` means the address cannot
 * be bound (as every backend reports it).
 * @returns The WIT code, `unknown` when there is none.
 * @example
 * ```ts
 * import { codeOf } from "./_bun_errors.ts";
 * console.log(codeOf("ECONNRESET", "io")); // "connection-reset"
 * ```
 */
export function codeOf(name: string, op: Operation): ErrorCode {
  return witErrorCode(name, op);
}

/**
 * Builds the NetworkError for a raw errno from a `bun:ffi` call.
 *
 * @param errno The errno, either sign.
 * @param op The failed operation.
 * @param what The subject for the message, such as `"127.0.0.1:80"`.
 * @returns The error to throw.
 * @example
 * ```ts
 * import { errnoError } from "./_bun_errors.ts";
 * throw errnoError(98, "bind", "127.0.0.1:8080"); // address-in-use
 * ```
 */
export function errnoError(errno: number, op: Operation, what: string): NetworkError {
  const n = Math.abs(errno);
  const name = ERRNO_NAMES[n] ?? `errno ${n}`;
  return new NetworkError(codeOf(name, op), `${VERBS[op]} ${what} (${name})`);
}

/**
 * Builds the NetworkError for an error Bun threw, rejected with or passed to a
 * socket handler. A value that already is a NetworkError passes through.
 *
 * @param error What Bun gave us.
 * @param op The failed operation.
 * @param what The subject for the message.
 * @returns The error to throw or report.
 * @example
 * ```ts
 * import { bunError } from "./_bun_errors.ts";
 * const e = bunError({ code: "ECONNREFUSED", errno: -111 }, "connect", "127.0.0.1:1");
 * console.log(e.payload); // "connection-refused"
 * ```
 */
export function bunError(error: unknown, op: Operation, what: string): NetworkError {
  if (error instanceof NetworkError) return error;
  const e = (typeof error === "object" && error !== null ? error : {}) as {
    code?: unknown;
    errno?: unknown;
    message?: unknown;
  };
  let name = typeof e.code === "string" ? e.code : undefined;
  if (name === undefined && typeof e.errno === "number") {
    name = ERRNO_NAMES[Math.abs(e.errno)];
  }
  if (name === undefined) {
    const detail = typeof e.message === "string" ? e.message : String(error);
    return new NetworkError("unknown", `${VERBS[op]} ${what}: ${detail}`);
  }
  return new NetworkError(codeOf(name, op), `${VERBS[op]} ${what} (${name})`);
}
