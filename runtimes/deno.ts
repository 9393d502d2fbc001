/**
 * The Deno backend: `Deno.listen`, `Deno.connect`, `conn.read`, `conn.write`,
 * `conn.closeWrite` and `listener.accept`, with Deno's node:net where the
 * native API has a gap.
 *
 * - bind: Deno has no bind-without-listen, so the address is held by a bound,
 *   not listening, socket from Deno's node:net (`net._createServerHandle`,
 *   SO_REUSEADDR on). Peers are refused, the port is resolved at once.
 * - listen: `Deno.listen` on the same address and port with `tcpBacklog`
 *   (SO_REUSEADDR lets it bind next to the held socket), then the held socket
 *   is closed, so the port is never free in between.
 * - accept: `listener.accept()` only while the guest asks for a connection
 *   (the core's `demand`), one per ask, as wasmtime accepts; meanwhile the
 *   kernel queues them up to the backlog.
 * - connect: `Deno.connect`; from a binding, which `Deno.connect` cannot do,
 *   the held socket is closed and Deno's node:net connects with
 *   `localAddress`/`localPort`, giving a node:net connection.
 * - options: keep-alive on/off (`conn.setKeepAlive`) is applied; Deno has no
 *   idle time, interval, count, hop limit or buffer sizes.
 * - reads: `conn.read` into a 64 KiB buffer that is handed over. With
 *   `lendReadBuffers` the core gives buffers back (`recycle`), and reads go
 *   into a small pool shared by the backend's connections, 1 MiB at a time
 *   while the peer keeps them full.
 *
 * Limitation: IPv6 sockets are not v6-only. `Deno.listen` on `"::"` is always
 * dual-stack, and Deno's node:net ignores UV_TCP_IPV6ONLY, so a socket bound
 * to `"::"` also takes IPv4 traffic (and blocks the IPv4 port).
 *
 * Besides {@link createDenoBackend}, the module exports the namespaces jco
 * imports, bound to this backend, so that a host can pick it explicitly.
 *
 * @module
 */

import type {
  BackendBinding,
  BackendConnection,
  BackendListener,
  BindRequest,
  ConnectionSink,
  ConnectRequest,
  HostAddress,
  ListenRequest,
  TcpBackend,
  TcpOptionName,
  TcpOptions,
} from "../core/backend.ts";
import { copyInto } from "../core/_copy.ts";
import { NetworkError } from "../core/errors.ts";
import { type NodeReservation, reserveAddress } from "./_node_binding.ts";
import { applyOptions, connectNode, nodeHostAddress } from "./_node_connection.ts";
import { formatAddress } from "./_node_errors.ts";
import { denoNetworkError } from "./_deno_errors.ts";
import {
  createWasiSockets,
  type ErrorNamespace,
  type InstanceNetworkNamespace,
  type MonotonicClockNamespace,
  type NetworkNamespace,
  type PollNamespace,
  type StreamsNamespace,
  type TcpCreateSocketNamespace,
  type TcpNamespace,
  type WallClockNamespace,
  type WasiSockets,
} from "../core/wasi_sockets.ts";

/** Bytes asked of each `conn.read` unless the stream is in bulk mode. */
const READ_SIZE = 64 * 1024;
/**
 * Bytes asked of each `conn.read` in bulk mode: when read buffers are lent
 * back (see {@link DenoConnection.recycle}) and the last read filled its
 * buffer. The core hands the guest 64 KiB views of it without copying.
 *
 * Large on purpose. Linux sizes a socket's receive buffer, and with it the
 * window it advertises, by how many bytes the application takes per round
 * trip. With 256 KiB reads a loopback connection here often settled on a
 * ~2 MB buffer: the sender became window-limited, every ACK released a small
 * paced burst, and throughput halved with the same syscalls, all the extra
 * time in the kernel (raw 64 KiB reads fall into the same state). 1 MiB reads
 * let the buffer grow to ~4.7 MB on most connections. A read may overshoot
 * the core's receive window by up to its size; the core still stops reading
 * once it holds a window's worth.
 */
const BULK_READ_SIZE = 1024 * 1024;
/**
 * Reads shorter than a quarter of their buffer are copied out so the buffer
 * can be reused: handing it over would pin up to four times the data.
 */
