// The main thread's end of the synchronous mode: starts the sockets worker,
// makes calls that block on Atomics.wait, receives the rings, and waits for
// the worker's events. Every wait is bounded and checks that the worker is
// alive, so a dead or stuck worker becomes a trap with its reason, never a
// hang.

import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { NetworkError, type ErrorCode, trap } from "../core/errors.ts";
import {
  type Answer,
  type Call,
  Control,
  DEAD,
  DEATH_BYTES,
  DEATH_LENGTH,
  DEATH_OFFSET,
  EVENTS,
  HANDLES,
  HEARTBEAT,
  MAIN_WAITS,
  REQUEST,
  RESPONSE,
  STARTING,
  STATE,
} from "./_protocol.ts";
import { Ring } from "./_ring.ts";
import type { WorkerSetup } from "./_worker.ts";

/** How long the worker may take to start: module loading on a busy machine. */
const START_MS = 60_000;
/** How long a call may take: calls never wait for the network, so this is generous. */
const CALL_MS = 60_000;
/** A worker whose heartbeat stops this long is taken for dead. */
const STALL_MS = 15_000;
/** Longest single Atomics.wait, so that liveness is checked in between. */
const SLICE_MS = 500;
// A word nobody changes, to sleep on.
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Blocks the calling thread for `ms` milliseconds.
 *
 * @param ms How long.
 */
export function sleep(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}
// Channels with creates or drops not yet sent: a poll on clocks alone, which
// talks to no channel, sends them before it sleeps.
const unsent = new Set<Channel>();
/**
 * Creates and drops per request at most: about 20 bytes each, so a batch
 * leaves most of the 64 KiB payload area to the call it goes with.
 */
const BATCH = 1000;

// Runs in the worker as CommonJS (eval), so that even a failure to load the
// worker module reaches the main thread, through the control block.
const BOOTSTRAP = `
const { workerData } = require("node:worker_threads");
const words = new Int32Array(workerData.control, 0, 16);
function fail(e) {
  if (Atomics.load(words, ${STATE}) === ${DEAD}) return;
  const text = "The sockets worker failed: " + (e && e.stack || e);
  const bytes = new TextEncoder().encode(text).subarray(0, ${DEATH_BYTES});
  new Uint8Array(workerData.control, ${DEATH_OFFSET}, ${DEATH_BYTES}).set(bytes);
  Atomics.store(words, ${DEATH_LENGTH}, bytes.length);
  Atomics.store(words, ${STATE}, ${DEAD});
  for (const i of [${STATE}, ${RESPONSE}, ${EVENTS}]) Atomics.notify(words, i);
}
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);
// Where a worker is a web worker underneath (bun test skips the process
// handlers there), its global scope hears of the failure too.
if (typeof addEventListener === "function") {
  addEventListener("error", (event) => fail(event.error ?? event.message));
  addEventListener("unhandledrejection", (event) => fail(event.reason));
}
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  const { serve } = await import(workerData.url);
  await serve(workerData);
})().catch(fail);
`;

/** Options of the worker, as the main thread passes them on. */
export type ChannelOptions = Pick<WorkerSetup, "backend" | "receiveWindow" | "maxAcceptQueue"> & {
  /** Whether the main thread has a permission hook, which the worker then defers to. */
  permission: boolean;
};

function workerUrl(override?: string): { url: string; tsx?: string } {
  const source = import.meta.url.endsWith(".ts");
  const url = override ?? new URL(source ? "./_worker.ts" : "./_worker.js", import.meta.url).href;
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  // Node runs this package's TypeScript sources through tsx (the tests do);
  // its worker needs the loader registered too.
  if (source && g.Deno === undefined && g.Bun === undefined) {
    return { url, tsx: (import.meta as unknown as { resolve(s: string): string }).resolve("tsx/esm/api") };
  }
  return { url };
}

