/**
 * Errors of the two domains the package serves: `wasi:sockets` error codes and
 * `wasi:io` stream errors. jco reads a thrown value's own `payload` property as
 * the `result` error, so every expected failure is thrown as one of these
 * classes. A WIT trap is a plain `Error` without `payload` (see {@link trap}).
 *
 * @module
 */

import { forgetRep } from "./_reps.ts";

/**
 * The `wasi:sockets/network.error-code` enum, in its kebab-case WIT spelling.
 *
 * @example
 * ```ts
 * import type { ErrorCode } from "./errors.ts";
 * const code: ErrorCode = "connection-refused";
 * ```
 */
export type ErrorCode =
  | "unknown"
  | "access-denied"
  | "not-supported"
  | "invalid-argument"
  | "out-of-memory"
  | "timeout"
  | "concurrency-conflict"
  | "not-in-progress"
  | "would-block"
  | "invalid-state"
  | "new-socket-limit"
  | "address-not-bindable"
  | "address-in-use"
  | "remote-unreachable"
  | "connection-refused"
  | "connection-reset"
  | "connection-aborted"
  | "datagram-too-large"
  | "name-unresolvable"
  | "temporary-resolver-failure"
  | "permanent-resolver-failure";

/**
 * A failed `wasi:sockets` call. `payload` is the WIT error code.
 *
 * @example
 * ```ts
 * import { NetworkError } from "./errors.ts";
 * const err = new NetworkError("invalid-state", "Socket is already bound");
 * console.log(err.payload); // "invalid-state"
 * ```
 */
export class NetworkError extends Error {
  /** The WIT error code that jco hands to the guest. */
  readonly payload: ErrorCode;

  /**
   * Creates the error for one failed call.
   *
   * @param code The WIT error code.
   * @param message A human-readable explanation; defaults to the code.
   */
  constructor(code: ErrorCode, message?: string) {
    super(message ?? code);
    this.name = "NetworkError";
    this.payload = code;
  }
}

/**
 * The `wasi:io/error.error` resource: an opaque error with a debug string.
 * The namespace `error` exports it as `Error`, the name jco imports.
 *
 * @example
 * ```ts
 * import { IoError } from "./errors.ts";
 * console.log(new IoError("connection reset by peer").toDebugString());
 * ```
 */
export class IoError {
  #message: string;
  /** The error code of the failed socket operation, when there was one. */
  readonly code: ErrorCode | undefined;

  /**
   * Creates the resource that a `last-operation-failed` stream error carries.
   *
   * @param message What went wrong, for humans.
   * @param code The socket error code behind it, if any.
   */
  constructor(message: string, code?: ErrorCode) {
    this.#message = message;
    this.code = code;
  }

  /**
   * A human-readable description, for debugging only.
   *
   * @returns The message given at construction.
   */
  toDebugString(): string {
    return this.#message;
  }

  /** Releases nothing; present because every resource can be dropped. */
  [Symbol.dispose](): void {
    forgetRep(this);
  }
}

/**
 * The `wasi:io/streams.stream-error` variant.
 *
 * @example
 * ```ts
 * import { IoError, type StreamErrorPayload } from "./errors.ts";
 * const closed: StreamErrorPayload = { tag: "closed" };
 * const failed: StreamErrorPayload = { tag: "last-operation-failed", val: new IoError("reset") };
 * ```
 */
export type StreamErrorPayload =
  | { tag: "closed" }
  | { tag: "last-operation-failed"; val: IoError };

/**
 * A failed `wasi:io/streams` call. `payload` is the `stream-error` variant.
 *
 * @example
 * ```ts
 * import { StreamError } from "./errors.ts";
 * const err = StreamError.closed();
 * console.log(err.payload.tag); // "closed"
 * ```
 */
export class StreamError extends Error {
  /** The WIT `stream-error` that jco hands to the guest. */
  readonly payload: StreamErrorPayload;

  /**
   * Creates the error for one failed stream call.
   *
   * @param payload The stream-error variant.
   * @param message A human-readable explanation.
   */
  constructor(payload: StreamErrorPayload, message?: string) {
    super(
      message ??
        (payload.tag === "closed" ? "Stream is closed" : payload.val.toDebugString()),
    );
    this.name = "StreamError";
    this.payload = payload;
  }

  /**
   * The `closed` stream error.
   *
   * @returns A new StreamError with payload `{ tag: "closed" }`.
   */
  static closed(): StreamError {
    return new StreamError({ tag: "closed" });
  }

  /**
   * A `last-operation-failed` stream error.
   *
   * @param error The wasi:io error resource describing the failure.
   * @returns A new StreamError carrying it.
   */
  static failed(error: IoError): StreamError {
    return new StreamError({ tag: "last-operation-failed", val: error });
  }
}

/**
 * Builds what the WIT calls a trap: a plain Error without `payload`, which jco
 * does not turn into a `result` but lets unwind the guest.
 *
 * @param message Why the guest broke the contract.
 * @returns The Error to throw.
 * @example
 * ```ts
 * import { trap } from "./errors.ts";
 * const e = trap("Write exceeds the check-write budget");
 * console.log("payload" in e); // false
 * ```
 */
export function trap(message: string): Error {
  return new Error(message);
}
