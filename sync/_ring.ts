// A single-producer, single-consumer byte ring in a SharedArrayBuffer: the way
// a stream's bytes cross between the main thread and the sockets worker
// without structured clone. The header also carries the stream's end, its
// failure and, for output streams, flush and shutdown requests, so that
// non-blocking reads, check-write and write never need a round trip.

import { copyInto } from "../core/_copy.ts";

/** Header words (Int32). */
const W = 0; // bytes put, wrapping
const R = 1; // bytes taken, wrapping
const FLAGS = 2;
const FLUSH_REQUESTED = 3;
const FLUSH_DONE = 4;
/** Bumped by the main thread whenever it changes something the worker waits for. */
const DOORBELL = 5;
const ERROR_LENGTH = 6;
// Which of R and DOORBELL a consumer waits on: a wake-up is only sent then,
// since Atomics.notify to an async waiter wakes the other thread's event loop.
const WAITERS = 7;
const WAITS_TAKEN = 1;
const WAITS_DOORBELL = 2;
const HEADER_WORDS = 16;
const ERROR_OFFSET = HEADER_WORDS * 4;
const ERROR_BYTES = 448;
const DATA_OFFSET = ERROR_OFFSET + ERROR_BYTES;

/** The peer's end of stream, or the stream is closed: no bytes after those buffered. */
export const ENDED = 1;
/** The last operation failed; the message is in the header. */
export const FAILED = 2;
/** The main thread dropped the stream. */
export const DROPPED = 4;
/** The main thread asked for shutdown(send) once the buffered bytes are out. */
export const SHUTDOWN_SEND = 8;

/**
 * The data capacity of a ring: a power of two. Each batch that fills or
 * drains a ring costs both threads a sleep and a wake-up, so a larger ring
 * moves more per hand-over: 1 MiB against 512 KiB took the sync QuickJS echo
 * pair's 128 MiB from 420 to 381 ms on Node (16 interleaved pairs, medians),
 * 261 to 247 on Deno and 252 to 233 on Bun (6 each). 2 MiB gained no more
 * (a median pair's time 0.92 of 512 KiB's, against 0.90 for 1 MiB) and would
 * double the memory again: the worker keeps every ring it made for reuse.
 */