/** What tests may change: the worker module and the time limits. */
export interface ChannelLimits {
  /** The worker module's URL (it must export `serve`). */
  url?: string;
  /** How long the worker may take to start, in ms. */
  startMs?: number;
  /** How long a call may take, in ms. */
  callMs?: number;
  /** How long the heartbeat may stop, in ms. */
  stallMs?: number;
}

/** A sockets worker and the shared memory to talk to it. */
export class Channel {
  readonly #options: ChannelOptions;
  readonly #limits: Required<Omit<ChannelLimits, "url">> & { url?: string };
  #control: Control | undefined;
  #worker: Worker | undefined;
  #port: MessagePort | undefined;
  readonly #rings = new Map<number, Ring>();
  #creates: [number, string][] = [];
  #drops: number[] = [];
  #flushScheduled = false;
  // A request sent by flush() whose answer nobody waits for; the next
  // request waits for it first, since they share the payload area.
  #unanswered: number | undefined;
  // What the last answer about a socket said of its pollable: `true`, ready
  // (it stays so until the next call on the socket), or the fire count of its
  // slot when the worker found it not ready and armed it.
  readonly #known = new Map<number, number | true>();
  #requests = 0;
  #beat = -1;
  #beatAt = 0;
  #broken: string | undefined;

  constructor(options: ChannelOptions, limits: ChannelLimits = {}) {
    this.#options = options;
    this.#limits = { startMs: START_MS, callMs: CALL_MS, stallMs: STALL_MS, ...limits };
  }

