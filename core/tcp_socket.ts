/**
 * `wasi:sockets/tcp.tcp-socket`: the state machine of the WASI 0.2.6 TCP
 * socket, driving a {@link TcpBackend}. Every method checks the state, then
 * its arguments, then the host's policy, and calls the backend last.
 *
 * @module
 */

import type {
  BackendBinding,
  BackendConnection,
  BackendListener,
  ConnectSignal,
  TcpBackend,
  TcpOptionName,
  TcpOptions,
} from "./backend.ts";
import { NetworkError } from "./errors.ts";
import { forgetRep } from "./_reps.ts";
import {
  checkIpSocketAddress,
  fromHostAddress,
  type IpAddressFamily,
  type IpSocketAddress,
  toHostAddress,
  validateSocketAddress,
} from "./ip_socket_address.ts";
import {
  checkBool,
  clampHopLimit,
  clampKeepAliveCount,
  clampKeepAliveTime,
  clampSize,
  DEFAULT_BACKLOG,
  defaultOptions,
} from "./_options.ts";
import { Notifier, Pollable } from "./pollable.ts";
import { type ConnectionStreams, type InputStream, openStreams, type OutputStream } from "./streams.ts";

/**
 * What a permission check is about.
 *
 * @example
 * ```ts
 * import type { NetworkUse } from "./tcp_socket.ts";
 * const uses: NetworkUse[] = ["bind", "connect", "listen", "accept"];
 * ```
 */
export type NetworkUse = "bind" | "connect" | "listen" | "accept";

/**
 * A host policy: may the guest use `address` this way? Consulted before any
 * OS call; `false` makes the call fail with `access-denied` (for `accept`: the
 * connection is closed unseen). A Promise, or any thenable, makes the
 * finish-call answer `would-block` until it settles.
 *
 * @example
 * ```ts
 * import type { PermissionHook } from "./tcp_socket.ts";
 * const loopbackOnly: PermissionHook = (address, use) =>
 *   use === "accept" || (address.tag === "ipv4" && address.val.address[0] === 127);
 * ```
 */
export type PermissionHook = (
  address: IpSocketAddress,
  use: NetworkUse,
) => boolean | Promise<boolean>;

/**
 * `tcp.shutdown-type`.
 *
 * @example
 * ```ts
 * import type { ShutdownType, TcpSocket } from "./tcp_socket.ts";
 * function stopSending(socket: TcpSocket): void {
 *   const how: ShutdownType = "send";
 *   socket.shutdown(how);
 * }
 * ```
 */
export type ShutdownType = "receive" | "send" | "both";

/**
 * `wasi:sockets/network.network`: the capability a guest passes to bind and
 * connect. It has no methods.
 *
 * @example
 * ```ts
 * import { Network } from "./tcp_socket.ts";
 * const network = new Network();
 * ```
 */
export class Network {
  /** Drops the network handle; it holds nothing. */
  [Symbol.dispose](): void {}
}

/**
 * The settings every socket of one {@link createWasiSockets} instance shares.
 *
 * @example
 * ```ts
 * import type { SocketContext } from "./tcp_socket.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const ctx: SocketContext = { backend: new MemoryNetwork().backend, receiveWindow: 64 * 1024 };
 * ```
 */
export interface SocketContext {
  /** The backend that does the I/O. */
  backend: TcpBackend;
  /** The host's policy, if any. */
  permission?: PermissionHook;
  /** Bytes buffered per connection for a guest that does not read. */
  receiveWindow?: number;
  /** The most accepted connections held for a guest that does not accept. */
  maxAcceptQueue?: number;
  /** Whether read results are lent (see `StreamOptions.lendReadBuffers`). */
  lendReadBuffers?: boolean;
}

// The outcome of an operation that may finish later.
type Pending<T> =
  | { done: false }
  | { done: true; ok: true; value: T }
  | { done: true; ok: false; error: NetworkError };

