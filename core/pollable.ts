/**
 * `wasi:io/poll`: the `pollable` resource and `poll`. Every pollable a guest can
 * see (sockets, streams, clocks) is this one class, because jco checks
 * `instanceof Pollable` against the class it imports.
 *
 * A pollable is a view on a {@link PollSource}: either a readiness check plus a
 * {@link Notifier} that fires when readiness may have changed, or a deadline.
 *
 * @module
 */

import { trap } from "./errors.ts";
import { forgetRep } from "./_reps.ts";

/**
 * Wakes whoever waits on a resource when its readiness may have changed.
 * Resources call {@link Notifier.notify} after every state change that could
 * make a pollable ready; waiters re-check, so spurious wake-ups are harmless.
 *
 * @example
 * ```ts
 * import { Notifier } from "./pollable.ts";
 * const n = new Notifier();
 * n.add(() => console.log("woken"));
 * n.notify();
 * ```
 */
export class Notifier {
  #waiters: Array<() => void> = [];

  /**
   * Registers a one-shot wake-up.
   *
   * @param wake Called on the next {@link notify}.
   */
  add(wake: () => void): void {
    this.#waiters.push(wake);
  }

  /**
   * Unregisters a wake-up that has not fired.
   *
   * @param wake The function given to {@link add}.
   */
  delete(wake: () => void): void {
    const i = this.#waiters.indexOf(wake);
    if (i >= 0) this.#waiters.splice(i, 1);
  }

  /** Calls and forgets every registered wake-up. */
  notify(): void {
    const list = this.#waiters;
    if (list.length === 0) return;
    this.#waiters = [];
    for (let i = 0; i < list.length; i++) list[i]();
  }
}

/**
 * What a {@link Pollable} observes.
 *
 * @example
 * ```ts
 * import type { PollSource } from "./pollable.ts";
 * const deadline = performance.now() + 10;
 * const timer: PollSource = { ready: () => performance.now() >= deadline, deadline };
 * ```
 */
export interface PollSource {
  /** Whether the pollable is ready now. Must not block or throw. */
  ready(): boolean;
  /** Fires when readiness may have changed. Absent for pure deadlines. */
  readonly notifier?: Notifier;
  /** A deadline on the `performance.now()` scale (ms) at which it is ready. */
  readonly deadline?: number;
}

// Guests that poll in a loop with something always ready would otherwise
// resume on microtasks forever under JSPI and starve the runtime's I/O, so
// now and then we hand the event loop one macrotask. A guest whose only ready
// pollables are clocks (a busy poll with a zero-duration clock) is waiting
// for I/O: it yields every 2 ms. One with a ready stream or socket is doing
// work, and how often it yields follows what a macrotask costs, so that at
// most a tenth of its time goes to yielding: Node's and Bun's setImmediate
// take microseconds (every 2 ms), Deno's setTimeout(0) about 2 ms (every
// ~20 ms, instead of halving the guest's speed).
const MIN_YIELD_MS = 2;
const MAX_YIELD_MS = 50;
const YIELD_SHARE = 10;
let yieldEvery = MIN_YIELD_MS;
const RESOLVED: Promise<void> = Promise.resolve();
const MAX_TIMER_MS = 0x7fff_ffff;
let lastYield = 0;

// setTimeout(0) lets every runtime poll for I/O; backends offer a cheaper
// macrotask where their runtime has one (setImmediate on Node and Bun).
let scheduleMacrotask: (cb: () => void) => void = (cb) => setTimeout(cb, 0);

function macrotask(resolve: () => void): void {
  const start = performance.now();
  scheduleMacrotask(() => {
    const cost = performance.now() - start;
    yieldEvery = Math.min(MAX_YIELD_MS, Math.max(MIN_YIELD_MS, cost * YIELD_SHARE));
    resolve();
  });
}

/**
 * Sets how pollables hand the event loop a turn, for runtimes with a cheaper
 * macrotask than `setTimeout(0)` that still runs pending I/O first.
 *
 * @param schedule Calls its argument after the runtime has polled for I/O.
 * @example
 * ```ts
 * import { useMacrotask } from "./pollable.ts";
 * useMacrotask((cb) => setTimeout(cb, 0));
 * ```
 */
