/**
 * The backend interface: the small set of operations the core asks of a
 * runtime (bind, listen, connect, write, shut down, close) and the events a
 * runtime reports back (accepted connections, data, end of stream, drain,
 * errors). The core owns every WASI rule; a backend only moves bytes and
 * turns its runtime's errors into {@link NetworkError}s.
 *
 * Conventions every backend follows:
 * - Failures are thrown (or rejected) as `NetworkError` with a WIT error code.
 * - Addresses are {@link HostAddress} values with textual IPs, never hostnames.
 * - No event is delivered before {@link BackendConnection.start} is called, and
 *   none after {@link BackendConnection.close}.
 *
 * @module
 */

import type { NetworkError } from "./errors.ts";

/**
 * An IP address family.
 *
 * @example
 * ```ts
 * import type { IpFamily } from "./backend.ts";
 * const family: IpFamily = "ipv6";
 * ```
 */
export type IpFamily = "ipv4" | "ipv6";

/**
 * A socket address as backends see it: a textual IP (`"127.0.0.1"`, `"::1"`)
 * and a port. IPv6 addresses carry no brackets.
 *
 * @example
 * ```ts
 * import type { HostAddress } from "./backend.ts";
 * const addr: HostAddress = { family: "ipv4", address: "127.0.0.1", port: 8080 };
 * ```
 */
export interface HostAddress {
  /** The address family of `address`. */
  family: IpFamily;
  /** The IP in text form. */
  address: string;
  /** The port, 0 to 65535. */
  port: number;
  /** IPv6 flow info, where the runtime keeps it. */
  flowInfo?: number;
  /** IPv6 scope id, where the runtime keeps it. */
  scopeId?: number;
}

/**
 * The socket options of `wasi:sockets/tcp`, already validated and clamped by
 * the core. Durations are nanoseconds.
 *
 * @example
 * ```ts
 * import type { TcpOptions } from "./backend.ts";
 * function keepAliveSeconds(o: TcpOptions): number {
 *   return o.keepAliveEnabled ? Number(o.keepAliveIdleTime / 1_000_000_000n) : 0;
 * }
 * ```
 */
export interface TcpOptions {
  /** SO_KEEPALIVE. */
  keepAliveEnabled: boolean;
  /** TCP_KEEPIDLE, in nanoseconds. */
  keepAliveIdleTime: bigint;
  /** TCP_KEEPINTVL, in nanoseconds. */
  keepAliveInterval: bigint;
  /** TCP_KEEPCNT. */
  keepAliveCount: number;
  /** IP_TTL or IPV6_UNICAST_HOPS. */
  hopLimit: number;
  /** SO_RCVBUF, in bytes. */
  receiveBufferSize: bigint;
  /** SO_SNDBUF, in bytes. */
  sendBufferSize: bigint;
}

/**
 * The name of one socket option.
 *
 * @example
 * ```ts
 * import type { TcpOptionName } from "./backend.ts";
 * const name: TcpOptionName = "hopLimit";
 * ```
 */
export type TcpOptionName = keyof TcpOptions;

/**
 * Receives the events of one connection.
 *
 * @example
 * ```ts
 * import type { ConnectionSink } from "./backend.ts";
 * const chunks: Uint8Array[] = [];
 * const sink: ConnectionSink = {
 *   data: (chunk) => { chunks.push(chunk); },
 *   end: () => {}, drain: () => {}, error: (e) => console.error(e.payload),
 * };
 * ```
 */
export interface ConnectionSink {
  /**
   * Bytes arrived. The backend hands over ownership of `chunk`: it must not
   * reuse the memory afterwards.
   */
  data(chunk: Uint8Array): void;
  /** The peer sent FIN; no more data will come. */
  end(): void;
  /** Everything queued by {@link BackendConnection.write} has been handed to the OS. */
  drain(): void;
  /** The connection failed; no more events follow. */
  error(error: NetworkError): void;
}

/**
 * An established TCP connection, connected or accepted.
 *
 * @example
 * ```ts
 * import type { BackendConnection } from "./backend.ts";
 * function describe(c: BackendConnection): string {
 *   return `${c.localAddress.address} -> ${c.remoteAddress.address}`;
 * }
 * ```
 */
