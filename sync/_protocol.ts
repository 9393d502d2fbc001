// The control block shared by the main thread and the sockets worker, and the
// encoding of the calls that go through it. Calls are rare (socket set-up,
// options, shutdown, drops, socket pollables); bytes and stream readiness go
// through the rings of ./_ring.ts instead.

/** Int32 words of the control block. */
export const REQUEST = 0; // number of the last call the main thread made
export const RESPONSE = 1; // number of the last call the worker answered
export const EVENTS = 2; // bumped by the worker whenever the main thread may see something new
export const STATE = 3; // STARTING, READY or DEAD
export const HEARTBEAT = 4; // bumped by the worker's timer
export const LENGTH = 5; // bytes of the message in the payload area
export const HANDLES = 6; // handles given out so far, by either thread
export const DEATH_LENGTH = 7; // bytes of the reason the worker died, in its own area
// 1 while the main thread waits on EVENTS: the worker skips the wake-up (a
// futex call under V8's lock) when nobody waits.
export const MAIN_WAITS = 8;

export const STARTING = 0;
export const READY = 1;
export const DEAD = 2;

/** Where the payload starts; the worker's bootstrap hard-codes it too. */
export const PAYLOAD_OFFSET = 64;
/** Bytes a call or its answer may take: far more than any needs. */
const PAYLOAD_BYTES = 64 * 1024;
/** Slots of the readiness table (a power of two); a socket uses slot `handle & (SLOTS - 1)`. */
const SLOTS = 1024;
/**
 * Where the reason the worker died goes: apart from the payload area, which a
 * worker that fails but goes on answering would overwrite. The worker's
 * bootstrap hard-codes it too.
 */
export const DEATH_OFFSET = PAYLOAD_OFFSET + PAYLOAD_BYTES + SLOTS * 8;
/** Bytes of the death reason at most. */
export const DEATH_BYTES = 4096;

/** Milliseconds between heartbeats. */
export const HEARTBEAT_MS = 200;

/** A call: an operation on a handle, drops to apply first. */
export interface Call {
  /** Operation. */
  op: string;
  /** Handle of the object it applies to (0: none). */
  h: number;
  /** Arguments. */
  a: unknown[];
  /** Sockets the main thread created since the last call: handle and family. */
  c?: [number, string][];
  /** Handles the main thread dropped since the last call. */
  d?: number[];
  /** The main thread's permission hook's verdict on the address of this call. */
  p?: boolean;
}

/**
 * An answer: a value, a socket error (code, message), a TypeError or a trap.
 * A value answering a call on a socket says whether the socket's pollable is
 * ready now (`r: 1`) or was armed to fire when it becomes ready (`r: 0`,
 * with `f` the fire count of its slot at that moment).
 */
export type Answer =
  | { v: unknown; r?: 0 | 1; f?: number }
  | { e: string; m: string }
  | { y: string }
  | { t: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// u64 values are bigints, which JSON cannot carry as they are.
function replacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? { $n: value.toString() } : value;
}

// Most messages carry no bigint, and a replacer costs a call per value:
// JSON.stringify without one throws a TypeError on a bigint, and only then
// is the replacer needed.
function stringify(message: unknown): string {
  try {
    return JSON.stringify(message);
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    return JSON.stringify(message, replacer);
  }
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === "object" && "$n" in value) {
    return BigInt((value as { $n: string }).$n);
  }
  return value;
}

/** The control block over its shared memory. */
export class Control {
  /** The shared memory. */
  readonly buffer: SharedArrayBuffer;
  /** Its words. */
  readonly words: Int32Array;
  readonly #payload: Uint8Array;
  // Per slot: how many socket pollables of the slot fired, and which socket
  // fired last. See {@link fired} and {@link fire}.
  readonly #fires: Int32Array;
  readonly #firedHandles: Int32Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(DEATH_OFFSET + DEATH_BYTES)) {
    this.buffer = buffer;
    this.words = new Int32Array(buffer, 0, PAYLOAD_OFFSET / 4);
    this.#payload = new Uint8Array(buffer, PAYLOAD_OFFSET, PAYLOAD_BYTES);
    this.#fires = new Int32Array(buffer, PAYLOAD_OFFSET + PAYLOAD_BYTES, SLOTS);
    this.#firedHandles = new Int32Array(buffer, PAYLOAD_OFFSET + PAYLOAD_BYTES + SLOTS * 4, SLOTS);
  }

  /**
   * The worker's side of the readiness table: the pollable of socket `handle`,
   * which the main thread waits on, is ready. It stays ready until the main
   * thread calls on that socket, so the main thread may take this as ready
   * without asking; see {@link fired}.
   */
  fire(handle: number): void {
    const slot = handle & (SLOTS - 1);
    Atomics.store(this.#firedHandles, slot, handle);
    Atomics.add(this.#fires, slot, 1);
  }

  /** The fire count of the slot of socket `handle`, read before asking whether it is ready. */
  fires(handle: number): number {
    return Atomics.load(this.#fires, handle & (SLOTS - 1));
  }

  /**
   * Whether socket `handle`, found not ready and waited on when its slot's
   * count was `seen`, has fired since: true (ready), false (not ready: no
   * fire in its slot), or undefined when another socket of the slot fired
   * and only asking the worker can tell.
   */
  fired(handle: number, seen: number): boolean | undefined {
    const slot = handle & (SLOTS - 1);
    const fires = Atomics.load(this.#fires, slot);
    if (fires === seen) return false;
    // A socket's fire stores its handle before it counts, and only while it
    // is ready: the last handle stored being ours means ours fired after
    // `seen` was read, or fired before and was ready when the worker last
    // answered, so it is still ready either way.
    return Atomics.load(this.#firedHandles, slot) === handle ? true : undefined;
  }

  /** Writes a message into the payload area. */
  write(message: unknown): void {
    const bytes = encoder.encode(stringify(message));
    if (bytes.length > this.#payload.length) {
      throw new Error(`A message of ${bytes.length} bytes does not fit the control block`);
    }
    this.#payload.set(bytes);
    Atomics.store(this.words, LENGTH, bytes.length);
  }

  /** Why the worker died, as its bootstrap wrote it; undefined when it wrote nothing. */
  deathReason(): string | undefined {
    const n = Math.min(Atomics.load(this.words, DEATH_LENGTH), DEATH_BYTES);
    if (n <= 0) return undefined;
    return decoder.decode(new Uint8Array(this.buffer, DEATH_OFFSET, n).slice());
  }

  /** Reads the message in the payload area. */
  read<T>(): T {
    const n = Atomics.load(this.words, LENGTH);
    // TextDecoder refuses views of shared memory.
    const text = decoder.decode(this.#payload.slice(0, n));
    // A reviver costs several microseconds per message, a good share of a
    // call; only messages that carry a u64 need it.
    return (text.includes('"$n"') ? JSON.parse(text, reviver) : JSON.parse(text)) as T;
  }
}