export function useMacrotask(schedule: (cb: () => void) => void): void {
  scheduleMacrotask = schedule;
}

/**
 * Lets the event loop run I/O if the caller has not waited for a while.
 *
 * @param working Whether a stream or socket is ready (the caller has work),
 *   rather than only clocks (the caller spins waiting for I/O): a working
 *   caller yields less often where a macrotask is expensive.
 * @returns A promise that resolves after a macrotask when one is due, at once otherwise.
 * @example
 * ```ts
 * import { yieldToEventLoop } from "./pollable.ts";
 * await yieldToEventLoop();
 * ```
 */
export function yieldToEventLoop(working = false): Promise<void> | undefined {
  const now = performance.now();
  if (now - lastYield < (working ? yieldEvery : MIN_YIELD_MS)) return undefined;
  lastYield = now;
  return new Promise(macrotask);
}

// Set by Pollable's static block, so that only this module reads the source.
let sourceOf: (p: Pollable) => PollSource;

/**
 * The `wasi:io/poll.pollable` resource.
 *
 * @example
 * ```ts
 * import { Pollable } from "./pollable.ts";
 * const soon = new Pollable({ ready: () => performance.now() >= 0, deadline: 0 });
 * console.log(soon.ready()); // true
 * ```
 */
export class Pollable {
  #source: PollSource;

  /**
   * Creates a pollable over a readiness source.
   *
   * @param source What the pollable observes. Hosts may build their own
   * pollables this way, e.g. for other WASI interfaces.
   */
  constructor(source: PollSource) {
    this.#source = source;
  }

  /**
   * Whether the pollable is ready, without waiting.
   *
   * @returns `true` when a `block` would return at once.
   */
  ready(): boolean {
    return this.#source.ready();
  }

  /**
   * Waits until the pollable is ready. Under JSPI this suspends the guest.
   *
   * @returns A promise that resolves once ready.
   */
  block(): Promise<void> {
    const source = this.#source;
    if (source.ready()) return yieldToEventLoop(source.notifier !== undefined) ?? RESOLVED;
    return waitFor(source);
  }

  /** Drops the pollable; it holds no OS resources. */
  [Symbol.dispose](): void {
    forgetRep(this);
  }

  static {
    sourceOf = (p) => p.#source;
  }
}

function readyIndices(list: readonly Pollable[]): Uint32Array | undefined {
  let first = -1;
  let count = 0;
  for (let i = 0; i < list.length; i++) {
    if (sourceOf(list[i]).ready()) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (count === 0) return undefined;
  const out = new Uint32Array(count);
  if (count === 1) {
    out[0] = first;
    return out;
  }
  let j = 0;
  for (let i = first; i < list.length && j < count; i++) {
    if (sourceOf(list[i]).ready()) out[j++] = i;
  }
  return j === count ? out : out.subarray(0, j);
}

/**
 * Resolves once `done()` holds, checking it whenever one of `sources` changes.
 *
 * @param sources What `done` depends on.
 * @param done The condition to wait for.
 * @returns A promise that resolves once `done()` is true.
 * @example
 * ```ts ignore
 * await waitUntil([rx, tx], () => rx.ready() || tx.closed);
 * ```
 */
export async function waitUntil(sources: readonly PollSource[], done: () => boolean): Promise<void> {
  while (!done()) await waitChange(sources);
}

function waitChange(sources: readonly PollSource[]): Promise<void> {
  return new Promise<void>((resolve) => {
    const notifiers: Notifier[] = [];
    let deadline = Infinity;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const wake = (): void => {
      for (const n of notifiers) n.delete(wake);
      if (timer !== undefined) clearTimeout(timer);
      lastYield = performance.now();
      resolve();
    };
    for (const source of sources) {
      if (source.notifier && !notifiers.includes(source.notifier)) {
        notifiers.push(source.notifier);
        source.notifier.add(wake);
      }
      if (source.deadline !== undefined && source.deadline < deadline) {
        deadline = source.deadline;
      }
    }
    if (deadline !== Infinity) {
      // Timers may fire a little early; the caller re-checks readiness.
      // setTimeout fires at once past 2^31-1 ms; a longer wait just re-arms.
      const ms = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(deadline - performance.now())));
      timer = setTimeout(wake, ms);
    }
  });
}