type State =
  | { tag: "unbound" }
  | { tag: "bind-in-progress"; pending: Pending<BackendBinding> }
  | { tag: "bound"; binding: BackendBinding }
  | {
    tag: "listen-in-progress";
    binding: BackendBinding;
    pending: Pending<BackendListener>;
    // Connections that arrive before finish-listen wait here.
    queue: BackendConnection[];
  }
  | {
    tag: "listening";
    listener: BackendListener;
    queue: BackendConnection[];
    // The backend failed to take a connection (say, out of descriptors): the
    // next accept reports it, as accept(2) would, and then asks again.
    failure?: NetworkError;
  }
  | {
    tag: "connect-in-progress";
    pending: Pending<BackendConnection>;
    // Tells the backend to give the attempt up when the socket is dropped.
    abort: Abandon;
    // Where to go back to if an asynchronous permission check refuses.
    binding: BackendBinding | undefined;
  }
  | { tag: "connected"; connection: BackendConnection; streams: ConnectionStreams }
  | { tag: "closed" };

const CREATE = Symbol("create");
const NO_CHANGES: ReadonlySet<TcpOptionName> = new Set();

// Guests poll finish-calls and accept in loops, so would-block is thrown far
// more often than any other error. Building an Error costs microseconds even
// without a stack trace, so each would-block is built once and thrown again;
// it carries nothing that differs between throws.
function wouldBlock(message: string): NetworkError {
  const E = Error as { stackTraceLimit?: number };
  const limit = E.stackTraceLimit;
  E.stackTraceLimit = 0;
  try {
    return Object.freeze(new NetworkError("would-block", message));
  } finally {
    E.stackTraceLimit = limit;
  }
}

const NOT_FINISHED = wouldBlock("The operation has not finished yet");
const NO_CONNECTION = wouldBlock("No connection is pending");

// What tells a backend that a connect was given up (ConnectRequest.signal).
// Not an AbortController: on Node one costs about a tenth of a connect's time.
class Abandon implements ConnectSignal {
  aborted = false;
  #listeners: (() => void)[] | undefined;

  addEventListener(_type: "abort", listener: () => void): void {
    (this.#listeners ??= []).push(listener);
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    const listeners = this.#listeners;
    const i = listeners ? listeners.indexOf(listener) : -1;
    if (i >= 0) listeners!.splice(i, 1);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }
}

// The host policy's refusals. finish-connect tells them apart from an
// access-denied reported by the OS: only a refusal leaves the state as it was.
const policyDenials = new WeakSet<NetworkError>();

function toNetworkError(e: unknown): NetworkError {
  if (e instanceof NetworkError) return e;
  return new NetworkError("unknown", e instanceof Error ? e.message : String(e));
}

/**
 * `wasi:sockets/tcp.tcp-socket`.
 *
 * @example
 * ```ts
 * import { createWasiSockets } from "./wasi_sockets.ts";
 * import { MemoryNetwork } from "./memory_network.ts";
 * const { tcpCreateSocket, instanceNetwork } = createWasiSockets({ backend: new MemoryNetwork().backend });
 * const socket = tcpCreateSocket.createTcpSocket("ipv4");
 * socket.startBind(instanceNetwork.instanceNetwork(), { tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } });
 * socket.finishBind();
 * console.log(socket.localAddress());
 * ```
 */
export class TcpSocket {
  #ctx: SocketContext;
  #family: IpAddressFamily;
  #state: State = { tag: "unbound" };
  #options: TcpOptions;
  #changed: Set<TcpOptionName> | undefined;
  #backlog = DEFAULT_BACKLOG;
  #notifier = new Notifier();
  #dropped = false;

  /** Sockets come from `createTcpSocket` or `accept`; not for direct use. */
  constructor(token: unknown, ctx: SocketContext, family: IpAddressFamily, options?: TcpOptions) {
    if (token !== CREATE) {
      throw new TypeError("TcpSocket is created by createTcpSocket, not constructed");
    }
    this.#ctx = ctx;
    this.#family = family;
    this.#options = options ? { ...options } : defaultOptions();
  }

  /** @internal Creates an unbound socket. */
  static create(ctx: SocketContext, family: IpAddressFamily): TcpSocket {
    return new TcpSocket(CREATE, ctx, family);
  }

