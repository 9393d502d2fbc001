/**
 * `wasi:io/streams` over a backend connection: the `input-stream` and
 * `output-stream` a connected TCP socket hands out.
 *
 * Bytes are never copied here. A read returns the chunk the backend delivered
 * (or a view of it); a write hands the caller's array to the backend, which
 * takes ownership. jco always passes a fresh copy of guest memory, so this is
 * safe for guests; JS callers must not modify an array after writing it.
 *
 * @module
 */

import type { BackendConnection, ConnectionSink } from "./backend.ts";
import { IoError, type NetworkError, StreamError, trap } from "./errors.ts";
import { copyOf } from "./_copy.ts";
import { isForeignStream } from "./_foreign_streams.ts";
import { forgetRep } from "./_reps.ts";
import { checkBigint } from "./_options.ts";
import { Notifier, Pollable, type PollSource, waitFor, waitUntil } from "./pollable.ts";

/**
 * How many bytes one check-write allows, as wasmtime.
 *
 * @example
 * ```ts
 * import { WRITE_BUDGET } from "./streams.ts";
 * console.log(WRITE_BUDGET); // 65536
 * ```
 */
export const WRITE_BUDGET = 65536;
const WRITE_BUDGET_BIG = BigInt(WRITE_BUDGET);
/**
 * The most blocking-write-and-flush may take; more traps.
 *
 * @example
 * ```ts
 * import { BLOCKING_WRITE_LIMIT } from "./streams.ts";
 * const chunk = new Uint8Array(10_000).subarray(0, BLOCKING_WRITE_LIMIT);
 * console.log(chunk.length); // 4096
 * ```
 */
export const BLOCKING_WRITE_LIMIT = 4096;
/**
 * The registered symbol by which an object says that its methods copy what
 * they keep of a `list<u8>` argument before they return. scripts/transpile.ts
 * makes jco's output lend such methods a view of guest memory instead of a
 * copy. An {@link OutputStream} carries it when its backend can write from
 * borrowed bytes (`BackendConnection.writeBorrowed`) without copying all of
 * them.
 *
 * @example
 * ```ts
 * import { COPIES_LIST_ARGUMENTS } from "./streams.ts";
 * const host = { [COPIES_LIST_ARGUMENTS]: true, update(bytes: Uint8Array) {} };
 * console.log(COPIES_LIST_ARGUMENTS in host); // true
 * ```
 */
export const COPIES_LIST_ARGUMENTS: unique symbol = Symbol.for("wasi-tcp.copiesListArguments");
/**
 * The registered symbol of an {@link OutputStream} method that writes bytes
 * lent for the call only, such as a view of guest memory or of shared memory:
 * like `write`, but the stream copies what it keeps before returning, into
 * the backend's pooled buffers where it has them (`writeBorrowed`). The
 * lowerings and the sync mode's worker write through it.
 *
 * @example
 * ```ts
 * import { OutputStream, WRITE_LENT } from "./streams.ts";
 * console.log(typeof OutputStream.prototype[WRITE_LENT]); // "function"
 * ```
 */
export const WRITE_LENT: unique symbol = Symbol.for("wasi-tcp.writeLent");
/**
 * How many received bytes the core holds for a guest that does not read.
 * Past it the backend stops reading and the kernel's window pushes back.
 *
 * @example
 * ```ts
 * import { RECEIVE_WINDOW } from "./streams.ts";
 * console.log(RECEIVE_WINDOW / 1024); // 256
 * ```
 */
export const RECEIVE_WINDOW = 256 * 1024;

const EMPTY = new Uint8Array(0);

function toLength(len: bigint): number {
  return len > 0x7fff_ffffn ? 0x7fff_ffff : Number(len);
}