// The answer for pollables that are ready: at once, or after a turn of the
// event loop when one is due.
function answer(list: readonly Pollable[], ready: Uint32Array): Uint32Array | Promise<Uint32Array> {
  let working = false;
  for (let i = 0; i < ready.length && !working; i++) {
    working = sourceOf(list[ready[i]]).notifier !== undefined;
  }
  const y = yieldToEventLoop(working);
  return y === undefined ? ready : y.then(() => ready);
}

// Waits for pollables none of which was ready.
async function waitReady(list: readonly Pollable[]): Promise<Uint32Array> {
  for (;;) {
    await waitChange(list.map(sourceOf));
    const ready = readyIndices(list);
    if (ready) return answer(list, ready);
  }
}

/**
 * `wasi:io/poll.poll`: waits until at least one pollable is ready.
 *
 * @param pollables The pollables to wait on; the list may repeat one.
 * @returns The indices of the ready ones, in order, as jco expects a `list<u32>`.
 * @throws {Error} A trap (no `payload`) for an empty list.
 * @throws {TypeError} When an entry is not a Pollable.
 * @example
 * ```ts
 * import { Pollable, poll } from "./pollable.ts";
 * const ready = await poll([new Pollable({ ready: () => true })]);
 * console.log(ready[0]); // 0
 * ```
 */
export function poll(pollables: Pollable[]): Promise<Uint32Array> {
  if (!Array.isArray(pollables)) {
    return Promise.reject(new TypeError("Expected a list of pollables"));
  }
  try {
    return Promise.resolve(pollNow(pollables));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * {@link poll} without a promise when it can answer at once: some pollable
 * is ready and the event loop is not due a turn. What a JSPI import returns
 * to spare the component a suspension.
 *
 * @param pollables The pollables to wait on.
 * @returns The indices of the ready ones, or the promise of them.
 * @throws {Error} A trap (no `payload`) for an empty list.
 * @throws {TypeError} When an entry is not a Pollable.
 * @example
 * ```ts
 * import { Pollable, pollNow } from "./pollable.ts";
 * const ready = pollNow([new Pollable({ ready: () => true })]);
 * console.log(ready instanceof Uint32Array ? ready[0] : "later"); // 0, or "later" when a turn is due
 * ```
 */
export function pollNow(pollables: Pollable[]): Uint32Array | Promise<Uint32Array> {
  if (pollables.length === 0) throw trap("Cannot poll an empty list of pollables");
  for (const p of pollables) {
    if (!(p instanceof Pollable)) throw new TypeError("Expected every entry to be a Pollable");
  }
  const ready = readyIndices(pollables);
  return ready === undefined ? waitReady(pollables) : answer(pollables, ready);
}

/**
 * Waits until `source` is ready, for the blocking stream calls.
 *
 * @param source What to wait on.
 * @returns A promise that resolves once `source.ready()` is true.
 * @example
 * ```ts
 * import { Notifier, waitFor } from "./pollable.ts";
 * await waitFor({ ready: () => true, notifier: new Notifier() });
 * ```
 */
export function waitFor(source: PollSource): Promise<void> {
  if (source.ready()) return RESOLVED;
  const notifier = source.notifier;
  if (notifier === undefined || source.deadline !== undefined) {
    return (async () => {
      while (!source.ready()) await waitChange([source]);
    })();
  }
  // The hot path of blocking reads and writes: one promise, one closure.
  return new Promise<void>((resolve) => {
    const wake = (): void => {
      if (!source.ready()) {
        notifier.add(wake);
        return;
      }
      lastYield = performance.now();
      resolve();
    };
    notifier.add(wake);
  });
}