  // Runs a possibly-asynchronous step and records its outcome in a Pending
  // that the finish-call reads; `orphan` releases a result nobody will take.
  #settle<T>(
    run: () => T | Promise<T>,
    orphan: (value: T) => void,
  ): Pending<T> {
    let result: T | Promise<T>;
    try {
      result = run();
    } catch (e) {
      return { done: true, ok: false, error: toNetworkError(e) };
    }
    if (!(result instanceof Promise)) return { done: true, ok: true, value: result };
    const pending: { done: boolean; ok?: boolean; value?: T; error?: NetworkError } = {
      done: false,
    };
    result.then(
      (value) => {
        if (this.#dropped) return orphan(value);
        pending.done = true;
        pending.ok = true;
        pending.value = value;
        this.#notifier.notify();
      },
      (e) => {
        pending.done = true;
        pending.ok = false;
        pending.error = toNetworkError(e);
        this.#notifier.notify();
      },
    );
    return pending as Pending<T>;
  }

  // The policy check: undefined when allowed now, a Promise when the hook is
  // asynchronous; throws access-denied when it refused synchronously.
  // `address` may be a thunk, so that no address is built without a hook.
  #permit(
    address: IpSocketAddress | (() => IpSocketAddress),
    use: NetworkUse,
  ): Promise<void> | undefined {
    const hook = this.#ctx.permission;
    if (!hook) return undefined;
    if (typeof address === "function") address = address();
    const denied = (): NetworkError => {
      const e = new NetworkError("access-denied", `The host does not permit ${use} to this address`);
      policyDenials.add(e);
      return e;
    };
    const answer = hook(address, use);
    // Any thenable counts as asynchronous (a promise of another realm too):
    // taken for a truthy answer, it would let a refusal through.
    if (typeof (answer as { then?: unknown } | null)?.then === "function") {
      return Promise.resolve(answer).then((ok) => {
        if (!ok) throw denied();
        // A socket dropped while the hook was deciding must not reach the backend.
        if (this.#dropped) throw new NetworkError("invalid-state", "The socket was dropped");
      });
    }
    if (!answer) throw denied();
    return undefined;
  }

  #inProgress(): boolean {
    const t = this.#state.tag;
    return t === "bind-in-progress" || t === "listen-in-progress" ||
      t === "connect-in-progress";
  }