export const RING_CAPACITY = 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One direction of one stream. */
export class Ring {
  /** The shared memory, sent once to the other thread. */
  readonly buffer: SharedArrayBuffer;
  readonly #h: Int32Array;
  readonly #data: Uint8Array;
  readonly #mask: number;
  /** Bytes of data it holds at most. */
  readonly capacity: number;

  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.capacity = buffer.byteLength - DATA_OFFSET;
    if (this.capacity <= 0 || (this.capacity & (this.capacity - 1)) !== 0) {
      throw new RangeError(`A ring's capacity must be a power of two, got ${this.capacity}`);
    }
    this.#h = new Int32Array(buffer, 0, HEADER_WORDS);
    this.#data = new Uint8Array(buffer, DATA_OFFSET);
    this.#mask = this.capacity - 1;
  }

  /** Allocates a ring. */
  static create(capacity: number = RING_CAPACITY): Ring {
    return new Ring(new SharedArrayBuffer(DATA_OFFSET + capacity));
  }

  /** Makes a freed ring like new, for reuse by another stream. */
  reset(): void {
    this.#h.fill(0);
  }

  /** Bytes put and not yet taken. */
  available(): number {
    return (Atomics.load(this.#h, W) - Atomics.load(this.#h, R)) | 0;
  }

  /**
   * The bytes to read, or -1 when there are none and the writer has ended.
   * The writer puts its last bytes before it sets ENDED, so a count read
   * again after the flag holds every one of them.
   */
  readable(): number {
    const n = this.available();
    if (n > 0 || (this.flags() & ENDED) === 0) return n;
    return this.available() || -1;
  }

  /** Bytes that can be put now. */
  space(): number {
    return this.capacity - this.available();
  }

  /**
   * Copies `n` bytes of `src` in (the caller checked {@link space}). The
   * caller wakes the consumer: the main thread rings the doorbell, the worker
   * bumps the event sequence.
   */
  put(src: Uint8Array, n: number = src.length): void {
    const w = Atomics.load(this.#h, W);
    const at = w & this.#mask;
    const first = Math.min(n, this.capacity - at);
    copyInto(this.#data, at, first === src.length ? src : src.subarray(0, first));
    if (n > first) copyInto(this.#data, 0, src.subarray(first, n));
    Atomics.store(this.#h, W, (w + n) | 0);
  }

  /** Writes `n` zero bytes (the caller checked {@link space}). */
  putZeroes(n: number): void {
    const w = Atomics.load(this.#h, W);
    const at = w & this.#mask;
    const first = Math.min(n, this.capacity - at);
    this.#data.fill(0, at, at + first);
    if (n > first) this.#data.fill(0, 0, n - first);
    Atomics.store(this.#h, W, (w + n) | 0);
  }

  /** Copies `n` available bytes into `dst` at 0 and frees their room. */
  take(dst: Uint8Array, n: number): void {
    const r = Atomics.load(this.#h, R);
    const at = r & this.#mask;
    const first = Math.min(n, this.capacity - at);
    copyInto(dst, 0, this.#data.subarray(at, at + first));
    if (n > first) copyInto(dst, first, this.#data.subarray(0, n - first));
    Atomics.store(this.#h, R, (r + n) | 0);
    this.#wake(R, WAITS_TAKEN);
  }

  /**
   * Up to `n` available bytes as a view of the ring itself, without freeing
   * their room: the caller frees it with {@link discard} once the view is no
   * longer read. At most the bytes up to the ring's wrap-around, and never
   * every byte of the ring.
   */
  view(n: number): Uint8Array {
    const at = Atomics.load(this.#h, R) & this.#mask;
    // Never the whole ring: with every byte lent, the writer would wait for
    // room while no byte it has not seen makes the reader ready to read again.
    return this.#data.subarray(at, at + Math.min(n, this.capacity - at, this.capacity - 1));
  }

  /** Frees the room of `n` available bytes without reading them. */
  discard(n: number): void {
    Atomics.store(this.#h, R, (Atomics.load(this.#h, R) + n) | 0);
    this.#wake(R, WAITS_TAKEN);
  }

  /** The header flags. */
  flags(): number {
    return Atomics.load(this.#h, FLAGS);
  }

  /** Sets flags and wakes whoever waits on the ring. */
  setFlags(bits: number): void {
    Atomics.or(this.#h, FLAGS, bits);
    this.ring();
  }

  /** Records a failure (its error code, "" for none, and message) and sets FAILED | ENDED. */
  fail(code: string, message: string): void {
    const bytes = encoder.encode(`${code}\n${message}`).subarray(0, ERROR_BYTES);
    new Uint8Array(this.buffer, ERROR_OFFSET, ERROR_BYTES).set(bytes);
    Atomics.store(this.#h, ERROR_LENGTH, bytes.length);
    this.setFlags(FAILED | ENDED);
  }

  /** The failure recorded by {@link fail}. */
  failure(): { code: string; message: string } {
    const n = Atomics.load(this.#h, ERROR_LENGTH);
    // TextDecoder refuses views of shared memory.
    const text = decoder.decode(new Uint8Array(this.buffer, ERROR_OFFSET, n).slice());
    const cut = text.indexOf("\n");
    return { code: text.slice(0, cut), message: text.slice(cut + 1) };
  }

  /** Flushes asked for by the main thread. */
  flushRequested(): number {
    return Atomics.load(this.#h, FLUSH_REQUESTED);
  }

  /** Asks for a flush of everything put so far; returns its number. */
  requestFlush(): number {
    const n = (Atomics.add(this.#h, FLUSH_REQUESTED, 1) + 1) | 0;
    this.ring();
    return n;
  }

  /** Flushes the worker has completed. */
  flushDone(): number {
    return Atomics.load(this.#h, FLUSH_DONE);
  }

  /** Records that flush `n` completed. */
  completeFlush(n: number): void {
    Atomics.store(this.#h, FLUSH_DONE, n);
  }

  /** Wakes the other side's waits on this ring. */
  ring(): void {
    Atomics.add(this.#h, DOORBELL, 1);
    this.#wake(DOORBELL, WAITS_DOORBELL);
  }

  // The word was just changed. Sequentially consistent atomics on both sides
  // make this safe: either the waiter's flag is seen here, or the waiter's
  // Atomics.waitAsync sees the new value and does not wait. Only the waiter
  // clears its flag: the flag may belong to a wait that has set it but not yet
  // begun, which this notify then misses and the next one must not.
  #wake(word: number, bit: number): void {
    if ((Atomics.load(this.#h, WAITERS) & bit) !== 0) Atomics.notify(this.#h, word);
  }

  /** The doorbell's value, to wait on with {@link changed}. */
  doorbell(): number {
    return Atomics.load(this.#h, DOORBELL);
  }

  /**
   * Resolves once R moved from `seen` ("taken": the main thread read) or the
   * doorbell did ("doorbell"); undefined when it already has. The worker's
   * wait, which must not block its event loop.
   */
  changed(word: "taken" | "doorbell", seen: number): Promise<void> | undefined {
    const h = this.#h;
    const bit = word === "taken" ? WAITS_TAKEN : WAITS_DOORBELL;
    Atomics.or(h, WAITERS, bit);
    const result = Atomics.waitAsync(h, word === "taken" ? R : DOORBELL, seen);
    if (!result.async) {
      Atomics.and(h, WAITERS, ~bit);
      return undefined;
    }
    // Cleared before the waiter goes on, so that a wait ended cannot clear
    // the flag of the next one (nor, after a reset, of the ring's next user).
    return result.value.then(() => void Atomics.and(h, WAITERS, ~bit));
  }

  /** R, to pass to {@link changed}. */
  taken(): number {
    return Atomics.load(this.#h, R);
  }
}