const COPY_FRACTION = 4;
/**
 * Idle 64 KiB buffers a backend keeps for its connections' reads and writes:
 * a writer ahead of its peer queues up to {@link HIGH_WATER} in them.
 */
const POOL_LIMIT = 8;
/** Idle bulk buffers a backend keeps: a connection in bulk mode reads with two. */
const BULK_POOL_LIMIT = 2;
/**
 * Queued bytes past which `write` asks the caller to wait for `drain`: five
 * 64 KiB writes per wake-up of the writer instead of two (for a jco guest
 * each wake-up is a JSPI resume). Deno has no writev, so syscalls stay one
 * per chunk either way.
 */
const HIGH_WATER = 256 * 1024;

const REAL_OPTIONS: ReadonlySet<TcpOptionName> = new Set<TcpOptionName>(["keepAliveEnabled"]);

/**
 * Ports of listeners closed while an `accept()` was pending. Deno frees such
 * a socket only once the pending accept is cancelled, a turn of the event
 * loop later; a bind that meets the port still listening waits for that.
 */
const closingPorts = new Map<number, Promise<void>>();

function netAddr(addr: Deno.Addr): HostAddress {
  const { hostname, port } = addr as Deno.NetAddr;
  return nodeHostAddress(hostname, port);
}

/**
 * Idle buffers shared by the connections of one backend, so that reads and
 * borrowed writes go into warm memory: a fresh 64 KiB buffer per read halved
 * throughput. A buffer is only ever here while nobody reads from or into it.
 */
class BufferPool {
  #small: Uint8Array[] = [];
  #bulk: Uint8Array[] = [];

  take(size: number): Uint8Array {
    const list = size === READ_SIZE ? this.#small : this.#bulk;
    return list.pop() ?? new Uint8Array(size);
  }