// The receive side of one connection, shared by the sink and the InputStream.
class Receiver implements PollSource {
  readonly notifier: Notifier = new Notifier();
  chunks: Uint8Array[] = [];
  head = 0;
  bytes = 0;
  ended = false;
  closed = false;
  // Connections start paused, so a connection whose guest never reads costs
  // no pending read; the first read, skip or subscribe starts reading.
  paused = true;
  idle = true;
  // Set when the socket is dropped: deferred shutdowns are then moot.
  released = false;
  error: IoError | undefined;
  errorReported = false;
  // The guest was told closed (or shut the stream down): it stays closed,
  // whatever error comes later.
  closedReported = false;
  // With lending, the chunk the last read returned, to give back at the next.
  lent: Uint8Array | undefined;
  readonly recycle: ((chunk: Uint8Array) => void) | undefined;

  constructor(
    readonly connection: BackendConnection,
    readonly window: number,
    lend: boolean,
  ) {
    this.recycle = lend && connection.recycle ? connection.recycle.bind(connection) : undefined;
  }

  giveBack(): void {
    const lent = this.lent;
    if (lent !== undefined) {
      this.lent = undefined;
      this.recycle!(lent);
    }
  }

  wake(): void {
    if (!this.idle) return;
    this.idle = false;
    if (this.bytes < this.window && !this.closed && this.error === undefined) {
      this.paused = false;
      this.connection.resume();
    }
  }

  ready(): boolean {
    return this.bytes > 0 || this.ended || this.closed || this.error !== undefined;
  }

  push(chunk: Uint8Array): void {
    if (this.closed || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= this.window && !this.paused) {
      this.paused = true;
      this.connection.pause();
    }
    if (this.bytes === chunk.length) this.notifier.notify();
  }

  take(max: number, keep: boolean): Uint8Array {
    const chunks = this.chunks;
    let chunk = chunks[this.head];
    let out: Uint8Array;
    if (chunk.length <= max) {
      out = chunk;
      if (this.recycle !== undefined) {
        if (keep) this.lent = chunk;
        else this.recycle(chunk);
      }
      chunks[this.head++] = EMPTY;
      if (this.head === chunks.length) {
        chunks.length = 0;
        this.head = 0;
      } else if (this.head > 64) {
        chunks.splice(0, this.head);
        this.head = 0;
      }
    } else {
      out = chunk.subarray(0, max);
      chunk = chunk.subarray(max);
      chunks[this.head] = chunk;
    }
    this.bytes -= out.length;
    if (this.paused && !this.idle && this.bytes <= this.window >>> 1) {
      this.paused = false;
      this.connection.resume();
    }
    return keep ? out : EMPTY;
  }

  // Hands a pending failure to the guest once, then reports closed.
  fail(): never {
    if (this.error && !this.errorReported && !this.closedReported) {
      this.errorReported = true;
      throw StreamError.failed(this.error);
    }
    this.closedReported = true;
    throw StreamError.closed();
  }

  // shutdown(receive) and dropping the stream: discard, and tell the backend
  // to stop delivering. The backend call waits a microtask, because a guest
  // usually drops its socket right after its streams, and closing makes the
  // shutdown moot.
  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.closedReported = true;
    this.chunks = [];
    this.head = 0;
    this.bytes = 0;
    this.lent = undefined;
    if (this.error === undefined) {
      queueMicrotask(() => {
        if (!this.released) this.connection.shutdown("receive");
      });
    }
    this.notifier.notify();
  }
}

// The send side of one connection, shared by the sink and the OutputStream.
// As in wasmtime, check-write's answer is a budget that writes use up, so a
// guest may split what it was allowed over several writes: it is refilled
// while the backend takes more, and kept (not taken back) while it drains.
class Sender implements PollSource {
  readonly notifier: Notifier = new Notifier();
  // The backend is below its high-water mark.
  writable = true;
  budget = WRITE_BUDGET;
  // A flush is pending: until the backend has handed every byte to the OS,
  // check-write answers 0 and a write traps, as the WIT says.
  flushing = false;
  closed = false;
  released = false;
  error: IoError | undefined;
  errorReported = false;
  #flushed: PollSource | undefined;
  // The backend can write lent bytes (writeBorrowed): lent writes need no
  // copy of the core's.
  readonly lends: boolean;
  // Plain writes go through writeBorrowed too, so callers may lend their
  // bytes; not where writeBorrowed copies every byte and write() none.
  readonly borrows: boolean;

