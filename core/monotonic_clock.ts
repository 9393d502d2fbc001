/**
 * `wasi:clocks/monotonic-clock`, on `performance.now()`. Its pollables are
 * {@link Pollable}s of this package, so a guest can poll a socket and a
 * timeout together.
 *
 * @module
 */

import { checkBigint } from "./_options.ts";
import { Pollable } from "./pollable.ts";

const NS_PER_MS = 1_000_000;

function deadlinePollable(deadline: number): Pollable {
  return new Pollable({ ready: () => performance.now() >= deadline, deadline });
}

/**
 * `monotonic-clock.now`: the current instant in nanoseconds.
 *
 * @returns Nanoseconds since an arbitrary, fixed point.
 * @example
 * ```ts
 * import { now } from "./monotonic_clock.ts";
 * const t = now(); // e.g. 1234567890n
 * ```
 */
export function now(): bigint {
  return BigInt(Math.round(performance.now() * NS_PER_MS));
}

/**
 * `monotonic-clock.resolution`: the clock's tick, in nanoseconds.
 *
 * @returns 1000n: `performance.now()` has microsecond resolution at best.
 * @example
 * ```ts
 * import { resolution } from "./monotonic_clock.ts";
 * console.log(resolution()); // 1000n
 * ```
 */
export function resolution(): bigint {
  return 1000n;
}

/**
 * `monotonic-clock.subscribe-instant`: a pollable ready at instant `when`.
 *
 * @param when An instant from {@link now}'s scale, in nanoseconds.
 * @returns A pollable that becomes ready at `when` (at once if it has passed).
 * @throws {TypeError} When `when` is not a u64 bigint.
 * @example
 * ```ts
 * import { now, subscribeInstant } from "./monotonic_clock.ts";
 * await subscribeInstant(now() + 1_000_000n).block();
 * ```
 */
export function subscribeInstant(when: bigint): Pollable {
  checkBigint(when, "when");
  return deadlinePollable(Number(when) / NS_PER_MS);
}

/**
 * `monotonic-clock.subscribe-duration`: a pollable ready after `duration`.
 *
 * @param duration Nanoseconds from now; 0 is ready at once.
 * @returns The pollable.
 * @throws {TypeError} When `duration` is not a u64 bigint.
 * @example
 * ```ts
 * import { subscribeDuration } from "./monotonic_clock.ts";
 * await subscribeDuration(1_000_000n).block(); // 1 ms
 * ```
 */
export function subscribeDuration(duration: bigint): Pollable {
  checkBigint(duration, "duration");
  return deadlinePollable(performance.now() + Number(duration) / NS_PER_MS);
}