  // Ignores foreign sizes, duplicates and overflow (the garbage collector
  // takes those).
  give(buffer: ArrayBufferLike): void {
    const size = buffer.byteLength;
    const list = size === READ_SIZE
      ? this.#small
      : size === BULK_READ_SIZE
      ? this.#bulk
      : undefined;
    if (list === undefined || list.length >= (list === this.#bulk ? BULK_POOL_LIMIT : POOL_LIMIT)) return;
    for (let i = 0; i < list.length; i++) if (list[i].buffer === buffer) return;
    list.push(new Uint8Array(buffer));
  }
}

/** Bytes waiting to go out: a caller's chunk, or a pooled buffer filled to `length`. */
interface Outgoing {
  bytes: Uint8Array;
  length: number;
  pooled: boolean;
}

/**
 * A native Deno TCP connection. Reads are pulled with `conn.read` into a
 * buffer that is handed over: a fresh one, or with lending a pooled one that
 * comes back through {@link DenoConnection.recycle}. Writes are queued and
 * pushed by one async loop, because `conn.write` may take only part of a chunk;
 * borrowed writes are copied into pooled buffers, which come back once sent.
 */
class DenoConnection implements BackendConnection {
  #conn: Deno.TcpConn;
  #pool: BufferPool;
  #local: HostAddress | undefined;
  #remote: HostAddress | undefined;
  #sink: ConnectionSink | undefined;
  #earlyError: NetworkError | undefined;
  #done = false;
  #released = false;
  #paused = false;
  #receiveShut = false;
  #sendShut = false;
  #eof = false;
  #reading = false;
  // Set by the first recycle(): the core lends, so pooled buffers come back.
  #lending = false;
  #bulk = false;
  // A chunk whose read completed after pause(); delivered on resume().
  #held: Uint8Array | undefined;
  #queue: Outgoing[] = [];
  #queued = 0;
  #writing = false;
  #needDrain = false;

  constructor(conn: Deno.TcpConn, pool: BufferPool) {
    this.#conn = conn;
    this.#pool = pool;
  }

  // Lazy: most connections never ask, and parsing both costs a few percent
  // of a connect/accept/close cycle.
  get localAddress(): HostAddress {
    return this.#local ??= netAddr(this.#conn.localAddr);
  }

  get remoteAddress(): HostAddress {
    return this.#remote ??= netAddr(this.#conn.remoteAddr);
  }

  start(sink: ConnectionSink): void {
    if (this.#sink !== undefined) return;
    this.#sink = sink;
    if (this.#earlyError !== undefined) {
      const failure = this.#earlyError;
      this.#earlyError = undefined;
      sink.error(failure);
      return;
    }
    if (!this.#done && !this.#paused && !this.#receiveShut) this.#read();
  }

  async #read(): Promise<void> {
    this.#reading = true;
    const conn = this.#conn;
    const pool = this.#pool;
    let buffer = pool.take(this.#bulk ? BULK_READ_SIZE : READ_SIZE);
    while (!this.#paused) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch (error) {
        this.#reading = false;
        this.#fail(error);
        return;
      }
      if (this.#done) return;
      if (n === null) {
        this.#reading = false;
        this.#eof = true;
        pool.give(buffer.buffer);
        if (!this.#receiveShut) this.#sink!.end();
        return;
      }
      if (this.#receiveShut) break;
      // A full 64 KiB read means more is waiting: read bigger while the core
      // lends (pooled buffers are cheap); drop back once reads come up short.
      const size = buffer.length;
      const bulk = this.#lending && n >= READ_SIZE;
      this.#bulk = bulk;
      const next = bulk ? BULK_READ_SIZE : READ_SIZE;
      let chunk: Uint8Array;
      if (n < size / COPY_FRACTION) {
        chunk = buffer.slice(0, n);
        if (size !== next) {
          pool.give(buffer.buffer);
          buffer = pool.take(next);
        }
      } else {
        chunk = buffer.subarray(0, n);
        buffer = pool.take(next);
      }
      if (this.#paused) {
        this.#held = chunk;
        break;
      }
      this.#sink!.data(chunk);
      if (this.#done) return;
    }
    // A paused connection holds no buffer, so idle connections cost none.
    pool.give(buffer.buffer);
    this.#reading = false;
  }

  // The core lends: from now on chunks come back, so bulk reads are cheap.
  recycle(chunk: Uint8Array): void {
    this.#lending = true;
    this.#pool.give(chunk.buffer);
  }

  write(chunk: Uint8Array): boolean {
    if (this.#done || this.#sendShut) return true;
    if (chunk.byteLength !== 0) {
      this.#queue.push({ bytes: chunk, length: chunk.byteLength, pooled: false });
      this.#queued += chunk.byteLength;
      if (!this.#writing) this.#flush();
    }
    return this.#belowHighWater();
  }

  // `conn.write` keeps its buffer until the write settles: a chunk given away
  // goes out as it is, and lent bytes are copied whole.
  readonly borrowedWritesCopy = true;

  // Copies into pooled buffers, appending to the last one while it has room:
  // a fresh array per write (zeroed, then collected) cost the synchronous
  // mode's worker about an eighth of its throughput here, and small writes
  // share one `conn.write`. Appending to the buffer being written is safe:
  // the pending write holds a view that ends where the new bytes start.
  writeBorrowed(chunk: Uint8Array): boolean {
    if (this.#done || this.#sendShut) return true;
    const n = chunk.byteLength;
    const queue = this.#queue;
    for (let copied = 0; copied < n;) {
      let tail = queue[queue.length - 1];
      if (tail === undefined || !tail.pooled || tail.length === tail.bytes.length) {
        tail = { bytes: this.#pool.take(n - copied > READ_SIZE ? BULK_READ_SIZE : READ_SIZE), length: 0, pooled: true };
        queue.push(tail);
      }
      const k = Math.min(n - copied, tail.bytes.length - tail.length);
      copyInto(tail.bytes, tail.length, k === n ? chunk : chunk.subarray(copied, copied + k));
      tail.length += k;
      copied += k;
    }
    this.#queued += n;
    if (n !== 0 && !this.#writing) this.#flush();
    return this.#belowHighWater();
  }

  #belowHighWater(): boolean {
    if (this.#queued > HIGH_WATER) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  flush(): boolean {
    if (this.#done || this.#queue.length === 0) return true;
    this.#needDrain = true;
    return false;
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    const conn = this.#conn;
    const queue = this.#queue;
    try {
      while (queue.length !== 0) {
        const head = queue[0];
        // `head.length` may grow while a write is pending (writeBorrowed).
        let offset = 0;
        while (offset < head.length) {
          offset += await conn.write(head.bytes.subarray(offset, head.length));
          if (this.#done) return;
        }
        queue.shift();
        this.#queued -= head.length;
        if (head.pooled) this.#pool.give(head.bytes.buffer);
      }
    } catch (error) {
      this.#writing = false;
      this.#fail(error);
      return;
    }
    this.#writing = false;
    if (this.#sendShut) this.#closeWrite();
    else if (this.#needDrain) {
      this.#needDrain = false;
      this.#sink?.drain();
    }
  }

  #closeWrite(): void {
    // A failing shutdown(2) means the connection is gone; the read side reports why.
    this.#conn.closeWrite().catch(() => {});
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (this.#done || this.#receiveShut || this.#eof || !this.#paused) return;
    this.#paused = false;
    if (this.#sink === undefined) return;
    const held = this.#held;
    if (held !== undefined) {
      this.#held = undefined;
      this.#sink.data(held);
      if (this.#done || this.#paused) return;
    }
    if (!this.#reading) this.#read();
  }

  shutdown(direction: "send" | "receive"): void {
    if (this.#done) return;
    if (direction === "send") {
      if (this.#sendShut) return;
      this.#sendShut = true;
      this.#needDrain = false;
      if (!this.#writing) this.#closeWrite();
    } else {
      this.#receiveShut = true;
      this.#paused = true;
      this.#held = undefined;
    }
  }

  setOption<K extends TcpOptionName>(name: K, value: TcpOptions[K]): boolean {
    if (name !== "keepAliveEnabled") return false;
    if (!this.#done) this.#conn.setKeepAlive(value as boolean);
    return true;
  }

  #fail(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#release();
    const failure = denoNetworkError(
      error,
      "io",
      `Connection to ${formatAddress(this.remoteAddress.address, this.remoteAddress.port)}`,
    );
    const sink = this.#sink;
    if (sink === undefined) this.#earlyError = failure;
    else sink.error(failure);
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#held = undefined;
    this.#queue.length = 0;
    this.#queued = 0;
    try {
      this.#conn.close();
    } catch {
      // Already closed by Deno.
    }
  }

  close(): void {
    this.#done = true;
    this.#release();
  }
}

/**
 * A `Deno.listen` listener. Connections are pulled with `accept()`, so
 * {@link DenoListener.pause} simply stops pulling and the kernel's backlog
 * fills up.
 */
class DenoListener implements BackendListener {
  readonly localAddress: HostAddress;
  #listener: Deno.TcpListener;
  #request: ListenRequest;
  #pool: BufferPool;
  #paused = false;
  // The guest waits for a connection that has not been taken yet.
  #wanted = false;
  #running = false;
  #accepting: Promise<Deno.TcpConn> | undefined;
  #closed = false;

  constructor(listener: Deno.TcpListener, request: ListenRequest, pool: BufferPool) {
    this.#listener = listener;
    this.#pool = pool;
    this.#request = request;
    this.localAddress = netAddr(listener.addr);
  }

  // Takes connections while the guest wants one. Accepting ahead of demand
  // would cost every connection an accept(2) that finds nothing, an epoll
  // registration and a wake-up; the kernel queues them meanwhile.
  async #accept(): Promise<void> {
    this.#running = true;
    while (this.#wanted && !this.#paused) {
      let conn: Deno.TcpConn;
      try {
        this.#accepting = this.#listener.accept();
        conn = await this.#accepting;
      } catch (error) {
        this.#accepting = undefined;
        if (this.#closed) break;
        const failure = denoNetworkError(
          error,
          "accept",
          `Accept on ${formatAddress(this.localAddress.address, this.localAddress.port)}`,
        );
        // The peer gave up before we took it; the listener is fine.
        if (failure.payload === "connection-aborted") continue;
        this.#running = false;
        this.#request.onError(failure);
        return;
      }
      this.#accepting = undefined;
      if (this.#closed) {
        conn.close();
        break;
      }
      // Cleared first: the core asks again, at once, if it refuses this one.
      this.#wanted = false;
      this.#request.onConnection(new DenoConnection(conn, this.#pool));
      if (this.#closed) break;
    }
    this.#running = false;
  }

  demand(): void {
    this.#wanted = true;
    if (!this.#running && !this.#paused && !this.#closed) this.#accept();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (this.#closed || !this.#paused) return;
    this.#paused = false;
    if (this.#wanted && !this.#running) this.#accept();
  }

  setOption<K extends TcpOptionName>(_name: K, _value: TcpOptions[K]): boolean {
    // Deno cannot set options on a listener; the core applies them to each accepted connection.
    return false;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    const pending = this.#accepting;
    if (pending !== undefined) {
      const port = this.localAddress.port;
      const released = pending.then(() => {}, () => {}).then(() => {
        if (closingPorts.get(port) === released) closingPorts.delete(port);
      });
      closingPorts.set(port, released);
    }
  }
}

/** An address held by a bound, not listening, node:net socket. */
class DenoBinding implements BackendBinding {
  #reservation: NodeReservation;
  #pool: BufferPool;
  #state: "bound" | "listening" | "released" = "bound";

  constructor(reservation: NodeReservation, pool: BufferPool) {
    this.#reservation = reservation;
    this.#pool = pool;
  }

  get localAddress(): HostAddress {
    return this.#reservation.localAddress;
  }

  listen(request: ListenRequest): BackendListener {
    if (this.#state !== "bound") {
      throw new NetworkError("invalid-state", `Cannot listen on a binding that is ${this.#state}`);
    }
    const local = this.#reservation.localAddress;
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({
        transport: "tcp",
        hostname: local.address,
        port: local.port,
        tcpBacklog: Math.min(request.backlog, 0x7fff_ffff),
      });
    } catch (error) {
      // The held socket still holds the address: the binding stays usable.
      throw denoNetworkError(
        error,
        "listen",
        `Listen on ${formatAddress(local.address, local.port)}`,
      );
    }
    this.#state = "listening";
    this.#reservation.release();
    return new DenoListener(listener, request, this.#pool);
  }

  release(): HostAddress {
    if (this.#state !== "bound") {
      throw new NetworkError(
        "invalid-state",
        `Cannot connect from a binding that is ${this.#state}`,
      );
    }
    this.#state = "released";
    this.#reservation.release();
    return this.#reservation.localAddress;
  }

  close(): void {
    if (this.#state !== "bound") return;
    this.#state = "released";
    this.#reservation.release();
  }
}

async function connectDeno(request: ConnectRequest, pool: BufferPool): Promise<BackendConnection> {
  const { remote, signal } = request;
  let conn: Deno.TcpConn;
  // Deno.connect takes a real AbortSignal: it gives the attempt (and its
  // descriptor) up when the guest drops the socket.
  let abort: AbortController | undefined;
  const onAbort = (): void => abort!.abort();
  if (signal) {
    abort = new AbortController();
    if (signal.aborted) abort.abort();
    else signal.addEventListener("abort", onAbort, { once: true });
  }
  try {
    conn = await Deno.connect({ transport: "tcp", hostname: remote.address, port: remote.port, signal: abort?.signal });
  } catch (error) {
    throw denoNetworkError(
      error,
      "connect",
      `Connect to ${formatAddress(remote.address, remote.port)}`,
    );
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  const connection = new DenoConnection(conn, pool);
  applyOptions(connection, request.options, request.changed);
  return connection;
}

/**
 * Creates the Deno backend. Only usable under Deno (it calls the `Deno`
 * namespace), though importing the module is harmless elsewhere.
 *
 * @returns A backend named `"deno"`.
 * @example
 * ```ts
 * import { createDenoBackend } from "./deno.ts";
 * const backend = createDenoBackend();
 * const binding = await backend.bind({
 *   local: { family: "ipv4", address: "127.0.0.1", port: 0 },
 *   ipv6Only: true,
 * });
 * console.log(binding.localAddress.port > 0); // true
 * binding.close();
 * ```
 */
export function createDenoBackend(): TcpBackend {
  const pool = new BufferPool();
  return {
    name: "deno",
    realOptions: REAL_OPTIONS,
    bind(request: BindRequest): BackendBinding | Promise<BackendBinding> {
      try {
        return new DenoBinding(reserveAddress(request) as NodeReservation, pool);
      } catch (error) {
        const closing = (error as NetworkError).payload === "address-in-use"
          ? closingPorts.get(request.local.port)
          : undefined;
        if (closing === undefined) throw error;
        return closing.then(() =>
          new DenoBinding(reserveAddress(request) as NodeReservation, pool)
        );
      }
    },
    connect(request: ConnectRequest): Promise<BackendConnection> {
      const binding = request.binding;
      if (binding === undefined) return connectDeno(request, pool);
      let local: HostAddress;
      try {
        local = binding instanceof DenoBinding ? binding.release() : binding.localAddress;
      } catch (error) {
        return Promise.reject(error);
      }
      binding.close();
      return connectNode({
        remote: request.remote,
        local,
        options: request.options,
        changed: request.changed,
        signal: request.signal,
      });
    },
  };
}

// jco copies every read result into guest memory at once, so the namespaces
// jco imports lend read buffers (see WasiSocketsOptions.lendReadBuffers).
const wasi: WasiSockets = createWasiSockets({ backend: createDenoBackend(), lendReadBuffers: true });

/**
 * `wasi:sockets/tcp` on Deno, for `jco transpile --map 'wasi:sockets/*=wasi-tcp/deno#*'`.
 *
 * @example
 * ```ts
 * import { tcp } from "./deno.ts";
 * console.log(typeof tcp.TcpSocket); // "function"
 * ```
 */
export const tcp: TcpNamespace = wasi.tcp;
/**
 * `wasi:sockets/tcp-create-socket` on Deno.
 *
 * @example
 * ```ts
 * import { tcpCreateSocket } from "./deno.ts";
 * const socket = tcpCreateSocket.createTcpSocket("ipv4");
 * socket[Symbol.dispose]();
 * ```
 */
export const tcpCreateSocket: TcpCreateSocketNamespace = wasi.tcpCreateSocket;
/**
 * `wasi:sockets/network`.
 *
 * @example
 * ```ts
 * import { network } from "./deno.ts";
 * console.log(typeof network.Network); // "function"
 * ```
 */
export const network: NetworkNamespace = wasi.network;
/**
 * `wasi:sockets/instance-network`.
 *
 * @example
 * ```ts
 * import { instanceNetwork } from "./deno.ts";
 * console.log(instanceNetwork.instanceNetwork() === instanceNetwork.instanceNetwork()); // true
 * ```
 */
export const instanceNetwork: InstanceNetworkNamespace = wasi.instanceNetwork;
/**
 * `wasi:io/streams`; read results are lent: valid until the next read on that stream.
 *
 * @example
 * ```ts
 * import { streams } from "./deno.ts";
 * console.log(typeof streams.InputStream); // "function"
 * ```
 */
export const streams: StreamsNamespace = wasi.streams;
/**
 * `wasi:io/poll`.
 *
 * @example
 * ```ts
 * import { monotonicClock, poll } from "./deno.ts";
 * console.log(await poll.poll([monotonicClock.subscribeDuration(0n)])); // Uint32Array [0]
 * ```
 */
export const poll: PollNamespace = wasi.poll;
/**
 * `wasi:io/error`.
 *
 * @example
 * ```ts
 * import { error } from "./deno.ts";
 * console.log(new error.Error("connection reset").toDebugString());
 * ```
 */
export const error: ErrorNamespace = wasi.error;
/**
 * `wasi:clocks/monotonic-clock`.
 *
 * @example
 * ```ts
 * import { monotonicClock } from "./deno.ts";
 * console.log(monotonicClock.now() > 0n); // true
 * ```
 */
export const monotonicClock: MonotonicClockNamespace = wasi.monotonicClock;
/**
 * `wasi:clocks/wall-clock`.
 *
 * @example
 * ```ts
 * import { wallClock } from "./deno.ts";
 * console.log(wallClock.now().seconds > 1_700_000_000n); // true
 * ```
 */
export const wallClock: WallClockNamespace = wasi.wallClock;
