/**
 * The synchronous mode: the same namespaces as the main entry, for components
 * that call their imports synchronously (jco without JSPI, Node 20). The
 * sockets live in a worker thread on this runtime's backend; the objects here
 * are proxies that block the calling thread with `Atomics.wait` when, and only
 * when, the WIT call blocks. Bytes cross in SharedArrayBuffer rings, so
 * `read`, `check-write`, `write`, `flush` and stream and clock pollables are
 * answered without a round trip to the worker.
 *
 * ```sh
 * jco transpile component.wasm -o out \
 *   --map 'wasi:sockets/*=wasi-tcp/sync#*' --map 'wasi:io/*=wasi-tcp/sync#*' \
 *   --map 'wasi:clocks/*=wasi-tcp/sync#*'
 * ```
 *
 * @example
 * ```ts
 * import { instanceNetwork, tcpCreateSocket } from "./mod.ts";
 * const socket = tcpCreateSocket.createTcpSocket("ipv4");
 * socket.startBind(instanceNetwork.instanceNetwork(), { tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } });
 * socket.finishBind();
 * console.log(socket.localAddress().tag); // "ipv4"
 * socket[Symbol.dispose]();
 * ```
 *
 * @module
 */

import { isForeignStream } from "../core/_foreign_streams.ts";
import { installLowerings } from "../core/_cabi.ts";
import { forgetRep } from "../core/_reps.ts";
import { checkBigint, checkBufferOptions } from "../core/_options.ts";
import { IoError, StreamError, trap } from "../core/errors.ts";
import type { ErrorCode } from "../core/errors.ts";
import type { IpAddressFamily, IpSocketAddress } from "../core/ip_socket_address.ts";
import * as clock from "../core/monotonic_clock.ts";
import { BLOCKING_WRITE_LIMIT, COPIES_LIST_ARGUMENTS } from "../core/streams.ts";
import { Network, type NetworkUse, type ShutdownType } from "../core/tcp_socket.ts";
import * as wall from "../core/wall_clock.ts";
import type { Datetime } from "../core/wall_clock.ts";
import { Channel, sleep } from "./_channel.ts";
import { ENDED, FAILED, type Ring, SHUTDOWN_SEND } from "./_ring.ts";
import type { StreamRef } from "./_worker.ts";

const CREATE = Symbol("create");
const EMPTY = new Uint8Array(0);
const NS_PER_MS = 1_000_000;

/** Options of {@link createSyncWasiSockets}. */
export interface SyncWasiSocketsOptions {
  /** `"native"` (default): this runtime's own sockets; `"node"`: node:net. */
  backend?: "native" | "node";
  /**
   * Consulted before any OS call, on the calling thread. It must answer
   * synchronously: the thread is blocked while a component waits.
   */
  permission?: (address: IpSocketAddress, use: NetworkUse) => boolean;
  /** Bytes the worker's core buffers per connection before pausing reads. */
  receiveWindow?: number;
  /** Accepted connections kept per listener until taken. */
  maxAcceptQueue?: number;
  /**
   * Lend read results: a `read()` result is a view of the stream's shared
   * ring, valid until the next read, skip or drop of that stream, which saves
   * a copy and an allocation per read. jco copies at once; the namespaces
   * this module exports lend.
   */
  lendReadBuffers?: boolean;
}

interface Context {
  channel: Channel;
  permission: SyncWasiSocketsOptions["permission"];
  lend: boolean;
}

function length(len: bigint): number {
  return len > 0x7fffffffn ? 0x7fffffff : Number(len);
}

// Internal access to the streams from the socket, and to readiness from poll.
let closeInput: (stream: InputStream) => void;
let closeOutput: (stream: OutputStream) => void;
let isOwnInput: (value: unknown) => value is InputStream;
let shutdownOutput: (stream: OutputStream) => void;

/**
 * `wasi:io/streams.input-stream`, read from its ring on the calling thread.
 *
 * @example
 * ```ts
 * import { InputStream } from "./mod.ts";
 * function drain(input: InputStream): number {
 *   return input.read(65536n).length;
 * }
 * ```
 */
export class InputStream {
  readonly #ctx: Context;
  readonly #handle: number;
  readonly #ring: Ring;
  #closed = false;
  // Bytes the last read lent as a view of the ring; their room is freed at
  // the next read, skip or drop, when the caller no longer reads the view.
  #lent = 0;

  /**
   * Built by a socket; not for direct use.
   *
   * @param token Internal.
   * @param ctx Internal.
   * @param ref Internal.
   * @throws {TypeError} When constructed directly.
   */
  constructor(token: unknown, ctx: Context, ref: StreamRef) {
    if (token !== CREATE) throw new TypeError("InputStream is created by TcpSocket, not constructed");
    this.#ctx = ctx;
    this.#handle = ref[0];
    this.#ring = ctx.channel.ring(ref[1]);
  }

  static {
    closeInput = (stream) => {
      stream.#closed = true;
    };
    isOwnInput = (value) => typeof value === "object" && value !== null && #ring in value;
  }