export interface BackendConnection {
  /** The local end, as the OS reports it. */
  readonly localAddress: HostAddress;
  /** The remote end, as the OS reports it. */
  readonly remoteAddress: HostAddress;
  /** Starts delivering events to `sink`. Data flows until {@link pause}. */
  start(sink: ConnectionSink): void;
  /**
   * Queues `chunk` for sending. The backend takes ownership of it.
   *
   * @returns `true` when more may be written at once, `false` when the caller
   * should wait for {@link ConnectionSink.drain}.
   */
  write(chunk: Uint8Array): boolean;
  /**
   * Like {@link write}, but `chunk` is only lent for the call (a view of guest
   * memory, say): the backend hands what it can to the OS at once and copies
   * the rest. A backend that has it lets the core's output streams take
   * views instead of copies (see COPIES_LIST_ARGUMENTS), unless it sets
   * {@link borrowedWritesCopy}.
   *
   * @returns As {@link write}.
   */
  writeBorrowed?(chunk: Uint8Array): boolean;
  /**
   * Set when {@link writeBorrowed} copies every byte while {@link write} takes
   * a chunk as it is (Deno's `conn.write` and node:net's `socket.write` keep
   * their buffer until the write settles). The core then uses `writeBorrowed`
   * only for bytes it is lent, and hands over with `write` what its caller
   * gives away.
   */
  readonly borrowedWritesCopy?: boolean;
  /**
   * Asks whether every byte written so far has been handed to the OS: what a
   * guest's flush waits for.
   *
   * @returns `true` if so; `false` otherwise, and {@link ConnectionSink.drain}
   * follows once it has. A backend without it is taken to be flushed
   * whenever {@link write} last answered `true`.
   */
  flush?(): boolean;
  /** Stops reading from the OS, so that the kernel's window applies backpressure. */
  pause(): void;
  /** Resumes reading after {@link pause}. */
  resume(): void;
  /**
   * Shuts down one direction. `send` sends FIN once every queued byte has gone
   * out; `receive` stops delivering data where the OS allows it.
   */
  shutdown(direction: "send" | "receive"): void;
  /**
   * Applies one option to the OS socket.
   *
   * @returns `true` when the OS socket now has the value, `false` when the
   * runtime cannot set it (the core then only stores it).
   */
  setOption<K extends TcpOptionName>(name: K, value: TcpOptions[K]): boolean;
  /** Releases the OS socket at once. Idempotent. */
  close(): void;
  /**
   * Gives back the memory of a chunk delivered by {@link ConnectionSink.data}
   * (identified by `chunk.buffer`) once nobody reads it any more, so that the
   * backend may read into it again. The core calls it only when the host opted
   * in with `lendReadBuffers`; a backend without it allocates per read.
   */
  recycle?(chunk: Uint8Array): void;
}

/**
 * What the core asks for when listening.
 *
 * @example
 * ```ts
 * import type { ListenRequest } from "./backend.ts";
 * function describe(r: ListenRequest): string {
 *   return `backlog ${r.backlog}, ${r.changed.size} options set`;
 * }
 * ```
 */
export interface ListenRequest {
  /** The clamped backlog, at least 1. */
  backlog: number;
  /** The listener's options, to apply to the listening socket where possible. */
  options: TcpOptions;
  /** Only the options the guest set explicitly; a backend may skip the others. */
  changed: ReadonlySet<TcpOptionName>;
  /** Called with each accepted connection; the core starts it. */
  onConnection(connection: BackendConnection): void;
  /**
   * Called when taking a connection fails after the listener started (for
   * example `new-socket-limit`). The next `accept` reports the error; a
   * pulling listener is asked again with `demand()` after that.
   */
  onError(error: NetworkError): void;
}

/**
 * A listening socket.
 *
 * @example
 * ```ts
 * import type { BackendListener } from "./backend.ts";
 * function portOf(l: BackendListener): number {
 *   return l.localAddress.port;
 * }
 * ```
 */
export interface BackendListener {
  /** The address the listener is bound to. */
  readonly localAddress: HostAddress;
  /**
   * Stops taking connections from the kernel's accept queue (which then fills
   * up to the backlog). Backends with push-based accept may ignore it; the core
   * bounds its own queue either way.
   */
  pause(): void;
  /** Resumes after {@link pause}. */
  resume(): void;
  /**
   * Tells the backend that the guest wants a connection and none is queued:
   * it called accept, or it polls the listener. A backend that pulls
   * connections (Deno's `accept()`) may take one from the kernel only then,
   * as wasmtime does; until then they wait in the kernel's queue, up to the
   * backlog. Backends that are handed connections leave it out.
   */
  demand?(): void;
  /**
   * Applies one option to the listening socket, as {@link BackendConnection.setOption}.
   */
  setOption<K extends TcpOptionName>(name: K, value: TcpOptions[K]): boolean;
  /** Stops listening and releases the socket. Idempotent. */
  close(): void;
}