  #checkNetwork(network: unknown): void {
    if (!(network instanceof Network)) throw new TypeError("Expected network to be a Network");
  }

  /**
   * Starts binding to a local address. Port 0 asks the OS for one.
   *
   * @param network The guest's network capability.
   * @param localAddress The address to bind.
   * @throws {NetworkError} `invalid-state` when not unbound, `concurrency-conflict`
   * while another operation runs, `invalid-argument` for a bad address,
   * `access-denied` when the host refuses, `address-in-use` or
   * `address-not-bindable` when the OS refuses at once.
   * @throws {TypeError} For a wrong network or address shape.
   */
  startBind(network: Network, localAddress: IpSocketAddress): void {
    if (this.#inProgress()) {
      throw new NetworkError("concurrency-conflict", "Another operation is in progress");
    }
    if (this.#state.tag !== "unbound") {
      throw new NetworkError("invalid-state", "The socket is already bound");
    }
    this.#checkNetwork(network);
    const addr = checkIpSocketAddress(localAddress, "localAddress");
    validateSocketAddress(addr, this.#family, "bind");
    const permit = this.#permit(addr, "bind");
    const request = { local: toHostAddress(addr), ipv6Only: true };
    const backend = this.#ctx.backend;
    if (!permit) {
      const result = backend.bind(request);
      if (!(result instanceof Promise)) {
        this.#state = { tag: "bind-in-progress", pending: { done: true, ok: true, value: result } };
        return;
      }
      this.#state = {
        tag: "bind-in-progress",
        pending: this.#settle(() => result, (b) => b.close()),
      };
      return;
    }
    this.#state = {
      tag: "bind-in-progress",
      pending: this.#settle(() => permit.then(() => backend.bind(request)), (b) => b.close()),
    };
  }

  /**
   * Finishes a bind.
   *
   * @throws {NetworkError} `not-in-progress` without a started bind,
   * `would-block` while it is pending, or the bind's own error (the socket is
   * then unbound again and may retry).
   */
  finishBind(): void {
    const s = this.#state;
    if (s.tag !== "bind-in-progress") {
      throw new NetworkError("not-in-progress", "No bind is in progress");
    }
    const p = s.pending;
    if (!p.done) throw NOT_FINISHED;
    if (!p.ok) {
      this.#state = { tag: "unbound" };
      throw p.error;
    }
    this.#state = { tag: "bound", binding: p.value };
  }

  /**
   * Starts connecting to a remote address, binding implicitly if unbound.
   *
   * @param network The guest's network capability.
   * @param remoteAddress The peer; not unspecified, not port 0.
   * @throws {NetworkError} `invalid-state` when listening, connected or closed,
   * `concurrency-conflict` while another operation runs, `invalid-argument` for
   * a bad address (nothing changes), `access-denied` when the host refuses.
   * @throws {TypeError} For a wrong network or address shape.
   */
  startConnect(network: Network, remoteAddress: IpSocketAddress): void {
    if (this.#inProgress()) {
      throw new NetworkError("concurrency-conflict", "Another operation is in progress");
    }
    const s = this.#state;
    if (s.tag !== "unbound" && s.tag !== "bound") {
      throw new NetworkError("invalid-state", `Cannot connect a socket that is ${s.tag}`);
    }
    this.#checkNetwork(network);
    const addr = checkIpSocketAddress(remoteAddress, "remoteAddress");
    validateSocketAddress(addr, this.#family, "connect");
    const permit = this.#permit(addr, "connect");
    const binding = s.tag === "bound" ? s.binding : undefined;
    const abort = new Abandon();
    const request = {
      remote: toHostAddress(addr),
      binding,
      options: this.#options,
      changed: this.#changed ?? NO_CHANGES,
      signal: abort,
    };
    const backend = this.#ctx.backend;
    const pending = this.#settle(
      () => permit ? permit.then(() => backend.connect(request)) : backend.connect(request),
      (c) => c.close(),
    );
    this.#state = { tag: "connect-in-progress", pending, abort, binding };
  }

  /**
   * Finishes a connect and hands out the connection's streams.
   *
   * @returns The input and output streams.
   * @throws {NetworkError} `not-in-progress` without a started connect,
   * `would-block` while pending, or the connect's error (the socket is then
   * closed, except after a policy refusal, which changes nothing).
   */
  finishConnect(): [InputStream, OutputStream] {
    const s = this.#state;
    if (s.tag !== "connect-in-progress") {
      throw new NetworkError("not-in-progress", "No connect is in progress");
    }
    const p = s.pending;
    if (!p.done) throw NOT_FINISHED;
    if (!p.ok) {
      if (policyDenials.has(p.error)) {
        this.#state = s.binding ? { tag: "bound", binding: s.binding } : { tag: "unbound" };
      } else {
        s.binding?.close();
        this.#state = { tag: "closed" };
      }
      throw p.error;
    }
    const streams = openStreams(p.value, this.#ctx);
    this.#state = { tag: "connected", connection: p.value, streams };
    return [streams.input, streams.output];
  }

  /**
   * Starts listening on the bound address.
   *
   * @throws {NetworkError} `invalid-state` when not bound (0.2 has no implicit
   * bind), `concurrency-conflict` while another operation runs,
   * `access-denied` when the host refuses.
   */
  startListen(): void {
    if (this.#inProgress()) {
      throw new NetworkError("concurrency-conflict", "Another operation is in progress");
    }
    const s = this.#state;
    if (s.tag !== "bound") {
      throw new NetworkError("invalid-state", `Cannot listen on a socket that is ${s.tag}`);
    }
    const binding = s.binding;
    const permit = this.#permit(() => fromHostAddress(binding.localAddress), "listen");
    const queue: BackendConnection[] = [];
    const listen = (): BackendListener | Promise<BackendListener> =>
      binding.listen({
        backlog: this.#backlog,
        options: this.#options,
        changed: this.#changed ?? NO_CHANGES,
        onConnection: (c) => this.#incoming(c, queue),
        onError: (error) => {
          const s = this.#state;
          if (s.tag !== "listening" || s.queue !== queue) return;
          s.failure = error;
          this.#notifier.notify();
        },
      });
    const pending = this.#settle(
      () => permit ? permit.then(listen) : listen(),
      (l) => l.close(),
    );
    this.#state = { tag: "listen-in-progress", binding, pending, queue };
  }

  #queueLimit(): number {
    return Math.min(this.#backlog, this.#ctx.maxAcceptQueue ?? 1024);
  }

  #incoming(connection: BackendConnection, queue: BackendConnection[]): void {
    const enqueue = (): void => {
      const s = this.#state;
      const live = (s.tag === "listening" || s.tag === "listen-in-progress") &&
        s.queue === queue;
      if (!live || queue.length >= this.#queueLimit()) {
        // Past the backlog a kernel would stop completing handshakes; a
        // push-based runtime already completed this one, so refuse it.
        connection.close();
        return;
      }
      queue.push(connection);
      if (queue.length >= this.#queueLimit() && s.tag === "listening") s.listener.pause();
      if (queue.length === 1) this.#notifier.notify();
    };
    // A refused connection does not answer the guest's demand: ask again.
    const refuse = (): void => {
      connection.close();
      const s = this.#state;
      if (s.tag === "listening" && s.queue === queue && queue.length === 0) s.listener.demand?.();
    };
    let permit: Promise<void> | undefined;
    try {
      permit = this.#permit(() => fromHostAddress(connection.remoteAddress), "accept");
    } catch {
      refuse();
      return;
    }
    if (permit) permit.then(enqueue, refuse);
    else enqueue();
  }

  /**
   * Finishes a listen.
   *
   * @throws {NetworkError} `not-in-progress` without a started listen,
   * `would-block` while pending, or the listen's error (the socket is then
   * closed, as the spec's state diagram and wasmtime have it, except after a
   * policy refusal, which changes nothing).
   */
  finishListen(): void {
    const s = this.#state;
    if (s.tag !== "listen-in-progress") {
      throw new NetworkError("not-in-progress", "No listen is in progress");
    }
    const p = s.pending;
    if (!p.done) throw NOT_FINISHED;
    if (!p.ok) {
      if (policyDenials.has(p.error)) this.#state = { tag: "bound", binding: s.binding };
      else {
        s.binding.close();
        this.#state = { tag: "closed" };
      }
      throw p.error;
    }
    this.#state = { tag: "listening", listener: p.value, queue: s.queue };
  }

  /**
   * Takes one pending connection. The new socket is connected and inherits
   * this socket's options.
   *
   * @returns The client socket and its input and output streams.
   * @throws {NetworkError} `invalid-state` when not listening, `would-block`
   * when no connection is pending, or, once, the error with which the backend
   * last failed to take one (such as `new-socket-limit`).
   */
  accept(): [TcpSocket, InputStream, OutputStream] {
    const s = this.#state;
    if (s.tag !== "listening") {
      throw new NetworkError("invalid-state", "The socket is not listening");
    }
    const connection = s.queue.shift();
    if (!connection) {
      const failure = s.failure;
      if (failure) {
        s.failure = undefined;
        throw failure;
      }
      s.listener.demand?.();
      throw NO_CONNECTION;
    }
    if (s.queue.length === this.#queueLimit() - 1) s.listener.resume();
    const socket = new TcpSocket(CREATE, this.#ctx, this.#family, this.#options);
    if (this.#changed) {
      socket.#changed = new Set(this.#changed);
      for (const name of this.#changed) {
        connection.setOption(name, this.#options[name]);
      }
    }
    const streams = openStreams(connection, this.#ctx);
    socket.#state = { tag: "connected", connection, streams };
    return [socket, streams.input, streams.output];
  }

  /**
   * The bound local address.
   *
   * @returns The address, with the port the OS chose.
   * @throws {NetworkError} `invalid-state` before the bind has finished and
   * while connecting.
   */
  localAddress(): IpSocketAddress {
    const s = this.#state;
    switch (s.tag) {
      case "bound":
      case "listen-in-progress":
        return fromHostAddress(s.binding.localAddress);
      case "listening":
        return fromHostAddress(s.listener.localAddress);
      case "connected":
        return fromHostAddress(s.connection.localAddress);
      default:
        throw new NetworkError("invalid-state", `The socket is ${s.tag}, not bound`);
    }
  }

  /**
   * The peer's address.
   *
   * @returns The remote address.
   * @throws {NetworkError} `invalid-state` unless connected.
   */
  remoteAddress(): IpSocketAddress {
    const s = this.#state;
    if (s.tag !== "connected") {
      throw new NetworkError("invalid-state", "The socket is not connected");
    }
    return fromHostAddress(s.connection.remoteAddress);
  }

  /**
   * Whether the socket is listening.
   *
   * @returns `true` in the listening state only.
   */
  isListening(): boolean {
    return this.#state.tag === "listening";
  }

  /**
   * The socket's address family.
   *
   * @returns `"ipv4"` or `"ipv6"`.
   */
  addressFamily(): IpAddressFamily {
    return this.#family;
  }

  /**
   * Sets the listen backlog. While listening this bounds the queue the core
   * holds; the kernel's backlog stays as it was set at listen time.
   *
   * @param value Connections; clamped to [1, 2^31 - 1].
   * @throws {NetworkError} `invalid-argument` for 0, `invalid-state` while
   * connecting or connected.
   * @throws {TypeError} When `value` is not a u64 bigint.
   */
  setListenBacklogSize(value: bigint): void {
    const t = this.#state.tag;
    if (t === "connect-in-progress" || t === "connected" || t === "closed") {
      throw new NetworkError("invalid-state", `Cannot set the backlog of a socket that is ${t}`);
    }
    this.#backlog = Number(clampSize(value, "backlog size"));
  }

  #checkOptionState(): void {
    const t = this.#state.tag;
    if (t === "connect-in-progress" || t === "closed") {
      throw new NetworkError("invalid-state", `Socket options are unavailable while ${t}`);
    }
  }

  #get<K extends TcpOptionName>(name: K): TcpOptions[K] {
    this.#checkOptionState();
    return this.#options[name];
  }

  #set<K extends TcpOptionName>(name: K, value: TcpOptions[K]): void {
    this.#options[name] = value;
    (this.#changed ??= new Set()).add(name);
    const s = this.#state;
    if (s.tag === "connected") s.connection.setOption(name, value);
    else if (s.tag === "listening") s.listener.setOption(name, value);
  }

  /**
   * Whether SO_KEEPALIVE is on.
   *
   * @returns The setting.
   * @throws {NetworkError} `invalid-state` while connecting or closed.
   */
  keepAliveEnabled(): boolean {
    return this.#get("keepAliveEnabled");
  }

  /**
   * Turns SO_KEEPALIVE on or off.
   *
   * @param value The setting.
   * @throws {NetworkError} `invalid-state` while connecting or closed.
   * @throws {TypeError} When `value` is not a boolean.
   */
  setKeepAliveEnabled(value: boolean): void {
    this.#checkOptionState();
    this.#set("keepAliveEnabled", checkBool(value, "value"));
  }

  /**
   * The keep-alive idle time.
   *
   * @returns Nanoseconds.
   * @throws {NetworkError} `invalid-state` while connecting or closed.
   */
  keepAliveIdleTime(): bigint {
    return this.#get("keepAliveIdleTime");
  }

  /**
   * Sets the keep-alive idle time.
   *
   * @param value Nanoseconds; rounded up to whole seconds in [1 s, 32767 s].
   * @throws {NetworkError} `invalid-argument` for 0, `invalid-state` while
   * connecting or closed.
   * @throws {TypeError} When `value` is not a u64 bigint.
   */
  setKeepAliveIdleTime(value: bigint): void {
    this.#checkOptionState();
    this.#set("keepAliveIdleTime", clampKeepAliveTime(value, "keep-alive idle time"));
  }

  /**
   * The keep-alive probe interval.
   *
   * @returns Nanoseconds.
   * @throws {NetworkError} `invalid-state` while connecting or closed.
   */
  keepAliveInterval(): bigint {
    return this.#get("keepAliveInterval");
  }

  /**
   * Sets the keep-alive probe interval.
   *
   * @param value Nanoseconds; rounded up to whole seconds in [1 s, 32767 s].
   * @throws {NetworkError} `invalid-argument` for 0, `invalid-state` while
   * connecting or closed.
   * @throws {TypeError} When `value` is not a u64 bigint.
   */
  setKeepAliveInterval(value: bigint): void {
    this.#checkOptionState();
    this.#set("keepAliveInterval", clampKeepAliveTime(value, "keep-alive interval"));
  }

  /**
   * The number of unanswered keep-alive probes before the connection drops.
   *
   * @returns The count.
   * @throws {NetworkError} `invalid-state` while connecting or closed.
   */
  keepAliveCount(): number {
    return this.#get("keepAliveCount");
  }

  /**
   * Sets the keep-alive probe count.
   *
   * @param value A u32; clamped to [1, 127].
   * @throws {NetworkError} `invalid-argument` for 0, `invalid-state` while
   * connecting or closed.
   * @throws {TypeError} When `value` is not a u32.
   */
  setKeepAliveCount(value: number): void {
    this.#checkOptionState();
    this.#set("keepAliveCount", clampKeepAliveCount(value));
  }

  /**
   * The unicast hop limit (IP_TTL / IPV6_UNICAST_HOPS).
   *
   * @returns The hop limit.
   * @throws {NetworkError} `invalid-state` while connecting or closed.
   */
  hopLimit(): number {
    return this.#get("hopLimit");
  }

  /**
   * Sets the unicast hop limit.
   *
   * @param value 1 to 255.
   * @throws {NetworkError} `invalid-argument` for 0, `invalid-state` while
   * connecting or closed.
   * @throws {TypeError} When `value` is not a u8.
   */
  setHopLimit(value: number): void {
    this.#checkOptionState();
    this.#set("hopLimit", clampHopLimit(value));
  }

  /**
   * The receive buffer size (SO_RCVBUF).
   *
   * @returns Bytes.
   * @throws {NetworkError} `invalid-state` while connecting or closed.
   */
  receiveBufferSize(): bigint {
    return this.#get("receiveBufferSize");
  }

  /**
   * Sets the receive buffer size.
   *
   * @param value Bytes; clamped to [1, 2^31 - 1].
   * @throws {NetworkError} `invalid-argument` for 0, `invalid-state` while
   * connecting or closed.
   * @throws {TypeError} When `value` is not a u64 bigint.
   */
  setReceiveBufferSize(value: bigint): void {
    this.#checkOptionState();
    this.#set("receiveBufferSize", clampSize(value, "receive buffer size"));
  }

  /**
   * The send buffer size (SO_SNDBUF).
   *
   * @returns Bytes.
   * @throws {NetworkError} `invalid-state` while connecting or closed.
   */
  sendBufferSize(): bigint {
    return this.#get("sendBufferSize");
  }

  /**
   * Sets the send buffer size.
   *
   * @param value Bytes; clamped to [1, 2^31 - 1].
   * @throws {NetworkError} `invalid-argument` for 0, `invalid-state` while
   * connecting or closed.
   * @throws {TypeError} When `value` is not a u64 bigint.
   */
  setSendBufferSize(value: bigint): void {
    this.#checkOptionState();
    this.#set("sendBufferSize", clampSize(value, "send buffer size"));
  }

  /**
   * A pollable for the socket: ready at once when idle, connected or closed;
   * when the operation has resolved in the *-in-progress states; when a
   * connection, or a failure to take one, is pending while listening.
   *
   * @returns A new pollable.
   */
  subscribe(): Pollable {
    return new Pollable({ ready: () => this.#ready(), notifier: this.#notifier });
  }

  #ready(): boolean {
    const s = this.#state;
    switch (s.tag) {
      case "bind-in-progress":
      case "listen-in-progress":
      case "connect-in-progress":
        return s.pending.done;
      case "listening":
        if (s.queue.length > 0 || s.failure) return true;
        // Whoever asks is about to accept or to wait for a connection.
        s.listener.demand?.();
        return false;
      default:
        return true;
    }
  }

  /**
   * Shuts down one or both directions. The state does not change.
   *
   * @param shutdownType `receive`, `send` or `both`.
   * @throws {NetworkError} `invalid-state` unless connected.
   * @throws {TypeError} For an unknown shutdown type.
   */
  shutdown(shutdownType: ShutdownType): void {
    const s = this.#state;
    if (s.tag !== "connected") {
      throw new NetworkError("invalid-state", "The socket is not connected");
    }
    if (shutdownType !== "receive" && shutdownType !== "send" && shutdownType !== "both") {
      throw new TypeError('Expected shutdownType to be "receive", "send" or "both"');
    }
    if (shutdownType !== "send") s.streams.shutdownReceive();
    if (shutdownType !== "receive") s.streams.shutdownSend();
  }

  /**
   * Drops the socket: releases every OS resource at once (a connect in
   * progress is given up through `ConnectRequest.signal`, where the backend
   * can).
   */
  [Symbol.dispose](): void {
    if (this.#dropped) return;
    this.#dropped = true;
    forgetRep(this);
    const s = this.#state;
    switch (s.tag) {
      case "bind-in-progress":
        if (s.pending.done && s.pending.ok) s.pending.value.close();
        break;
      case "bound":
        s.binding.close();
        break;
      case "listen-in-progress":
        if (s.pending.done && s.pending.ok) s.pending.value.close();
        else s.binding.close();
        for (const c of s.queue) c.close();
        break;
      case "listening":
        s.listener.close();
        for (const c of s.queue) c.close();
        break;
      case "connect-in-progress":
        if (s.pending.done && s.pending.ok) s.pending.value.close();
        else {
          s.abort.abort();
          // Bindings are idempotent to close; the backend may own this one now.
          s.binding?.close();
        }
        break;
      case "connected":
        s.streams.release();
        s.connection.close();
        break;
    }
    this.#state = { tag: "closed" };
    this.#notifier.notify();
  }
}