  /**
   * `instanceof InputStream`: true for this module's input streams and for
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
   * Whether a read would not come back empty.
   *
   * @returns Whether a read would not come back empty.
   */
  #ready(): boolean {
    return this.#closed || this.#ring.available() > this.#lent || (this.#ring.flags() & ENDED) !== 0;
  }

  #fail(): never {
    const ring = this.#ring;
    const failed = !this.#closed && (ring.flags() & FAILED) !== 0;
    this.#closed = true;
    if (failed) {
      const { code, message } = ring.failure();
      throw StreamError.failed(new IoError(message, (code || undefined) as ErrorCode | undefined));
    }
    throw StreamError.closed();
  }

  #release(): void {
    if (this.#lent !== 0) {
      this.#ring.discard(this.#lent);
      this.#lent = 0;
    }
  }

  #take(n: number, keep: boolean): Uint8Array {
    if (!keep) {
      this.#ring.discard(n);
      return EMPTY;
    }
    if (this.#ctx.lend) {
      // jco copies a read result into guest memory at once: lending the
      // ring's own bytes saves the main thread a copy per read.
      const view = this.#ring.view(n);
      this.#lent = view.length;
      return view;
    }
    const out = new Uint8Array(n);
    this.#ring.take(out, n);
    return out;
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
    if (this.#closed) this.#fail();
    this.#release();
    const available = this.#ring.readable();
    if (available > 0) return len === 0n ? EMPTY : this.#take(Math.min(length(len), available), true);
    if (available < 0) this.#fail();
    return EMPTY;
  }

  /**
   * Blocks until at least one byte or the end of stream is there, then reads.
   *
   * @param len The most bytes to return.
   * @returns Up to `len` bytes, at least one unless `len` is 0.
   * @throws {StreamError} As {@link read}.
   * @throws {TypeError} When `len` is not a u64 bigint.
   */
  blockingRead(len: bigint): Uint8Array {
    checkBigint(len, "len");
    for (;;) {
      const seen = this.#ctx.channel.events();
      const bytes = this.read(len);
      if (bytes.length > 0 || len === 0n) return bytes;
      this.#ctx.channel.wait(seen, Infinity);
    }
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
    if (this.#closed) this.#fail();
    this.#release();
    const available = this.#ring.readable();
    if (available > 0) {
      const n = Math.min(length(len), available);
      this.#take(n, false);
      return BigInt(n);
    }
    if (available < 0) this.#fail();
    return 0n;
  }

  /**
   * Blocks like {@link blockingRead}, then skips.
   *
   * @param len The most bytes to discard.
   * @returns How many bytes were discarded.
   * @throws {StreamError} As {@link read}.
   * @throws {TypeError} When `len` is not a u64 bigint.
   */
  blockingSkip(len: bigint): bigint {
    checkBigint(len, "len");
    for (;;) {
      const seen = this.#ctx.channel.events();
      const n = this.skip(len);
      if (n > 0n || len === 0n) return n;
      this.#ctx.channel.wait(seen, Infinity);
    }
  }

  /**
   * A pollable that is ready when data, the end of stream or an error is there.
   *
   * @returns A new pollable.
   */
  subscribe(): Pollable {
    return new Pollable(CREATE, { kind: "local", channel: this.#ctx.channel, ready: () => this.#ready() });
  }

  /** Drops the stream: later data is discarded. */
  [Symbol.dispose](): void {
    forgetRep(this);
    this.#closed = true;
    this.#ctx.channel.drop(this.#handle);
  }
}

/**
 * `wasi:io/streams.output-stream`, written into its ring on the calling thread.
 *
 * @example
 * ```ts
 * import { OutputStream } from "./mod.ts";
 * function send(output: OutputStream, bytes: Uint8Array): void {
 *   output.blockingWriteAndFlush(bytes.subarray(0, 4096));
 * }
 * ```
 */
export class OutputStream {
  readonly #ctx: Context;
  readonly #handle: number;
  readonly #ring: Ring;
  #closed = false;
  // Dropped by the guest: the ring may already serve another connection.
  #dropped = false;
  #failureReported = false;
  #flush = 0;

  /**
   * Built by a socket; not for direct use.
   *
   * @param token Internal.
   * @param ctx Internal.
   * @param ref Internal.
   * @throws {TypeError} When constructed directly.
   */
  constructor(token: unknown, ctx: Context, ref: StreamRef) {
    if (token !== CREATE) throw new TypeError("OutputStream is created by TcpSocket, not constructed");
    this.#ctx = ctx;
    this.#handle = ref[0];
    this.#ring = ctx.channel.ring(ref[1]);
  }

  /**
   * `instanceof OutputStream`: true for this module's output streams and for
   * another host's (such as preview2-shim's stdout), which jco checks against
   * this class when wasi:cli comes from elsewhere.
   *
   * @param value Anything.
   * @returns Whether it is an output stream.
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    return (typeof value === "object" && value !== null && #ring in value) || isForeignStream(value, "output");
  }

  static {
    closeOutput = (stream) => {
      stream.#closed = true;
    };
    shutdownOutput = (stream) => {
      stream.#closed = true;
      // A dropped stream has shut the send side down already.
      if (!stream.#dropped) stream.#ring.setFlags(SHUTDOWN_SEND);
    };
  }

  #check(): void {
    const flags = this.#ring.flags();
    if (!this.#closed && (flags & ENDED) === 0) return;
    const failed = (flags & FAILED) !== 0 && !this.#failureReported;
    this.#closed = true;
    if (failed) {
      this.#failureReported = true;
      const { code, message } = this.#ring.failure();
      throw StreamError.failed(new IoError(message, (code || undefined) as ErrorCode | undefined));
    }
    throw StreamError.closed();
  }

  #flushing(): boolean {
    return this.#ring.flushDone() !== this.#ring.flushRequested();
  }

  #room(): number {
    return this.#flushing() ? 0 : this.#ring.space();
  }

  #ready(): boolean {
    return this.#closed || (this.#ring.flags() & ENDED) !== 0 || this.#room() > 0;
  }

  /**
   * How many bytes the next {@link write} may take.
   *
   * @returns The ring's free room, or 0 while a flush is in progress.
   * @throws {StreamError} `closed` after shutdown(send); `last-operation-failed`
   * once after a connection error.
   */
  checkWrite(): bigint {
    this.#check();
    return BigInt(this.#room());
  }

  /**
   * Copies bytes into the ring; the worker sends them.
   *
   * @param contents At most what {@link checkWrite} allowed.
   * @throws {Error} A trap (no `payload`) when `contents` exceeds the budget.
   * @throws {StreamError} As {@link checkWrite}.
   * @throws {TypeError} When `contents` is not a Uint8Array.
   */
  write(contents: Uint8Array): void {
    if (!(contents instanceof Uint8Array)) throw new TypeError("Expected contents to be a Uint8Array");
    this.#check();
    if (contents.length > this.#room()) {
      throw trap(`Write of ${contents.length} bytes exceeds the check-write budget of ${this.#room()}`);
    }
    if (contents.length === 0) return;
    this.#ring.put(contents);
    this.#ring.ring();
  }

  #blockUntilRoom(n: number): void {
    for (;;) {
      const seen = this.#ctx.channel.events();
      this.#check();
      if (this.#room() >= n) return;
      this.#ctx.channel.wait(seen, Infinity);
    }
  }

  /**
   * Blocks until there is room, writes up to 4096 bytes, then blocks until they
   * are flushed.
   *
   * @param contents At most 4096 bytes.
   * @throws {Error} A trap (no `payload`) for more than 4096 bytes.
   * @throws {StreamError} As {@link checkWrite}.
   * @throws {TypeError} When `contents` is not a Uint8Array.
   */
  blockingWriteAndFlush(contents: Uint8Array): void {
    if (!(contents instanceof Uint8Array)) throw new TypeError("Expected contents to be a Uint8Array");
    if (contents.length > BLOCKING_WRITE_LIMIT) {
      throw trap(`Blocking write of ${contents.length} bytes exceeds the limit of ${BLOCKING_WRITE_LIMIT}`);
    }
    this.#blockUntilRoom(contents.length);
    this.write(contents);
    this.blockingFlush();
  }

  /**
   * Asks for everything written so far to be handed to the OS; until then
   * {@link checkWrite} answers 0.
   *
   * @throws {StreamError} As {@link checkWrite}.
   */
  flush(): void {
    this.#check();
    this.#flush = this.#ring.requestFlush();
  }

  /**
   * Flushes and blocks until the flush has completed.
   *
   * @throws {StreamError} As {@link checkWrite}.
   */
  blockingFlush(): void {
    this.flush();
    const target = this.#flush;
    for (;;) {
      const seen = this.#ctx.channel.events();
      if (((this.#ring.flushDone() - target) | 0) >= 0) return;
      this.#check();
      this.#ctx.channel.wait(seen, Infinity);
    }
  }

  /**
   * A pollable that is ready when {@link checkWrite} would allow bytes or fail.
   *
   * @returns A new pollable.
   */
  subscribe(): Pollable {
    return new Pollable(CREATE, { kind: "local", channel: this.#ctx.channel, ready: () => this.#ready() });
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
    this.#check();
    if (len > BigInt(this.#room())) {
      throw trap(`Write of ${len} zero bytes exceeds the check-write budget of ${this.#room()}`);
    }
    if (len === 0n) return;
    this.#ring.putZeroes(Number(len));
    this.#ring.ring();
  }

  /**
   * {@link writeZeroes} with the blocking and flushing of {@link blockingWriteAndFlush}.
   *
   * @param len At most 4096.
   * @throws {Error} A trap for more than 4096 bytes.
   * @throws {StreamError} As {@link checkWrite}.
   * @throws {TypeError} When `len` is not a u64 bigint.
   */
  blockingWriteZeroesAndFlush(len: bigint): void {
    checkBigint(len, "len");
    if (len > BigInt(BLOCKING_WRITE_LIMIT)) {
      throw trap(`Blocking write of ${len} bytes exceeds the limit of ${BLOCKING_WRITE_LIMIT}`);
    }
    this.#blockUntilRoom(Number(len));
    this.writeZeroes(len);
    this.blockingFlush();
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
    if (!isOwnInput(src)) throw new TypeError("Expected src to be an InputStream of this module");
    checkBigint(len, "len");
    this.#check();
    const room = this.#room();
    const want = len > BigInt(room) ? room : Number(len);
    if (want === 0) return 0n;
    const bytes = src.read(BigInt(want));
    if (bytes.length > 0) {
      this.#ring.put(bytes);
      this.#ring.ring();
    }
    return BigInt(bytes.length);
  }

  /**
   * Blocks until `src` has data and this stream has room, then splices.
   *
   * @param src The stream to read from.
   * @param len The most bytes to move.
   * @returns How many bytes moved.
   * @throws {StreamError} As {@link splice}.
   * @throws {TypeError} For a wrong `src` or `len`.
   */
  blockingSplice(src: InputStream, len: bigint): bigint {
    if (!isOwnInput(src)) throw new TypeError("Expected src to be an InputStream of this module");
    checkBigint(len, "len");
    const srcReady = src.subscribe();
    for (;;) {
      const seen = this.#ctx.channel.events();
      this.#check();
      if (this.#room() > 0 && srcReady.ready()) return this.splice(src, len);
      this.#ctx.channel.wait(seen, Infinity);
    }
  }

  /** Drops the stream; bytes already written still go out, then the send side shuts down. */
  [Symbol.dispose](): void {
    forgetRep(this);
    this.#closed = true;
    this.#dropped = true;
    this.#ctx.channel.drop(this.#handle);
  }
}
// write() and blocking-write-and-flush() copy their bytes into the ring
// before they return.
Object.defineProperty(OutputStream.prototype, COPIES_LIST_ARGUMENTS, { value: true });

type PollSource =
  | { kind: "clock"; deadline: number }
  | { kind: "local"; channel: Channel; ready: () => boolean }
  | { kind: "remote"; channel: Channel; handle: number };

let sourceOf: (p: Pollable) => PollSource;

/**
 * `wasi:io/poll.pollable`. Clock and stream pollables are answered on the
 * calling thread; socket pollables ask the worker.
 *
 * @example
 * ```ts
 * import { monotonicClock } from "./mod.ts";
 * const soon = monotonicClock.subscribeDuration(1_000_000n);
 * soon.block();
 * console.log(soon.ready()); // true
 * ```
 */
export class Pollable {
  readonly #source: PollSource;

  /**
   * Built by a stream, a socket or the clock; not for direct use.
   *
   * @param token Internal.
   * @param source Internal.
   * @throws {TypeError} When constructed directly.
   */
  constructor(token: unknown, source: PollSource) {
    if (token !== CREATE) throw new TypeError("Pollable is created by a stream, socket or clock");
    this.#source = source;
  }

  static {
    sourceOf = (p) => p.#source;
  }

  /**
   * Whether the pollable is ready, without blocking.
   *
   * @returns `true` when a {@link block} would return at once.
   */
  ready(): boolean {
    const s = this.#source;
    switch (s.kind) {
      case "clock":
        return performance.now() >= s.deadline;
      case "local":
        return s.ready();
      case "remote":
        return s.channel.ready([s.handle], false).size > 0;
    }
  }

  /** Blocks the calling thread until the pollable is ready. */
  block(): void {
    pollList([this]);
  }

  /** Drops the pollable; it holds nothing of its own. */
  [Symbol.dispose](): void {
    forgetRep(this);
  }
}

/**
 * `wasi:io/poll.poll`: blocks until at least one pollable is ready.
 *
 * @param pollables One or more pollables.
 * @returns The indices of the ready ones.
 * @throws {Error} A trap for an empty list, or for pollables of two instances
 * (two `createSyncWasiSockets` calls).
 * @throws {TypeError} When an element is not a Pollable of this module.
 * @example
 * ```ts
 * import { monotonicClock, poll } from "./mod.ts";
 * const ready = poll.poll([monotonicClock.subscribeDuration(0n)]);
 * console.log([...ready]); // [0]
 * ```
 */
function pollList(pollables: Pollable[]): Uint32Array {
  if (!Array.isArray(pollables)) throw new TypeError("Expected an array of pollables");
  if (pollables.length === 0) throw trap("poll needs at least one pollable");
  const sources = pollables.map((p) => {
    if (!(p instanceof Pollable)) throw new TypeError("Expected every element to be a Pollable");
    return sourceOf(p);
  });
  let channel: Channel | undefined;
  const remote: number[] = [];
  for (const s of sources) {
    if (s.kind === "clock") continue;
    channel ??= s.channel;
    // Handles are numbered per worker, and a wait can watch one worker only.
    if (s.channel !== channel) throw trap("poll of pollables from two instances of the synchronous mode");
    if (s.kind === "remote") remote.push(s.handle);
  }
  for (;;) {
    const seen = channel?.events() ?? 0;
    const now = performance.now();
    let deadline = Infinity;
    const ready: number[] = [];
    sources.forEach((s, i) => {
      if (s.kind === "clock") {
        if (now >= s.deadline) ready.push(i);
        else if (s.deadline < deadline) deadline = s.deadline;
      } else if (s.kind === "local" && s.ready()) ready.push(i);
    });
    if (remote.length > 0) {
      const answer = channel!.ready(remote, ready.length === 0);
      sources.forEach((s, i) => {
        if (s.kind === "remote" && answer.has(s.handle)) ready.push(i);
      });
      ready.sort((a, b) => a - b);
    }
    if (ready.length > 0) return Uint32Array.from(ready);
    if (channel) channel.wait(seen, deadline);
    else {
      // No socket of any instance in the list: their drops must not wait for
      // the guest's next call.
      Channel.flushAll();
      sleep(Math.max(0, deadline - performance.now()));
    }
  }
}

/**
 * `wasi:sockets/tcp.tcp-socket`: a proxy of a socket in the sockets worker.
 *
 * @example
 * ```ts
 * import { instanceNetwork, tcpCreateSocket } from "./mod.ts";
 * const server = tcpCreateSocket.createTcpSocket("ipv4");
 * server.startBind(instanceNetwork.instanceNetwork(), { tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } });
 * server.finishBind();
 * server.startListen();
 * server.finishListen();
 * server[Symbol.dispose]();
 * ```
 */
export class TcpSocket {
  readonly #ctx: Context;
  readonly #handle: number;
  #input: InputStream | undefined;
  #output: OutputStream | undefined;

  /**
   * Built by `create-tcp-socket` or `accept`; not for direct use.
   *
   * @param token Internal.
   * @param ctx Internal.
   * @param handle Internal.
   * @throws {TypeError} When constructed directly.
   */
  constructor(token: unknown, ctx: Context, handle: number) {
    if (token !== CREATE) throw new TypeError("TcpSocket is created by createTcpSocket, not constructed");
    this.#ctx = ctx;
    this.#handle = handle;
  }

  #call(method: string, ...args: unknown[]): unknown {
    return this.#ctx.channel.call("call", this.#handle, [method, ...args]);
  }

  // The hook's verdict, when there is a hook; the worker's core consults it
  // after its own state and argument checks, as it would the hook itself.
  #verdict(address: () => IpSocketAddress | undefined, use: NetworkUse): boolean | undefined {
    const hook = this.#ctx.permission;
    if (!hook) return undefined;
    const where = address();
    if (where === undefined) return true;
    const answer = hook(where, use) as unknown;
    // Any thenable, a promise of another realm too: taken for a truthy
    // answer, it would let a refusal through.
    if (typeof (answer as { then?: unknown } | null)?.then === "function") {
      throw new TypeError("The synchronous mode needs a permission hook that answers synchronously");
    }
    return Boolean(answer);
  }

  #checkNetwork(network: unknown): void {
    if (!(network instanceof Network)) throw new TypeError("Expected network to be a Network");
  }

  #streams(refs: [StreamRef, StreamRef]): [InputStream, OutputStream] {
    this.#input = new InputStream(CREATE, this.#ctx, refs[0]);
    this.#output = new OutputStream(CREATE, this.#ctx, refs[1]);
    return [this.#input, this.#output];
  }

  /**
   * Starts binding to a local address. Port 0 asks the OS for one.
   *
   * @param network The guest's network capability.
   * @param localAddress The address to bind.
   * @throws {NetworkError} As the main entry's TcpSocket.startBind.
   * @throws {TypeError} For a wrong network or address shape.
   */
  startBind(network: Network, localAddress: IpSocketAddress): void {
    this.#checkNetwork(network);
    const p = this.#verdict(() => localAddress, "bind");
    this.#ctx.channel.call("call", this.#handle, ["startBind", localAddress], p);
  }

  /**
   * Finishes a bind.
   *
   * @throws {NetworkError} `not-in-progress`, or the bind's error.
   */
  finishBind(): void {
    this.#call("finishBind");
  }

  /**
   * Starts connecting to a remote address.
   *
   * @param network The guest's network capability.
   * @param remoteAddress Where to connect.
   * @throws {NetworkError} As the main entry's TcpSocket.startConnect.
   * @throws {TypeError} For a wrong network or address shape.
   */
  startConnect(network: Network, remoteAddress: IpSocketAddress): void {
    this.#checkNetwork(network);
    const p = this.#verdict(() => remoteAddress, "connect");
    this.#ctx.channel.call("call", this.#handle, ["startConnect", remoteAddress], p);
  }

  /**
   * Finishes a connect.
   *
   * @returns The connection's input and output streams.
   * @throws {NetworkError} `not-in-progress`, `would-block`, or the connect's error.
   */
  finishConnect(): [InputStream, OutputStream] {
    return this.#streams(this.#ctx.channel.call("finishConnect", this.#handle) as [StreamRef, StreamRef]);
  }

  /**
   * Starts listening.
   *
   * @throws {NetworkError} As the main entry's TcpSocket.startListen.
   */
  startListen(): void {
    const p = this.#verdict(() => {
      try {
        return this.localAddress();
      } catch {
        return undefined; // not bound: the worker reports invalid-state
      }
    }, "listen");
    this.#ctx.channel.call("call", this.#handle, ["startListen"], p);
  }

  /**
   * Finishes a listen.
   *
   * @throws {NetworkError} `not-in-progress`, `would-block`, or the listen's error.
   */
  finishListen(): void {
    this.#call("finishListen");
  }

  /**
   * Takes an accepted connection.
   *
   * @returns The client socket and its streams.
   * @throws {NetworkError} `invalid-state` when not listening, `would-block`
   * when no connection is pending, or, once, the error with which the backend
   * last failed to take one.
   * @throws {TypeError} For a permission hook that answers asynchronously; a
   * hook's own exception is passed on once the connection is dropped.
   */
  accept(): [TcpSocket, InputStream, OutputStream] {
    for (;;) {
      const [handle, input, output] = this.#ctx.channel.call("accept", this.#handle) as [
        number,
        StreamRef,
        StreamRef,
      ];
      const socket = new TcpSocket(CREATE, this.#ctx, handle);
      const streams = socket.#streams([input, output]);
      const release = (): void => {
        streams[0][Symbol.dispose]();
        streams[1][Symbol.dispose]();
        socket[Symbol.dispose]();
      };
      let verdict: boolean | undefined;
      try {
        verdict = this.#verdict(() => socket.remoteAddress(), "accept");
      } catch (e) {
        // The hook failed (or is asynchronous): the guest never sees the socket.
        release();
        throw e;
      }
      if (verdict === false) {
        // Refused: as if it had never arrived.
        release();
        continue;
      }
      return [socket, ...streams];
    }
  }

  /**
   * The bound local address.
   *
   * @returns The address.
   * @throws {NetworkError} `invalid-state` when not bound.
   */
  localAddress(): IpSocketAddress {
    return this.#call("localAddress") as IpSocketAddress;
  }

  /**
   * The connected peer's address.
   *
   * @returns The address.
   * @throws {NetworkError} `invalid-state` when not connected.
   */
  remoteAddress(): IpSocketAddress {
    return this.#call("remoteAddress") as IpSocketAddress;
  }

  /**
   * Whether the socket is listening.
   *
   * @returns Whether the socket is listening.
   */
  isListening(): boolean {
    return this.#call("isListening") as boolean;
  }

  /**
   * The socket's address family.
   *
   * @returns The socket's address family.
   */
  addressFamily(): IpAddressFamily {
    return this.#call("addressFamily") as IpAddressFamily;
  }

  /**
   * Sets the listen backlog.
   *
   * @param value The backlog.
   * @throws {NetworkError} `invalid-argument` for 0, `invalid-state` while connecting or connected.
   */
  setListenBacklogSize(value: bigint): void {
    this.#call("setListenBacklogSize", value);
  }

  /**
   * Whether keep-alive is on.
   *
   * @returns Whether keep-alive is on.
   */
  keepAliveEnabled(): boolean {
    return this.#call("keepAliveEnabled") as boolean;
  }

  /**
   * Turns keep-alive on or off.
   *
   * @param value On or off.
   */
  setKeepAliveEnabled(value: boolean): void {
    this.#call("setKeepAliveEnabled", value);
  }

  /**
   * The keep-alive idle time in nanoseconds.
   *
   * @returns The keep-alive idle time in nanoseconds.
   */
  keepAliveIdleTime(): bigint {
    return this.#call("keepAliveIdleTime") as bigint;
  }

  /**
   * Sets the keep-alive idle time.
   *
   * @param value Nanoseconds.
   * @throws {NetworkError} `invalid-argument` for 0.
   */
  setKeepAliveIdleTime(value: bigint): void {
    this.#call("setKeepAliveIdleTime", value);
  }

  /**
   * The keep-alive interval in nanoseconds.
   *
   * @returns The keep-alive interval in nanoseconds.
   */
  keepAliveInterval(): bigint {
    return this.#call("keepAliveInterval") as bigint;
  }

  /**
   * Sets the keep-alive interval.
   *
   * @param value Nanoseconds.
   * @throws {NetworkError} `invalid-argument` for 0.
   */
  setKeepAliveInterval(value: bigint): void {
    this.#call("setKeepAliveInterval", value);
  }

  /**
   * The keep-alive probe count.
   *
   * @returns The keep-alive probe count.
   */
  keepAliveCount(): number {
    return this.#call("keepAliveCount") as number;
  }

  /**
   * Sets the keep-alive probe count.
   *
   * @param value Probes.
   * @throws {NetworkError} `invalid-argument` for 0.
   */
  setKeepAliveCount(value: number): void {
    this.#call("setKeepAliveCount", value);
  }

  /**
   * The hop limit (TTL).
   *
   * @returns The hop limit (TTL).
   */
  hopLimit(): number {
    return this.#call("hopLimit") as number;
  }

  /**
   * Sets the hop limit.
   *
   * @param value Hops.
   * @throws {NetworkError} `invalid-argument` for 0.
   */
  setHopLimit(value: number): void {
    this.#call("setHopLimit", value);
  }

  /**
   * The receive buffer size in bytes.
   *
   * @returns The receive buffer size in bytes.
   */
  receiveBufferSize(): bigint {
    return this.#call("receiveBufferSize") as bigint;
  }

  /**
   * Sets the receive buffer size.
   *
   * @param value Bytes.
   * @throws {NetworkError} `invalid-argument` for 0.
   */
  setReceiveBufferSize(value: bigint): void {
    this.#call("setReceiveBufferSize", value);
  }

  /**
   * The send buffer size in bytes.
   *
   * @returns The send buffer size in bytes.
   */
  sendBufferSize(): bigint {
    return this.#call("sendBufferSize") as bigint;
  }

  /**
   * Sets the send buffer size.
   *
   * @param value Bytes.
   * @throws {NetworkError} `invalid-argument` for 0.
   */
  setSendBufferSize(value: bigint): void {
    this.#call("setSendBufferSize", value);
  }

  /**
   * A pollable for the operation in progress or, when listening, a pending connection.
   *
   * @returns A new pollable.
   */
  subscribe(): Pollable {
    return new Pollable(CREATE, { kind: "remote", channel: this.#ctx.channel, handle: this.#handle });
  }

  /**
   * Shuts down one or both directions. shutdown(send) goes out after every
   * byte already written.
   *
   * @param shutdownType `"receive"`, `"send"` or `"both"`.
   * @throws {NetworkError} `invalid-state` when not connected.
   * @throws {TypeError} For another value.
   */
  shutdown(shutdownType: ShutdownType): void {
    if (shutdownType !== "receive" && shutdownType !== "send" && shutdownType !== "both") {
      throw new TypeError('Expected shutdownType to be "receive", "send" or "both"');
    }
    if (shutdownType === "send" && this.#output) {
      // Connected, so it cannot fail: the output's ring carries the shutdown
      // to the worker, after the bytes already written, without a call.
      shutdownOutput(this.#output);
      return;
    }
    this.#ctx.channel.call("shutdown", this.#handle, [shutdownType]);
    if (shutdownType !== "send" && this.#input) closeInput(this.#input);
    if (shutdownType !== "receive" && this.#output) closeOutput(this.#output);
  }

  /**
   * Drops the socket; the worker releases its OS socket once the drop reaches
   * it: with the next call, at the end of the task, or before the thread
   * next waits.
   */
  [Symbol.dispose](): void {
    forgetRep(this);
    this.#ctx.channel.drop(this.#handle);
  }
}

/** `wasi:sockets/tcp`. */
export interface SyncTcpNamespace {
  /** The socket resource. */
  TcpSocket: typeof TcpSocket;
}
/** `wasi:sockets/tcp-create-socket`. */
export interface SyncTcpCreateSocketNamespace {
  /** Creates an unbound socket of the family. */
  createTcpSocket(addressFamily: IpAddressFamily): TcpSocket;
}
/** `wasi:sockets/network`. */
export interface SyncNetworkNamespace {
  /** The network resource. */
  Network: typeof Network;
}
/** `wasi:sockets/instance-network`. */
export interface SyncInstanceNetworkNamespace {
  /** The instance's network. */
  instanceNetwork(): Network;
}
/** `wasi:io/streams`. */
export interface SyncStreamsNamespace {
  /** The input stream resource. */
  InputStream: typeof InputStream;
  /** The output stream resource. */
  OutputStream: typeof OutputStream;
}
/** `wasi:io/poll`. */
export interface SyncPollNamespace {
  /** The pollable resource. */
  Pollable: typeof Pollable;
  /** Blocks until one of the pollables is ready. */
  poll(pollables: Pollable[]): Uint32Array;
}
/** `wasi:io/error`. */
export interface SyncErrorNamespace {
  /** The error resource. */
  Error: typeof IoError;
}
/** `wasi:clocks/monotonic-clock`. */
export interface SyncMonotonicClockNamespace {
  /** Nanoseconds since an arbitrary start. */
  now(): bigint;
  /** The clock's resolution in nanoseconds. */
  resolution(): bigint;
  /** A pollable ready at the instant `when`. */
  subscribeInstant(when: bigint): Pollable;
  /** A pollable ready `duration` nanoseconds from now. */
  subscribeDuration(duration: bigint): Pollable;
}
/** `wasi:clocks/wall-clock`. */
export interface SyncWallClockNamespace {
  /** The time of day. */
  now(): Datetime;
  /** The clock's resolution. */
  resolution(): Datetime;
}

/**
 * The namespaces jco imports, synchronous, bound to one sockets worker.
 *
 * @example
 * ```ts
 * import { createSyncWasiSockets, type SyncWasiSockets } from "./mod.ts";
 * const wasi: SyncWasiSockets = createSyncWasiSockets();
 * wasi.close();
 * ```
 */
export interface SyncWasiSockets {
  /** `wasi:sockets/tcp`. */
  tcp: SyncTcpNamespace;
  /** `wasi:sockets/tcp-create-socket`. */
  tcpCreateSocket: SyncTcpCreateSocketNamespace;
  /** `wasi:sockets/network`. */
  network: SyncNetworkNamespace;
  /** `wasi:sockets/instance-network`. */
  instanceNetwork: SyncInstanceNetworkNamespace;
  /** `wasi:io/streams`. */
  streams: SyncStreamsNamespace;
  /** `wasi:io/poll`. */
  poll: SyncPollNamespace;
  /** `wasi:io/error`. */
  error: SyncErrorNamespace;
  /** `wasi:clocks/monotonic-clock`. */
  monotonicClock: SyncMonotonicClockNamespace;
  /** `wasi:clocks/wall-clock`. */
  wallClock: SyncWallClockNamespace;
  /** Stops the sockets worker, closing its sockets; later calls trap. */
  close(): void;
}

function clockPollable(deadlineMs: number): Pollable {
  return new Pollable(CREATE, { kind: "clock", deadline: deadlineMs });
}

const monotonic: SyncMonotonicClockNamespace = {
  now: clock.now,
  resolution: clock.resolution,
  subscribeInstant(when: bigint): Pollable {
    checkBigint(when, "when");
    return clockPollable(Number(when) / NS_PER_MS);
  },
  subscribeDuration(duration: bigint): Pollable {
    checkBigint(duration, "duration");
    return clockPollable(performance.now() + Number(duration) / NS_PER_MS);
  },
};

/**
 * Creates the synchronous namespaces over a new sockets worker, which starts
 * at the first socket and does not keep the process alive.
 *
 * @param options Backend, permission hook, buffering and lending.
 * @returns The namespaces, shaped as jco imports them.
 * @throws {TypeError} For a permission hook that is not a function, or a
 * `receiveWindow` or `maxAcceptQueue` that is not a positive integer.
 * @example
 * ```ts
 * import { createSyncWasiSockets } from "./mod.ts";
 * const wasi = createSyncWasiSockets({
 *   permission: (address) => address.tag === "ipv4" && address.val.address[0] === 127,
 * });
 * const socket = wasi.tcpCreateSocket.createTcpSocket("ipv4");
 * socket[Symbol.dispose]();
 * wasi.close();
 * ```
 */
export function createSyncWasiSockets(options: SyncWasiSocketsOptions = {}): SyncWasiSockets {
  if (options.permission !== undefined && typeof options.permission !== "function") {
    throw new TypeError("Expected options.permission to be a function");
  }
  checkBufferOptions(options);
  const channel = new Channel({
    backend: options.backend,
    receiveWindow: options.receiveWindow,
    maxAcceptQueue: options.maxAcceptQueue,
    permission: options.permission !== undefined,
  });
  const ctx: Context = { channel, permission: options.permission, lend: options.lendReadBuffers ?? false };
  const network = new Network();
  return {
    tcp: { TcpSocket },
    tcpCreateSocket: {
      createTcpSocket(addressFamily: IpAddressFamily): TcpSocket {
        if (addressFamily !== "ipv4" && addressFamily !== "ipv6") {
          throw new TypeError('Expected addressFamily to be "ipv4" or "ipv6"');
        }
        return new TcpSocket(CREATE, ctx, channel.create(addressFamily));
      },
    },
    network: { Network },
    instanceNetwork: { instanceNetwork: (): Network => network },
    streams: { InputStream, OutputStream },
    poll: { Pollable, poll: pollList },
    error: { Error: IoError },
    monotonicClock: monotonic,
    wallClock: { now: wall.now, resolution: wall.resolution },
    close: () => channel.close(),
  };
}

// jco's optimized import bindings (`--import-bindings hybrid`) call the hot
// wasi:io functions without its generated per-call code; see core/_cabi.ts.
installLowerings({ InputStream, OutputStream, Pollable, IoError, TcpSocket, poll: pollList });

// jco copies every read result into guest memory at once, so the exported
// namespaces lend read buffers.
const wasi: SyncWasiSockets = createSyncWasiSockets({ lendReadBuffers: true });

/**
 * `wasi:sockets/tcp`, synchronous.
 *
 * @example
 * ```ts
 * import { tcp } from "./mod.ts";
 * console.log(typeof tcp.TcpSocket); // "function"
 * ```
 */
export const tcp: SyncTcpNamespace = wasi.tcp;
/**
 * `wasi:sockets/tcp-create-socket`, synchronous.
 *
 * @example
 * ```ts
 * import { tcpCreateSocket } from "./mod.ts";
 * tcpCreateSocket.createTcpSocket("ipv6")[Symbol.dispose]();
 * ```
 */
export const tcpCreateSocket: SyncTcpCreateSocketNamespace = wasi.tcpCreateSocket;
/**
 * `wasi:sockets/network`.
 *
 * @example
 * ```ts
 * import { network } from "./mod.ts";
 * console.log(typeof network.Network); // "function"
 * ```
 */
export const network: SyncNetworkNamespace = wasi.network;
/**
 * `wasi:sockets/instance-network`.
 *
 * @example
 * ```ts
 * import { instanceNetwork } from "./mod.ts";
 * const net = instanceNetwork.instanceNetwork();
 * ```
 */
export const instanceNetwork: SyncInstanceNetworkNamespace = wasi.instanceNetwork;
/**
 * `wasi:io/streams`, synchronous; read results are lent until the next read on that stream.
 *
 * @example
 * ```ts
 * import { streams } from "./mod.ts";
 * console.log(typeof streams.InputStream); // "function"
 * ```
 */
export const streams: SyncStreamsNamespace = wasi.streams;
/**
 * `wasi:io/poll`, synchronous.
 *
 * @example
 * ```ts
 * import { monotonicClock, poll } from "./mod.ts";
 * console.log([...poll.poll([monotonicClock.subscribeDuration(0n)])]); // [0]
 * ```
 */
export const poll: SyncPollNamespace = wasi.poll;
/**
 * `wasi:io/error`.
 *
 * @example
 * ```ts
 * import { error } from "./mod.ts";
 * console.log(new error.Error("reset").toDebugString()); // "reset"
 * ```
 */
export const error: SyncErrorNamespace = wasi.error;
/**
 * `wasi:clocks/monotonic-clock`, with pollables of this module.
 *
 * @example
 * ```ts
 * import { monotonicClock } from "./mod.ts";
 * monotonicClock.subscribeDuration(1_000_000n).block();
 * ```
 */
export const monotonicClock: SyncMonotonicClockNamespace = wasi.monotonicClock;
/**
 * `wasi:clocks/wall-clock`.
 *
 * @example
 * ```ts
 * import { wallClock } from "./mod.ts";
 * console.log(wallClock.now().seconds > 0n); // true
 * ```
 */
export const wallClock: SyncWallClockNamespace = wasi.wallClock;

export { IoError, NetworkError, StreamError } from "../core/errors.ts";
export type { ErrorCode, StreamErrorPayload } from "../core/errors.ts";
export type {
  IpAddressFamily,
  IpSocketAddress,
  Ipv4SocketAddress,
  Ipv6SocketAddress,
} from "../core/ip_socket_address.ts";
export type { NetworkUse, ShutdownType } from "../core/tcp_socket.ts";
export type { Datetime } from "../core/wall_clock.ts";
export { Network };