/**
 * A socket bound to a local address but not listening: a peer connecting to it
 * must be refused.
 *
 * @example
 * ```ts
 * import type { BackendBinding } from "./backend.ts";
 * function portOf(b: BackendBinding): number {
 *   return b.localAddress.port;
 * }
 * ```
 */
export interface BackendBinding {
  /** The bound address, with the port resolved when 0 was asked for. */
  readonly localAddress: HostAddress;
  /**
   * Starts listening on the bound address. When it fails, the core closes
   * the binding: the socket is then closed, as in wasmtime.
   */
  listen(request: ListenRequest): BackendListener | Promise<BackendListener>;
  /** Releases the address. Idempotent. */
  close(): void;
}

/**
 * What the core asks for when binding.
 *
 * @example
 * ```ts
 * import type { BindRequest } from "./backend.ts";
 * const request: BindRequest = {
 *   local: { family: "ipv6", address: "::1", port: 0 },
 *   ipv6Only: true,
 * };
 * ```
 */
export interface BindRequest {
  /** The local address; port 0 asks the OS for one. */
  local: HostAddress;
  /** Whether an IPv6 socket refuses IPv4 traffic. Always true for the core. */
  ipv6Only: boolean;
}

/**
 * What the core asks for when connecting.
 *
 * @example
 * ```ts
 * import type { ConnectRequest } from "./backend.ts";
 * function target(r: ConnectRequest): string {
 *   return `${r.remote.address}:${r.remote.port}`;
 * }
 * ```
 */
export interface ConnectRequest {
  /** The peer. */
  remote: HostAddress;
  /** The socket's binding, when start-bind came first; the backend owns it from now on. */
  binding?: BackendBinding;
  /** The socket's options, to apply to the new connection where possible. */
  options: TcpOptions;
  /** Only the options the guest set explicitly; a backend may skip the others. */
  changed: ReadonlySet<TcpOptionName>;
  /**
   * Aborted when the guest drops the socket before the connect finished: the
   * backend should give up the attempt and its descriptor at once (a connect
   * to a silent host retries for minutes). The promise may then reject; a
   * connection it still yields, the core closes.
   */
  signal?: ConnectSignal;
}

/**
 * The part of an `AbortSignal` a backend uses (declared here, so that the
 * package's types need neither the DOM's nor Node's).
 *
 * @example
 * ```ts
 * import type { ConnectSignal } from "./backend.ts";
 * const signal: ConnectSignal = new AbortController().signal;
 * console.log(signal.aborted); // false
 * ```
 */
export interface ConnectSignal {
  /** Whether the attempt was given up already. */
  readonly aborted: boolean;
  /** Calls `listener` once the attempt is given up. */
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  /** Stops calling `listener`. */
  removeEventListener(type: "abort", listener: () => void): void;
}

/**
 * A runtime's TCP implementation, driven by the core.
 *
 * @example
 * ```ts
 * import type { TcpBackend } from "./backend.ts";
 * function describe(backend: TcpBackend): string {
 *   return `${backend.name}: ${[...backend.realOptions].join(", ")}`;
 * }
 * ```
 */
export interface TcpBackend {
  /** A short name for messages and tests: "node", "deno", "bun", "memory". */
  readonly name: string;
  /** The options this backend applies to real sockets; the rest are stored only. */
  readonly realOptions: ReadonlySet<TcpOptionName>;
  /**
   * Binds without listening. Synchronous where the runtime allows, so that
   * finish-bind can answer at once.
   */
  bind(request: BindRequest): BackendBinding | Promise<BackendBinding>;
  /** Connects. Rejects with a NetworkError such as `connection-refused`. */
  connect(request: ConnectRequest): Promise<BackendConnection>;
  /**
   * Schedules `callback` after the runtime has polled for I/O, if the runtime
   * has something cheaper than `setTimeout(0)` for it (Node's setImmediate).
   * Busy-polling guests rely on it to let I/O progress.
   */
  macrotask?(callback: () => void): void;
}
