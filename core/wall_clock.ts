/**
 * `wasi:clocks/wall-clock`, on `performance.timeOrigin + performance.now()`.
 * Guests built with wasi-libc or componentize-qjs import it next to the
 * monotonic clock, so `--map 'wasi:clocks/*=wasi-tcp#*'` must find it here.
 *
 * @module
 */

/**
 * `wall-clock.datetime`: seconds and nanoseconds since the Unix epoch.
 *
 * @example
 * ```ts
 * import type { Datetime } from "./wall_clock.ts";
 * const epochPlusOne: Datetime = { seconds: 1n, nanoseconds: 500_000_000 };
 * ```
 */
export interface Datetime {
  /** Whole seconds. */
  seconds: bigint;
  /** Nanoseconds within the second, 0 to 999,999,999. */
  nanoseconds: number;
}

/**
 * `wall-clock.now`: the current time.
 *
 * @returns Seconds and nanoseconds since 1970-01-01T00:00:00Z.
 * @example
 * ```ts
 * import { now } from "./wall_clock.ts";
 * const { seconds } = now();
 * console.log(seconds > 1_700_000_000n); // true
 * ```
 */
export function now(): Datetime {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  const nanoseconds = Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1_000_000));
  return { seconds: BigInt(seconds), nanoseconds };
}

/**
 * `wall-clock.resolution`: the clock's tick.
 *
 * @returns One microsecond, what `performance.now()` offers at best.
 * @example
 * ```ts
 * import { resolution } from "./wall_clock.ts";
 * console.log(resolution().nanoseconds); // 1000
 * ```
 */
export function resolution(): Datetime {
  return { seconds: 0n, nanoseconds: 1000 };
}
