/**
 * A {@link BackendConnection} around a `node:net` socket, shared by the Node
 * backend and by the Deno backend (which connects from a chosen local address
 * through Deno's node:net). Works on the node:net of Node, Deno and Bun.
 *
 * @module
 */

import net from "node:net";
import type {
  BackendConnection,
  ConnectionSink,
  ConnectSignal,
  HostAddress,
  TcpOptionName,
  TcpOptions,
} from "../core/backend.ts";
import { NetworkError } from "../core/errors.ts";
import { copyInto, copyOf } from "../core/_copy.ts";
import { formatAddress, toNetworkError } from "./_node_errors.ts";

const NS_PER_MS = 1_000_000n;
// Linux's default TCP_KEEPIDLE, used until the core sets another.
const DEFAULT_IDLE_MS = 7_200_000;
const OWNER: unique symbol = Symbol("NodeConnection");
const EMPTY = new Uint8Array(0);
// Under Node, libuv watches a paused socket for nothing, so it cannot fail or
// end before our first read, write or end. Deno's and Bun's node:net may still
// report a peer's reset then, so there the local address is read at once.
const PAUSED_IS_QUIET = !("Deno" in globalThis) && !("Bun" in globalThis);
// Copies of lent writes (writeBorrowed), reused once node:net calls a write
// back: a fresh array per write costs an allocation, its zeroing and the
// collector's work (in the sync worker on Node, memset alone was about a
// tenth of its time outside the kernel). Up to the core's write budget;
// bigger lent writes get a fresh copy.
const POOLED_BYTES = 65536;
const POOL_KEEP = 32;
const pool: Uint8Array[] = [];

type OwnedSocket = net.Socket & { [OWNER]: NodeConnection };
type Listener<A extends unknown[]> = (this: OwnedSocket, ...args: A) => void;

// Assigned in NodeConnection's static block, where its private methods are in reach.
let onData: Listener<[chunk: Uint8Array]>;
let onEnd: Listener<[]>;
let onDrain: Listener<[]>;
let onError: Listener<[error: unknown]>;

/**
 * Builds a HostAddress from what node:net reports. An IPv6 zone (`%2`, `%eth0`)
 * becomes `scopeId` when numeric and is dropped otherwise.
 *
 * @param address The textual IP, possibly with a zone; `undefined` when the socket is gone.
 * @param port The port; `undefined` when the socket is gone.
 * @returns The address, or the IPv4 unspecified address with port 0 when unknown.
 * @example
 * ```ts
 * import { nodeHostAddress } from "./_node_connection.ts";
 * console.log(nodeHostAddress("::1", 80)); // { family: "ipv6", address: "::1", port: 80 }
 * ```
 */
export function nodeHostAddress(
  address: string | undefined,
  port: number | undefined,
): HostAddress {
  if (address === undefined) return { family: "ipv4", address: "0.0.0.0", port: port ?? 0 };
  if (!address.includes(":")) return { family: "ipv4", address, port: port ?? 0 };
  const zone = address.indexOf("%");
  if (zone === -1) return { family: "ipv6", address, port: port ?? 0 };
  const scope = Number(address.slice(zone + 1));
  const result: HostAddress = { family: "ipv6", address: address.slice(0, zone), port: port ?? 0 };
  if (Number.isInteger(scope)) result.scopeId = scope;
  return result;
}

/**
 * An established node:net connection. Created paused: nothing is read, and no
 * event delivered, before {@link NodeConnection.start}.
 *
 * Keep-alive is applied with `setKeepAlive(true, ms)`; node:net offers nothing
 * for the other options, so `setOption` answers `false` for them. Note that
 * libuv also forces TCP_KEEPINTVL to 1 s and TCP_KEEPCNT to 10 when keep-alive
 * is enabled.
 *
 * @example
 * ```ts
 * import net from "node:net";
 * import { NodeConnection } from "./_node_connection.ts";
 * const server = net.createServer((peer) => peer.destroy()).listen(0, "127.0.0.1");
 * await new Promise((resolve) => server.once("listening", resolve));
 * const { port } = server.address() as net.AddressInfo;
 * const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
 * await new Promise((resolve) => socket.once("connect", resolve));
 * const connection = new NodeConnection(socket);
 * connection.start({ data() {}, end() {}, drain() {}, error() {} });
 * connection.close();
 * server.close();
 * ```
 */