  constructor(readonly connection: BackendConnection) {
    this.lends = typeof connection.writeBorrowed === "function";
    this.borrows = this.lends && connection.borrowedWritesCopy !== true;
  }

  ready(): boolean {
    return (this.budget > 0 && !this.flushing) || this.closed || this.error !== undefined;
  }

  // Ready once a pending flush is over: what blocking-flush waits for.
  get flushed(): PollSource {
    return this.#flushed ??= {
      ready: () => !this.flushing || this.closed || this.error !== undefined,
      notifier: this.notifier,
    };
  }

  permit(): number {
    return this.flushing ? 0 : this.budget;
  }

  flush(): void {
    this.check();
    if (this.flushing) return;
    const done = this.connection.flush ? this.connection.flush() : this.writable;
    if (!done) this.flushing = true;
  }

  check(): void {
    // Closed by shutdown(send) or a drop stays closed, whatever error comes later.
    if (this.closed) throw StreamError.closed();
    if (this.error && !this.errorReported) {
      this.errorReported = true;
      throw StreamError.failed(this.error);
    }
    if (this.error) throw StreamError.closed();
  }

  // `lent`: the caller keeps `chunk`, and it is only good until this returns.
  write(chunk: Uint8Array, lent: boolean = this.borrows): void {
    this.check();
    if (chunk.length > this.permit()) {
      throw trap(
        this.flushing && chunk.length > 0
          ? "Write while a flush is pending"
          : `Write of ${chunk.length} bytes exceeds the ${this.budget} bytes check-write allowed`,
      );
    }
    if (chunk.length === 0) return;
    const accepted = !lent
      ? this.connection.write(chunk)
      : this.lends
      ? this.connection.writeBorrowed!(chunk)
      : this.connection.write(copyOf(chunk));
    if (accepted) {
      this.writable = true;
      this.budget = WRITE_BUDGET;
    } else {
      this.writable = false;
      this.budget -= chunk.length;
    }
  }

  // FIN once queued bytes are out; deferred like Receiver.shutdown.
  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.error === undefined) {
      queueMicrotask(() => {
        if (!this.released) this.connection.shutdown("send");
      });
    }
    this.notifier.notify();
  }
}

class Sink implements ConnectionSink {
  constructor(readonly rx: Receiver, readonly tx: Sender) {}

  data(chunk: Uint8Array): void {
    this.rx.push(chunk);
  }

  end(): void {
    this.rx.ended = true;
    this.rx.notifier.notify();
  }

  drain(): void {
    this.tx.writable = true;
    this.tx.budget = WRITE_BUDGET;
    this.tx.flushing = false;
    this.tx.notifier.notify();
  }

  error(error: NetworkError): void {
    // One resource per side: each side hands its error to the guest once, as
    // a handle of its own, which the guest drops on its own.
    this.rx.error = new IoError(error.message, error.payload);
    this.tx.error = new IoError(error.message, error.payload);
    this.rx.notifier.notify();
    this.tx.notifier.notify();
  }
}

// For splice, which reads another stream's receiver.
let receiverOf: (stream: InputStream) => Receiver;
let isOwnInput: (value: unknown) => value is InputStream;

/**
 * `wasi:io/streams.input-stream`: the receive side of a TCP connection.
 *
 * @example
 * ```ts
 * import { createWasiSockets } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const net = wasi.instanceNetwork.instanceNetwork();
 * const server = wasi.tcpCreateSocket.createTcpSocket("ipv4");
 * server.startBind(net, { tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } });
 * server.finishBind();
 * server.startListen();
 * server.finishListen();
 * const client = wasi.tcpCreateSocket.createTcpSocket("ipv4");
 * client.startConnect(net, server.localAddress());
 * await client.subscribe().block();
 * const [input, output] = client.finishConnect();
 * console.log(input.read(65536n).length); // 0: nothing has arrived yet
 * output[Symbol.dispose]();
 * ```
 */
export class InputStream {
  #rx: Receiver;

  /** Built by the core for a connection; not for direct use. */
  constructor(internal: unknown) {
    if (!(internal instanceof Receiver)) {
      throw new TypeError("InputStream is created by TcpSocket, not constructed");
    }
    this.#rx = internal;
  }

