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

export const STARTING = 0;
export const READY = 1;
export const DEAD = 2;

/** Where the payload starts; the worker's bootstrap hard-codes it too. */
export const PAYLOAD_OFFSET = 64;
/** Bytes a call or its answer may take: far more than any needs. */
const PAYLOAD_BYTES = 64 * 1024;

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
  /** Handles the main thread dropped since the last call. */
  d?: number[];
  /** The main thread's permission hook's verdict on the address of this call. */
  p?: boolean;
}

/** An answer: a value, a socket error (code, message), a TypeError or a trap. */
export type Answer =
  | { v: unknown }
  | { e: string; m: string }
  | { y: string }
  | { t: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// u64 values are bigints, which JSON cannot carry as they are.
function replacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? { $n: value.toString() } : value;
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

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(PAYLOAD_OFFSET + PAYLOAD_BYTES)) {
    this.buffer = buffer;
    this.words = new Int32Array(buffer, 0, PAYLOAD_OFFSET / 4);
    this.#payload = new Uint8Array(buffer, PAYLOAD_OFFSET);
  }

  /** Writes a message into the payload area. */
  write(message: unknown): void {
    const bytes = encoder.encode(JSON.stringify(message, replacer));
    if (bytes.length > this.#payload.length) {
      throw new Error(`A message of ${bytes.length} bytes does not fit the control block`);
    }
    this.#payload.set(bytes);
    Atomics.store(this.words, LENGTH, bytes.length);
  }

  /** Reads the message in the payload area. */
  read<T>(): T {
    const n = Atomics.load(this.words, LENGTH);
    // TextDecoder refuses views of shared memory.
    return JSON.parse(decoder.decode(this.#payload.slice(0, n)), reviver) as T;
  }
}