export class NodeConnection implements BackendConnection {
  /** The remote end, as the OS reports it. */
  readonly remoteAddress: HostAddress;
  #socket: net.Socket;
  #local: HostAddress | undefined;
  // Set at the first read, write or end: from then on node:net may destroy
  // the socket by itself (an error, or both directions ended), after which
  // it can no longer tell the local address, so it is read before that.
  #live = false;
  #sink: ConnectionSink | undefined;
  // Events that arrive before start(), in case a runtime emits any while paused.
  #early: Uint8Array[] | undefined;
  #earlyEnd = false;
  #earlyError: NetworkError | undefined;
  // Closed by us or failed: no more events, ever.
  #done = false;
  #paused = false;
  #receiveShut = false;
  #sendShut = false;
  #needDrain = false;
  #flushed: ((error?: Error | null) => void) | undefined;
  #keepAlive = false;
  #idleMs = DEFAULT_IDLE_MS;

  /**
   * @param socket A connected socket, created with `allowHalfOpen: true` (for
   * accepted sockets: by a server with `allowHalfOpen` and `pauseOnConnect`).
   * The connection owns it from now on.
   * @param local The local address when the caller knows it already, which
   * saves a getsockname(2).
   * @param remote The remote address when the caller knows it already, which
   * saves a getpeername(2).
   */
  constructor(socket: net.Socket, local?: HostAddress, remote?: HostAddress) {
    this.#socket = socket;
    this.#local = local;
    // Read now: once the peer resets the connection, getpeername(2) fails.
    this.remoteAddress = remote ?? nodeHostAddress(socket.remoteAddress, socket.remotePort);
    if (!PAUSED_IS_QUIET) this.#goLive();
    // Readable streams keep data buffered while paused, so nothing is lost
    // between here and start().
    socket.pause();
    (socket as OwnedSocket)[OWNER] = this;
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("drain", onDrain);
    // Also keeps a late error (after close) from becoming an uncaught exception.
    socket.on("error", onError);
  }

  /** The local end, as the OS reports it. */
  get localAddress(): HostAddress {
    return this.#local ??= nodeHostAddress(this.#socket.localAddress, this.#socket.localPort);
  }

  // getsockname(2) works until the socket is closed, and until the first
  // read, write or end only we can close it: a connection that is closed
  // before any I/O (a probe, a refused accept) never pays for it.
  #goLive(): void {
    if (this.#live) return;
    this.#live = true;
    void this.localAddress;
  }

  static {
    // One set of listeners for all sockets (`this` is the socket), rather
    // than four closures per connection.
    onData = function (this: OwnedSocket, chunk: Uint8Array): void {
      this[OWNER].#onData(chunk);
    };
    onEnd = function (this: OwnedSocket): void {
      this[OWNER].#onEnd();
    };
    onDrain = function (this: OwnedSocket): void {
      this[OWNER].#onDrain();
    };
    onError = function (this: OwnedSocket, error: unknown): void {
      this[OWNER].#onError(error);
    };
  }