  static {
    receiverOf = (stream) => stream.#rx;
    isOwnInput = (value) => typeof value === "object" && value !== null && #rx in value;
  }

  /**
   * `instanceof InputStream`: true for this package's input streams and for
   * another host's (such as preview2-shim's stdin), which jco checks against
   * this class when wasi:cli comes from elsewhere.
   *
   * @param value Anything.
   * @returns Whether it is an input stream.
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    return isOwnInput(value) || isForeignStream(value, "input");
  }

  /**
   * Reads what has arrived, without waiting.
   *
   * @param len The most bytes to return.
   * @returns Up to `len` bytes; empty when nothing has arrived yet.
   * @throws {StreamError} `closed` at end of stream or after shutdown(receive);
   * `last-operation-failed` once after a connection error.
   * @throws {TypeError} When `len` is not a u64 bigint.
   */
  read(len: bigint): Uint8Array {
    checkBigint(len, "len");
    const rx = this.#rx;
    if (rx.idle) rx.wake();
    if (rx.lent !== undefined) rx.giveBack();
    if (rx.bytes > 0) return len === 0n ? EMPTY : rx.take(toLength(len), true);
    if (rx.ended || rx.closed || rx.error) rx.fail();
    return EMPTY;
  }

  /**
   * Waits until at least one byte or the end of stream is there, then reads.
   *
   * @param len The most bytes to return.
   * @returns Up to `len` bytes, at least one unless `len` is 0.
   * @throws {StreamError} As {@link read}.
   * @throws {TypeError} When `len` is not a u64 bigint.
   */
  async blockingRead(len: bigint): Promise<Uint8Array> {
    checkBigint(len, "len");
    this.#rx.wake();
    if (len > 0n && !this.#rx.ready()) await waitFor(this.#rx);
    return this.read(len);
  }

  /**
   * Discards what has arrived, without waiting.
   *
   * @param len The most bytes to discard.
   * @returns How many bytes were discarded.
   * @throws {StreamError} As {@link read}.
   * @throws {TypeError} When `len` is not a u64 bigint.
   */
  skip(len: bigint): bigint {
    checkBigint(len, "len");
    const rx = this.#rx;
    if (rx.idle) rx.wake();
    if (rx.lent !== undefined) rx.giveBack();
    let left = toLength(len);
    let skipped = 0;
    while (left > 0 && rx.bytes > 0) {
      const before = rx.bytes;
      rx.take(left, false);
      const n = before - rx.bytes;
      skipped += n;
      left -= n;
    }
    // As read: a zero-length skip reports the end once nothing is left.
    if (skipped > 0 || (len === 0n && rx.bytes > 0)) return BigInt(skipped);
    if (rx.ended || rx.closed || rx.error) rx.fail();
    return 0n;
  }

  /**
   * Waits like {@link blockingRead}, then skips.
   *
   * @param len The most bytes to discard.
   * @returns How many bytes were discarded.
   * @throws {StreamError} As {@link read}.
   * @throws {TypeError} When `len` is not a u64 bigint.
   */
  async blockingSkip(len: bigint): Promise<bigint> {
    checkBigint(len, "len");
    this.#rx.wake();
    if (len > 0n && !this.#rx.ready()) await waitFor(this.#rx);
    return this.skip(len);
  }

  /**
   * A pollable that is ready when data, the end of stream or an error is there.
   *
   * @returns A new pollable.
   */
  subscribe(): Pollable {
    this.#rx.wake();
    return new Pollable(this.#rx);
  }

  /** Drops the stream: later data is discarded and the backend stops delivering it. */
  [Symbol.dispose](): void {
    forgetRep(this);
    this.#rx.shutdown();
  }
}

/**
 * `wasi:io/streams.output-stream`: the send side of a TCP connection.
 *
 * @example
 * ```ts
 * import { createWasiSockets } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const wasi = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const net = wasi.instanceNetwork.instanceNetwork();
 * const server = wasi.tcpCreateSocket.createTcpSocket("ipv4");
 * server.startBind(net, { tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } });
 * server.finishBind();
 * server.startListen();
 * server.finishListen();
 * const client = wasi.tcpCreateSocket.createTcpSocket("ipv4");
 * client.startConnect(net, server.localAddress());
 * await client.subscribe().block();
 * const [input, output] = client.finishConnect();
 * await output.blockingWriteAndFlush(new TextEncoder().encode("hello"));
 * input[Symbol.dispose]();
 * ```
 */
export class OutputStream {
  #tx: Sender;

  /** Built by the core for a connection; not for direct use. */
  constructor(internal: unknown) {
    if (!(internal instanceof Sender)) {
      throw new TypeError("OutputStream is created by TcpSocket, not constructed");
    }
    this.#tx = internal;
    if (internal.borrows) Object.defineProperty(this, COPIES_LIST_ARGUMENTS, { value: true });
  }

  /**
   * `instanceof OutputStream`: true for this package's output streams and for
   * another host's (such as preview2-shim's stdout), which jco checks against
   * this class when wasi:cli comes from elsewhere.
   *
   * @param value Anything.
   * @returns Whether it is an output stream.
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    return (typeof value === "object" && value !== null && #tx in value) || isForeignStream(value, "output");
  }

  /**
   * How many bytes the next {@link write} may take.
   *
   * @returns 65536 while the connection takes more; while it drains, what is
   * left of the last answer (writes use it up), down to 0; 0 while a flush is
   * pending.
   * @throws {StreamError} `closed` after shutdown(send); `last-operation-failed`
   * once after a connection error.
   */
  checkWrite(): bigint {
    const tx = this.#tx;
    tx.check();
    const n = tx.permit();
    return n === WRITE_BUDGET ? WRITE_BUDGET_BIG : BigInt(n);
  }

  /**
   * Hands bytes to the connection. The stream takes ownership of `contents`,
   * unless it carries {@link COPIES_LIST_ARGUMENTS} (its backend writes from
   * borrowed bytes): then it copies what it keeps before returning.
   *
   * @param contents At most what {@link checkWrite} allowed.
   * @throws {Error} A trap (no `payload`) when `contents` exceeds the budget.
   * @throws {StreamError} As {@link checkWrite}.
   * @throws {TypeError} When `contents` is not a Uint8Array.
   */
  write(contents: Uint8Array): void {
    if (!(contents instanceof Uint8Array)) {
      throw new TypeError("Expected contents to be a Uint8Array");
    }
    this.#tx.write(contents);
  }

  /**
   * Like {@link write}, for bytes lent for the call only: the stream copies
   * what it keeps before returning (see {@link WRITE_LENT}).
   *
   * @param contents At most what {@link checkWrite} allowed.
   * @throws {Error} A trap (no `payload`) when `contents` exceeds the budget.
   * @throws {StreamError} As {@link checkWrite}.
   * @throws {TypeError} When `contents` is not a Uint8Array.
   */
  [WRITE_LENT](contents: Uint8Array): void {
    if (!(contents instanceof Uint8Array)) {
      throw new TypeError("Expected contents to be a Uint8Array");
    }
    this.#tx.write(contents, true);
  }

  /**
   * Writes up to 4096 bytes, waiting for room first, then waits for the flush.
   *
   * @param contents At most 4096 bytes.
   * @returns A promise that resolves once the bytes are handed to the OS.
   * @throws {Error} A trap (no `payload`) for more than 4096 bytes.
   * @throws {StreamError} As {@link checkWrite}.
   * @throws {TypeError} When `contents` is not a Uint8Array.
   */
  async blockingWriteAndFlush(contents: Uint8Array): Promise<void> {
    if (!(contents instanceof Uint8Array)) {
      throw new TypeError("Expected contents to be a Uint8Array");
    }
    if (contents.length > BLOCKING_WRITE_LIMIT) {
      throw trap(
        `Blocking write of ${contents.length} bytes exceeds the limit of ${BLOCKING_WRITE_LIMIT}`,
      );
    }
    const tx = this.#tx;
    tx.check();
    // Lent guest memory is only good until the first await.
    if (tx.borrows) contents = contents.slice();
    // What is left of a budget may be less than `contents`: write in pieces.
    let done = 0;
    do {
      if (!tx.ready()) await waitFor(tx);
      tx.check();
      const n = Math.min(tx.permit(), contents.length - done);
      tx.write(n === contents.length ? contents : contents.subarray(done, done + n));
      done += n;
    } while (done < contents.length);
    await this.blockingFlush();
  }

  /**
   * Starts flushing: until the backend has handed every byte written so far
   * to the OS, {@link checkWrite} answers 0, a write traps and the pollable is
   * not ready.
   *
   * @throws {StreamError} As {@link checkWrite}.
   */
  flush(): void {
    this.#tx.flush();
  }

  /**
   * Waits until everything written has been handed to the OS.
   *
   * @returns A promise that resolves when the stream is writable again.
   * @throws {StreamError} As {@link checkWrite}.
   */
  async blockingFlush(): Promise<void> {
    const tx = this.#tx;
    tx.flush();
    if (!tx.flushed.ready()) await waitFor(tx.flushed);
    tx.check();
  }

  /**
   * A pollable that is ready when {@link checkWrite} would allow bytes or fail.
   *
   * @returns A new pollable.
   */
  subscribe(): Pollable {
    return new Pollable(this.#tx);
  }

  /**
   * Writes `len` zero bytes.
   *
   * @param len At most what {@link checkWrite} allowed.
   * @throws {Error} A trap when `len` exceeds the budget.
   * @throws {StreamError} As {@link checkWrite}.
   * @throws {TypeError} When `len` is not a u64 bigint.
   */
  writeZeroes(len: bigint): void {
    checkBigint(len, "len");
    const n = toLength(len);
    const tx = this.#tx;
    tx.check();
    if (n > tx.permit()) {
      throw trap(`Write of ${len} zero bytes exceeds the ${tx.permit()} bytes check-write allowed`);
    }
    tx.write(new Uint8Array(n));
  }

  /**
   * {@link writeZeroes} with the waiting and flushing of {@link blockingWriteAndFlush}.
   *
   * @param len At most 4096.
   * @returns A promise that resolves once flushed.
   * @throws {Error} A trap for more than 4096 bytes.
   * @throws {StreamError} As {@link checkWrite}.
   * @throws {TypeError} When `len` is not a u64 bigint.
   */
  blockingWriteZeroesAndFlush(len: bigint): Promise<void> {
    checkBigint(len, "len");
    if (len > BigInt(BLOCKING_WRITE_LIMIT)) {
      return Promise.reject(
        trap(`Blocking write of ${len} bytes exceeds the limit of ${BLOCKING_WRITE_LIMIT}`),
      );
    }
    return this.blockingWriteAndFlush(new Uint8Array(Number(len)));
  }

  /**
   * Moves bytes from `src` to this stream without waiting.
   *
   * @param src The stream to read from.
   * @param len The most bytes to move.
   * @returns How many bytes moved.
   * @throws {StreamError} `closed` when `src` has ended, or as {@link checkWrite}.
   * @throws {TypeError} For a wrong `src` or `len`.
   */
  splice(src: InputStream, len: bigint): bigint {
    if (!isOwnInput(src)) throw new TypeError("Expected src to be an InputStream of this package");
    checkBigint(len, "len");
    const tx = this.#tx;
    tx.check();
    const room = tx.permit();
    const want = len > BigInt(room) ? room : Number(len);
    if (want === 0) return 0n;
    const bytes = src.read(BigInt(want));
    if (bytes.length === 0) return 0n;
    // A lent read is the backend's buffer, reused after the next read while
    // the bytes may still wait in this connection's queue: they need a copy.
    tx.write(receiverOf(src).recycle === undefined ? bytes : bytes.slice());
    return BigInt(bytes.length);
  }

  /**
   * Waits until `src` has data and this stream has room, then splices.
   *
   * @param src The stream to read from.
   * @param len The most bytes to move.
   * @returns How many bytes moved.
   * @throws {StreamError} As {@link splice}.
   * @throws {TypeError} For a wrong `src` or `len`.
   */
  async blockingSplice(src: InputStream, len: bigint): Promise<bigint> {
    if (!isOwnInput(src)) throw new TypeError("Expected src to be an InputStream of this package");
    checkBigint(len, "len");
    const tx = this.#tx;
    tx.check();
    if (!tx.ready()) await waitFor(tx);
    const rx = receiverOf(src);
    if (rx.idle) rx.wake();
    // Waits for the source, unless this stream fails or closes meanwhile:
    // splice then reports that at once.
    await waitUntil([rx, tx], () => rx.ready() || tx.closed || tx.error !== undefined);
    return this.splice(src, len);
  }

  /** Drops the stream, which shuts down the send side once queued bytes are out. */
  [Symbol.dispose](): void {
    forgetRep(this);
    this.#tx.shutdown();
  }

}

/**
 * The two streams of a connection, plus the shutdown operations the socket
 * needs but the streams do not expose.
 *
 * @example
 * ```ts
 * import type { ConnectionStreams } from "./streams.ts";
 * function shutdownBoth(s: ConnectionStreams): void {
 *   s.shutdownSend();
 *   s.shutdownReceive();
 * }
 * ```
 */
export interface ConnectionStreams {
  /** The receive side. */
  input: InputStream;
  /** The send side. */
  output: OutputStream;
  /** `tcp-socket.shutdown(send)`: FIN after queued bytes, then `closed`. */
  shutdownSend(): void;
  /** `tcp-socket.shutdown(receive)`: reads report `closed` from now on. */
  shutdownReceive(): void;
  /** The socket is closing the connection: both streams report `closed` from now on. */
  release(): void;
}

/**
 * Options of {@link openStreams}.
 *
 * @example
 * ```ts
 * import { RECEIVE_WINDOW, type StreamOptions } from "./streams.ts";
 * const options: StreamOptions = { receiveWindow: RECEIVE_WINDOW * 2, lendReadBuffers: true };
 * ```
 */
export interface StreamOptions {
  /** Bytes to buffer before pausing the backend (default {@link RECEIVE_WINDOW}). */
  receiveWindow?: number;
  /**
   * Lets the backend reuse read buffers: what `read` returns stays valid only
   * until the next `read` or `skip` on the stream. Safe for jco, which copies
   * the result into guest memory at once.
   */
  lendReadBuffers?: boolean;
}

/**
 * Starts a backend connection and wraps it in a pair of streams.
 *
 * @param connection A connected or accepted backend connection, not yet started.
 * @param options The receive window and whether read buffers are lent.
 * @returns The streams and the socket-level shutdowns.
 * @example
 * ```ts
 * import { MemoryNetwork } from "./memory_network.ts";
 * import { defaultOptions } from "./_options.ts";
 * import { openStreams } from "./streams.ts";
 * const net = new MemoryNetwork();
 * const listener = net.backend
 *   .bind({ local: { family: "ipv4", address: "127.0.0.1", port: 0 }, ipv6Only: true })
 *   .listen({ backlog: 1, options: defaultOptions(), changed: new Set(), onConnection() {}, onError() {} });
 * const conn = await net.backend.connect({
 *   remote: listener.localAddress,
 *   options: defaultOptions(),
 *   changed: new Set(),
 * });
 * const { input, output } = openStreams(conn);
 * ```
 */
export function openStreams(
  connection: BackendConnection,
  options: StreamOptions = {},
): ConnectionStreams {
  const rx = new Receiver(
    connection,
    options.receiveWindow ?? RECEIVE_WINDOW,
    options.lendReadBuffers ?? false,
  );
  const tx = new Sender(connection);
  const input = new InputStream(rx);
  const output = new OutputStream(tx);
  connection.pause();
  connection.start(new Sink(rx, tx));
  return {
    input,
    output,
    shutdownSend: () => tx.shutdown(),
    shutdownReceive: () => rx.shutdown(),
    release: () => {
      // The socket is closing the connection: both streams end here, waking
      // anyone blocked on them, and their deferred backend calls are moot.
      rx.released = true;
      tx.released = true;
      rx.shutdown();
      tx.shutdown();
    },
  };
}