  #words(): Int32Array {
    return this.#start().words;
  }

  #start(): Control {
    if (this.#broken) throw trap(this.#broken);
    const started = this.#control;
    if (started) {
      // A worker that failed may still answer; its failure comes first.
      if (Atomics.load(started.words, STATE) === DEAD) this.#checkAlive();
      return started;
    }
    const control = new Control();
    const { port1, port2 } = new MessageChannel();
    const { url, tsx } = workerUrl(this.#limits.url);
    const setup = { control: control.buffer, port: port2, url, tsx, ...this.#options };
    const worker = new Worker(BOOTSTRAP, { eval: true, workerData: setup, transferList: [port2] });
    // Neither keeps the process alive: a host that is done may exit.
    worker.unref();
    port1.unref();
    this.#worker = worker;
    this.#port = port1;
    this.#control = control;
    const words = control.words;
    const startMs = this.#limits.startMs;
    const until = performance.now() + startMs;
    while (Atomics.load(words, STATE) === STARTING) {
      const left = until - performance.now();
      if (left <= 0) this.#break(`The sockets worker did not start within ${startMs / 1000} s`);
      Atomics.wait(words, STATE, STARTING, Math.min(left, SLICE_MS));
    }
    this.#checkAlive();
    this.#beat = Atomics.load(words, HEARTBEAT);
    this.#beatAt = performance.now();
    return control;
  }

  #break(message: string): never {
    this.#broken = message;
    this.#worker?.terminate();
    throw trap(message);
  }

  #checkAlive(): void {
    if (this.#broken) throw trap(this.#broken);
    const control = this.#control!;
    const words = control.words;
    if (Atomics.load(words, STATE) === DEAD) {
      this.#break(control.deathReason() ?? "The sockets worker died");
    }
    const beat = Atomics.load(words, HEARTBEAT);
    const now = performance.now();
    if (beat !== this.#beat) {
      this.#beat = beat;
      this.#beatAt = now;
    } else if (now - this.#beatAt > this.#limits.stallMs) {
      this.#break(`The sockets worker stopped responding (no heartbeat for ${this.#limits.stallMs / 1000} s)`);
    }
  }

  /**
   * Makes a call and waits for its answer.
   *
   * @throws {NetworkError} The socket error the worker answered.
   * @throws {TypeError} For arguments the worker's core refused as such.
   * @throws {Error} A trap: the worker trapped, died or did not answer.
   */
  call(op: string, handle: number, args: unknown[] = [], permitted?: boolean): unknown {
    const control = this.#start();
    const words = control.words;
    const call: Call = { op, h: handle, a: args };
    if (permitted !== undefined) call.p = permitted;
    let fires = 0;
    if (handle !== 0) {
      this.#known.delete(handle);
      fires = control.fires(handle);
    }
    const request = this.#send(control, call);
    this.#await(words, request, op);
    const answer = control.read<Answer>();
    // The worker's count, read when it armed the pollable: a fire between
    // ours and the call (a connection that the call then took) is not news.
    if ("r" in answer) this.#known.set(handle, answer.r === 1 ? true : answer.f ?? fires);
    if ("e" in answer) throw new NetworkError(answer.e as ErrorCode, answer.m);
    if ("y" in answer) throw new TypeError(answer.y);
    if ("t" in answer) throw trap(answer.t);
    // JSON drops an undefined value, and with it the key.
    return (answer as { v?: unknown }).v;
  }

  // Writes a request, with the creates and drops made since the last one.
  // More than fit one request go ahead in requests of their own.
  #send(control: Control, call: Call): number {
    const words = control.words;
    if (this.#unanswered !== undefined) {
      const earlier = this.#unanswered;
      this.#unanswered = undefined;
      this.#await(words, earlier, "a batch of creates and drops");
    }
    while (this.#creates.length + this.#drops.length > BATCH) {
      const batch: Call = { op: "noop", h: 0, a: [] };
      this.#batch(batch);
      this.#await(words, this.#post(control, batch), "a batch of creates and drops");
    }
    this.#batch(call);
    return this.#post(control, call);
  }

  // Moves up to BATCH pending creates and drops into `call`: creates first,
  // and drops only once no create is left, since a drop may name a socket
  // created in the same task.
  #batch(call: Call): void {
    let room = BATCH;
    if (this.#creates.length > 0) {
      call.c = this.#creates.splice(0, room);
      room -= call.c.length;
    }
    if (room > 0 && this.#creates.length === 0 && this.#drops.length > 0) {
      call.d = this.#drops.splice(0, room);
    }
  }

  #post(control: Control, call: Call): number {
    const words = control.words;
    control.write(call);
    this.#requests++;
    const request = (Atomics.load(words, REQUEST) + 1) | 0;
    Atomics.store(words, REQUEST, request);
    Atomics.notify(words, REQUEST);
    return request;
  }

  #await(words: Int32Array, request: number, op: string): void {
    const callMs = this.#limits.callMs;
    const until = performance.now() + callMs;
    for (;;) {
      const seen = Atomics.load(words, RESPONSE);
      if (seen === request) break;
      if (Atomics.wait(words, RESPONSE, seen, SLICE_MS) === "timed-out") {
        this.#checkAlive();
        if (performance.now() > until) {
          this.#break(`The sockets worker did not answer ${op} within ${callMs / 1000} s`);
        }
      } else if (Atomics.load(words, STATE) === DEAD) this.#checkAlive();
    }
  }

  /** Requests sent to the worker so far (calls and batches of creates and drops). */
  get requests(): number {
    return this.#requests;
  }

  /**
   * Which of the sockets `handles` have ready pollables. Sockets that were
   * armed and have not fired since are known not ready without a call, so a
   * poll loop that keeps a listener in its list costs no call per turn.
   *
   * @param handles Socket handles.
   * @param arm Whether the worker should report, by an event, when the ones
   *   not ready become ready (the caller is about to wait).
   * @returns The ready ones.
   * @throws {Error} A trap when the worker dies or stops responding.
   */
  ready(handles: readonly number[], arm: boolean): Set<number> {
    const control = this.#start();
    const ready = new Set<number>();
    const ask: number[] = [];
    for (const h of handles) {
      const known = this.#known.get(h);
      if (known === true) {
        ready.add(h);
        continue;
      }
      if (known !== undefined) {
        const fired = control.fired(h, known);
        if (fired === false) continue;
        if (fired) {
          this.#known.set(h, true);
          ready.add(h);
          continue;
        }
        this.#known.delete(h);
      }
      ask.push(h);
    }
    if (ask.length === 0) return ready;
    const seen = ask.map((h) => control.fires(h));
    const answer = this.call("ready", 0, [ask, arm]) as number[];
    ask.forEach((h, i) => {
      if (answer.includes(h)) {
        this.#known.set(h, true);
        ready.add(h);
      } else if (arm) this.#known.set(h, seen[i]);
    });
    return ready;
  }

  /**
   * The ring the worker numbered `n`, which it sent before answering the
   * call that named it.
   */
  ring(n: number): Ring {
    const known = this.#rings.get(n);
    if (known) return known;
    const until = performance.now() + this.#limits.callMs;
    for (;;) {
      const message = receiveMessageOnPort(this.#port!);
      if (message) {
        const { ring, buffer } = message.message as { ring: number; buffer: SharedArrayBuffer };
        this.#rings.set(ring, new Ring(buffer));
        if (ring === n) return this.#rings.get(n)!;
        continue;
      }
      if (performance.now() > until) this.#break(`Ring ${n} never arrived from the sockets worker`);
      // Posted messages are queued at once on every runtime here; this only
      // guards against one that is not, without spinning.
      sleep(1);
      this.#checkAlive();
    }
  }

  /** The worker's event count, read before checking readiness. */
  events(): number {
    return Atomics.load(this.#words(), EVENTS);
  }

  /**
   * Waits until the event count moves from `seen` or the time `untilMs`
   * (performance.now()) comes. Sends pending drops first: the worker may be
   * what the wait is for.
   *
   * @throws {Error} A trap when the worker dies or stops responding.
   */
  wait(seen: number, untilMs: number): void {
    this.flush();
    const words = this.#words();
    for (;;) {
      if (Atomics.load(words, EVENTS) !== seen) return;
      const left = untilMs - performance.now();
      if (left <= 0) return;
      // Raised before the count is checked again (inside Atomics.wait): a
      // worker that bumps the count after this store sees the flag and
      // notifies; one that bumped it before changed what the wait compares.
      Atomics.store(words, MAIN_WAITS, 1);
      Atomics.wait(words, EVENTS, seen, Math.min(left, SLICE_MS));
      Atomics.store(words, MAIN_WAITS, 0);
      this.#checkAlive();
    }
  }

  /**
   * Drops a handle: sent with the next call, or once the current task ends,
   * whichever comes first.
   */
  drop(handle: number): void {
    if (this.#broken || !this.#control) return;
    this.#known.delete(handle);
    this.#drops.push(handle);
    this.#schedule();
  }

  /**
   * A handle for a new socket of `family`, which the worker creates when the
   * next request reaches it: creating cannot fail, so it needs no answer.
   */
  create(family: string): number {
    const words = this.#words();
    this.#checkAlive();
    const handle = Atomics.add(words, HANDLES, 1) + 1;
    this.#creates.push([handle, family]);
    this.#schedule();
    return handle;
  }

  // Creates and drops go with the next call, at the end of the current task,
  // or before a wait, whichever comes first. A synchronous guest may run
  // long without ending its task or making a call: a clock-only sleep then
  // sends them (see flushAll).
  #schedule(): void {
    unsent.add(this);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /**
   * Sends the pending creates and drops now, without waiting for the worker
   * to act on them.
   */
  flush(): void {
    unsent.delete(this);
    if (this.#broken || !this.#control) return;
    if (this.#creates.length === 0 && this.#drops.length === 0) return;
    try {
      this.#unanswered = this.#send(this.#control, { op: "noop", h: 0, a: [] });
    } catch {
      // A dead worker has nothing left to create or drop; the next call says why.
    }
  }

  /**
   * Sends the pending creates and drops of every channel, as {@link flush}:
   * what a thread about to sleep does, so that a dropped socket is closed
   * now and not when the sleeper next calls.
   */
  static flushAll(): void {
    for (const channel of unsent) channel.flush();
  }

  /** Stops the worker; later calls trap. */
  close(): void {
    unsent.delete(this);
    if (this.#broken) return;
    this.#broken = "The sockets worker was closed";
    this.#worker?.terminate();
  }
}