  #onData(chunk: Uint8Array): void {
    if (this.#done || this.#receiveShut) return;
    const sink = this.#sink;
    if (sink === undefined) (this.#early ??= []).push(chunk);
    else sink.data(chunk);
  }

  #onEnd(): void {
    if (this.#done || this.#receiveShut) return;
    const sink = this.#sink;
    if (sink === undefined) this.#earlyEnd = true;
    else sink.end();
  }

  #onDrain(): void {
    if (this.#done || !this.#needDrain || this.#sink === undefined) return;
    this.#needDrain = false;
    this.#sink.drain();
  }

  #onError(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    const failure = toNetworkError(
      error,
      "io",
      `Connection to ${formatAddress(this.remoteAddress.address, this.remoteAddress.port)}`,
    );
    const sink = this.#sink;
    if (sink === undefined) this.#earlyError = failure;
    else sink.error(failure);
  }

  /**
   * Starts delivering events to `sink`; reading starts unless paused.
   *
   * @param sink Receives data, end, drain and error events.
   */
  start(sink: ConnectionSink): void {
    if (this.#sink !== undefined) return;
    this.#sink = sink;
    const early = this.#early;
    this.#early = undefined;
    if (early !== undefined) {
      for (const chunk of early) {
        if (this.#done) return;
        sink.data(chunk);
      }
    }
    if (this.#earlyError !== undefined) {
      const failure = this.#earlyError;
      this.#earlyError = undefined;
      sink.error(failure);
      return;
    }
    if (this.#earlyEnd && !this.#done) sink.end();
    if (!this.#done && !this.#paused && !this.#receiveShut) {
      this.#goLive();
      this.#socket.resume();
    }
  }

  /**
   * Queues `chunk` without copying it.
   *
   * @param chunk The bytes; owned by the connection from now on.
   * @returns `false` once node:net's write buffer is past its high-water mark;
   * `drain` follows when it empties.
   */
  write(chunk: Uint8Array): boolean {
    return this.#send(chunk);
  }

  /** node:net keeps what it is given until sent, so borrowed writes are copies. */
  readonly borrowedWritesCopy = true;

  /**
   * Queues a copy of bytes lent for the call only, in a pooled buffer.
   *
   * @param chunk The bytes; the caller may reuse them once this returns.
   * @returns As {@link write}.
   */
  writeBorrowed(chunk: Uint8Array): boolean {
    if (this.#done || this.#sendShut) return true;
    if (chunk.length > POOLED_BYTES) return this.#send(copyOf(chunk));
    const buffer = pool.pop() ?? new Uint8Array(POOLED_BYTES);
    copyInto(buffer, 0, chunk);
    // Called back once node:net is done with the bytes: sent, or failed.
    return this.#send(buffer.subarray(0, chunk.length), () => {
      if (pool.length < POOL_KEEP) pool.push(buffer);
    });
  }

  #send(chunk: Uint8Array, sent?: (error?: Error | null) => void): boolean {
    if (this.#done || this.#sendShut) return true;
    if (!this.#live) this.#goLive();
    if (this.#socket.write(chunk, sent)) return true;
    this.#needDrain = true;
    return false;
  }

  /**
   * Whether node:net has handed every queued byte to the OS.
   *
   * @returns `true` if so; otherwise `false`, and `drain` follows once it has
   * (an empty write's callback marks the point, as node:net emits its own
   * `drain` only past the high-water mark).
   */
  flush(): boolean {
    const socket = this.#socket;
    if (this.#done || socket.writableLength === 0) return true;
    this.#needDrain = true;
    // node:net calls back every queued write with the error when the socket
    // fails, before its `error` event: that is no drain.
    socket.write(EMPTY, this.#flushed ??= (error?: Error | null) => {
      if (!error) this.#onDrain();
    });
    return false;
  }

  /** Stops reading from the OS; node:net stops once its small read buffer fills. */
  pause(): void {
    this.#paused = true;
    if (!this.#done) this.#socket.pause();
  }

  /** Resumes reading after {@link pause}, unless the receive side is shut down. */
  resume(): void {
    if (this.#done || this.#receiveShut) return;
    this.#paused = false;
    if (this.#sink !== undefined) {
      this.#goLive();
      this.#socket.resume();
    }
  }

  /**
   * Shuts down one direction. `send` ends the socket, which sends FIN after
   * every queued byte (allowHalfOpen keeps reading alive); `receive` pauses and
   * drops whatever still arrives, node:net having no SHUT_RD.
   *
   * @param direction `send` or `receive`.
   */
  shutdown(direction: "send" | "receive"): void {
    if (this.#done) return;
    if (direction === "send") {
      if (this.#sendShut) return;
      this.#sendShut = true;
      this.#needDrain = false;
      this.#goLive();
      this.#socket.end();
    } else {
      this.#receiveShut = true;
      this.#early = undefined;
      this.#socket.pause();
    }
  }

  /**
   * Applies keep-alive on/off and idle time; the others cannot be set through
   * node:net.
   *
   * @param name The option.
   * @param value Its value, already validated by the core.
   * @returns `true` for keepAliveEnabled and keepAliveIdleTime, `false` otherwise.
   */
  setOption<K extends TcpOptionName>(name: K, value: TcpOptions[K]): boolean {
    if (name === "keepAliveEnabled") {
      this.#keepAlive = value as boolean;
      if (!this.#done) this.#socket.setKeepAlive(this.#keepAlive, this.#idleMs);
      return true;
    }
    if (name === "keepAliveIdleTime") {
      // The core rounds to whole seconds of at least 1 s, which is what
      // setKeepAlive needs (it silently ignores anything under 1000 ms).
      const ms = Number((value as bigint) / NS_PER_MS);
      this.#idleMs = ms < 1000 ? 1000 : ms;
      // The idle time only reaches the OS with keep-alive on; it is kept for then.
      if (this.#keepAlive && !this.#done) this.#socket.setKeepAlive(true, this.#idleMs);
      return true;
    }
    return false;
  }

  /** Destroys the socket at once. Idempotent; no events afterwards. */
  close(): void {
    if (this.#done) {
      // An error already ended the events, but the socket may still need releasing.
      if (!this.#socket.destroyed) this.#socket.destroy();
      return;
    }
    this.#done = true;
    this.#early = undefined;
    this.#socket.destroy();
  }
}

/**
 * What {@link connectNode} needs.
 *
 * @example
 * ```ts
 * import type { NodeConnectRequest } from "./_node_connection.ts";
 * import { defaultOptions } from "../core/_options.ts";
 * const request: NodeConnectRequest = {
 *   remote: { family: "ipv6", address: "::1", port: 8080 },
 *   local: { family: "ipv6", address: "::1", port: 40000 },
 *   options: defaultOptions(),
 *   changed: new Set(),
 * };
 * ```
 */
export interface NodeConnectRequest {
  /** The peer. */
  remote: HostAddress;
  /** The local address and port to connect from, if any. */
  local?: HostAddress;
  /** The socket's options. */
  options: TcpOptions;
  /** The options set explicitly; only these are applied. */
  changed: ReadonlySet<TcpOptionName>;
  /** Gives the attempt up: the socket is destroyed and the promise rejects. */
  signal?: ConnectSignal;
}

/**
 * Connects through node:net, optionally from a chosen local address and port,
 * and applies the changed options.
 *
 * @param request The peer, the local address, and the options.
 * @returns The connection, not yet started.
 * @throws {NetworkError} As a rejection: `connection-refused`,
 * `address-in-use` for a taken local port, and so on.
 * @example
 * ```ts
 * import net from "node:net";
 * import { connectNode } from "./_node_connection.ts";
 * import { defaultOptions } from "../core/_options.ts";
 * const server = net.createServer((peer) => peer.destroy()).listen(0, "127.0.0.1");
 * await new Promise((resolve) => server.once("listening", resolve));
 * const { port } = server.address() as net.AddressInfo;
 * const connection = await connectNode({
 *   remote: { family: "ipv4", address: "127.0.0.1", port },
 *   options: defaultOptions(),
 *   changed: new Set(),
 * });
 * connection.close();
 * server.close();
 * ```
 */
export function connectNode(request: NodeConnectRequest): Promise<NodeConnection> {
  const { remote, local, signal } = request;
  const what = `Connect to ${formatAddress(remote.address, remote.port)}`;
  return new Promise((resolve, reject) => {
    const abandoned = (): NetworkError => new NetworkError("connection-aborted", `${what} was given up`);
    if (signal?.aborted) {
      reject(abandoned());
      return;
    }
    let socket: net.Socket;
    try {
      socket = net.connect({
        host: remote.address,
        port: remote.port,
        family: remote.family === "ipv6" ? 6 : 4,
        localAddress: local?.address,
        localPort: local?.port,
        allowHalfOpen: true,
      });
    } catch (error) {
      reject(toNetworkError(error, "connect", what));
      return;
    }
    const onFailure = (error: unknown): void => {
      signal?.removeEventListener("abort", onAbort);
      socket.off("connect", onConnect);
      socket.destroy();
      reject(toNetworkError(error, "connect", what));
    };
    const onAbort = (): void => {
      socket.off("connect", onConnect);
      socket.off("error", onFailure);
      // An error node:net already queued must still find a listener.
      socket.on("error", () => {});
      socket.destroy();
      reject(abandoned());
    };
    const onConnect = (): void => {
      signal?.removeEventListener("abort", onAbort);
      socket.off("error", onFailure);
      // The peer is the IP we dialled; only the local end needs asking.
      const connection = new NodeConnection(socket, undefined, { ...remote });
      applyOptions(connection, request.options, request.changed);
      resolve(connection);
    };
    socket.once("error", onFailure);
    socket.once("connect", onConnect);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Applies the explicitly set options to a new connection, idle time before
 * enabling so keep-alive is switched on once with its final idle time.
 *
 * @param connection The connection.
 * @param options All of the socket's options.
 * @param changed The options the guest set.
 * @example
 * ```ts
 * import { applyOptions } from "./_node_connection.ts";
 * import { defaultOptions } from "../core/_options.ts";
 * import { MemoryNetwork } from "../core/memory_network.ts";
 * const net = new MemoryNetwork();
 * const listener = net.backend
 *   .bind({ local: { family: "ipv4", address: "127.0.0.1", port: 0 }, ipv6Only: true })
 *   .listen({ backlog: 1, options: defaultOptions(), changed: new Set(), onConnection() {}, onError() {} });
 * const connection = await net.backend.connect({
 *   remote: listener.localAddress,
 *   options: defaultOptions(),
 *   changed: new Set(),
 * });
 * applyOptions(connection, defaultOptions(), new Set(["keepAliveEnabled"]));
 * connection.close();
 * listener.close();
 * ```
 */
export function applyOptions(
  connection: BackendConnection,
  options: TcpOptions,
  changed: ReadonlySet<TcpOptionName>,
): void {
  if (changed.size === 0) return;
  if (changed.has("keepAliveIdleTime")) {
    connection.setOption("keepAliveIdleTime", options.keepAliveIdleTime);
  }
  for (const name of changed) {
    if (name !== "keepAliveIdleTime") connection.setOption(name, options[name]);
  }
}
