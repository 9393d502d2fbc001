/**
 * A deterministic, in-memory virtual TCP network. Its {@link MemoryNetwork.backend}
 * implements {@link TcpBackend}, so the whole WASI state machine (and any host
 * built on it) runs without touching the OS: no ports are taken, nothing is
 * flaky, and faults (refused connects, resets, slow connects, partial writes)
 * can be injected on demand.
 *
 * The model, in short:
 * - Addresses: `0.0.0.0`, `::` and the configured local addresses can be bound;
 *   IPv6 bindings are always v6-only (`ipv6Only: false` is not modelled).
 *   Ephemeral ports count up from 49152, skipping ports in use.
 * - A port is taken while a binding, a listener or a connection that
 *   originated from it (the client end) holds it. Accepted connections share
 *   their listener's port and hold nothing, so a listener's port can be bound
 *   again once the listener is closed (SO_REUSEADDR behaviour). Nothing lingers
 *   in TIME_WAIT.
 * - Connects complete on a later macrotask (or after {@link MemoryNetwork.setConnectDelay});
 *   connecting to something that is not listening is `connection-refused`,
 *   whatever the address.
 * - Each direction of a connection is a queue. Bytes count as in flight from
 *   write() until the peer's sink receives them; past the window, write()
 *   returns false and `drain` follows once the queue is empty. A paused or
 *   not yet started reader receives nothing, which backs up the writer.
 * - Every event reaches a sink on a later microtask, never inside the call
 *   that caused it.
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
  IpFamily,
  ListenRequest,
  TcpBackend,
  TcpOptionName,
  TcpOptions,
} from "./backend.ts";
import { defaultOptions } from "./_options.ts";
import { type ErrorCode, NetworkError } from "./errors.ts";
import { formatIpv6, parseIpv4, parseIpv6 } from "./ip_socket_address.ts";

/**
 * Options of a {@link MemoryNetwork}.
 *
 * @example
 * ```ts
 * import { MemoryNetwork, type MemoryNetworkOptions } from "./memory_network.ts";
 * const options: MemoryNetworkOptions = { localAddresses: ["127.0.0.1", "192.168.1.5"], windowSize: 4096 };
 * const net = new MemoryNetwork(options);
 * ```
 */
export interface MemoryNetworkOptions {
  /**
   * Addresses that can be bound besides 0.0.0.0 and ::, in any textual form.
   * Default ["127.0.0.1", "::1"].
   */
  localAddresses?: string[];
  /**
   * Bytes in flight per direction (written but not yet taken by the paused/slow
   * reader) before write() returns false. Default 65536; 0 makes every
   * non-empty write wait for its drain.
   */
  windowSize?: number;
}

/**
 * Which connects a {@link MemoryNetwork.failConnect} fault applies to; a
 * missing field matches anything.
 *
 * @example
 * ```ts
 * import type { ConnectFaultMatch } from "./memory_network.ts";
 * const match: ConnectFaultMatch = { address: "::1", port: 443 };
 * ```
 */
export interface ConnectFaultMatch {
  /** The remote IP, in any textual form of its family. */
  address?: string;
  /** The remote port. */
  port?: number;
}

/**
 * Counts of open resources, from {@link MemoryNetwork.stats}.
 *
 * @example
 * ```ts
 * import { MemoryNetwork, type MemoryNetworkStats } from "./memory_network.ts";
 * const idle: MemoryNetworkStats = { connections: 0, bindings: 0, listeners: 0 };
 * console.log(JSON.stringify(new MemoryNetwork().stats) === JSON.stringify(idle)); // true
 * ```
 */
export interface MemoryNetworkStats {
  /** Connection ends not yet closed, including accepted ones still waiting in a listener's backlog. */
  connections: number;
  /** Bindings neither closed nor turned into a listener or a connection. */
  bindings: number;
  /** Listeners not yet closed. */
  listeners: number;
}

/**
 * A connection end of the memory network: a {@link BackendConnection} whose
 * options can be read back. start() a second time throws `invalid-state`;
 * write(), shutdown() and setOption() never throw for the connection's state
 * (after close, shutdown or a reset, written bytes are dropped and write()
 * returns true).
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "./memory_network.ts";
 * import { defaultOptions } from "./_options.ts";
 * const OPTIONS = defaultOptions();
 * const net = new MemoryNetwork();
 * const binding = net.backend.bind({ local: { family: "ipv4", address: "127.0.0.1", port: 0 }, ipv6Only: true });
 * const listener = binding.listen({
 *   backlog: 8, options: OPTIONS, changed: new Set(), onConnection: (c) => c.close(), onError() {},
 * });
 * const conn = await net.backend.connect({ remote: listener.localAddress, options: OPTIONS, changed: new Set() });
 * console.log(conn.getOption("hopLimit"));
 * conn.close();
 * listener.close();
 * ```
 */
export interface MemoryConnection extends BackendConnection {
  /**
   * Reads back an option: the connect request's (or, for an accepted end, the
   * listener's) value, or the last one given to setOption.
   *
   * @param name The option.
   * @returns Its current value.
   * @throws {TypeError} For a name that is not a TCP option.
   */
  getOption<K extends TcpOptionName>(name: K): TcpOptions[K];
}

/**
 * A listener of the memory network: a {@link BackendListener} whose options
 * and backlog can be read back. While paused it keeps up to `backlog`
 * connections; connects beyond that are refused.
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "./memory_network.ts";
 * import { defaultOptions } from "./_options.ts";
 * const OPTIONS = defaultOptions();
 * const net = new MemoryNetwork();
 * const listener = net.backend
 *   .bind({ local: { family: "ipv6", address: "::1", port: 8080 }, ipv6Only: true })
 *   .listen({ backlog: 4, options: OPTIONS, changed: new Set(), onConnection() {}, onError() {} });
 * console.log(listener.backlog, listener.getOption("keepAliveEnabled"));
 * listener.close();
 * ```
 */
export interface MemoryListener extends BackendListener {
  /** The backlog the listen request asked for. */
  readonly backlog: number;
  /**
   * Reads back an option: the listen request's value, or the last one given
   * to setOption. Accepted connections start with these values.
   *
   * @param name The option.
   * @returns Its current value.
   * @throws {TypeError} For a name that is not a TCP option.
   */
  getOption<K extends TcpOptionName>(name: K): TcpOptions[K];
}

/**
 * A binding of the memory network. listen() and connect() take it over: its
 * close() does nothing afterwards (close the listener or connection instead).
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "./memory_network.ts";
 * const net = new MemoryNetwork();
 * const binding = net.backend.bind({ local: { family: "ipv4", address: "0.0.0.0", port: 0 }, ipv6Only: true });
 * console.log(binding.localAddress.port); // 49152
 * binding.close();
 * ```
 */
export interface MemoryBinding extends BackendBinding {
  /**
   * Starts listening, synchronously.
   *
   * @param request The backlog, options and callbacks.
   * @returns The listener, which owns the address from now on.
   * @throws {NetworkError} `invalid-state` when the binding is closed or
   * already taken over.
   * @throws {TypeError} For a malformed request or a backlog below 1.
   */
  listen(request: ListenRequest): MemoryListener;
}

/**
 * The {@link TcpBackend} of a {@link MemoryNetwork}, with narrower types:
 * bind() is synchronous and the objects it hands out can be inspected.
 *
 * @example
 * ```ts
 * import { MemoryNetwork, type MemoryBackend } from "./memory_network.ts";
 * const backend: MemoryBackend = new MemoryNetwork().backend;
 * console.log(backend.name); // "memory"
 * ```
 */
export interface MemoryBackend extends TcpBackend {
  /**
   * Binds synchronously.
   *
   * @param request The local address; port 0 picks an ephemeral port.
   * @returns The binding.
   * @throws {NetworkError} `address-not-bindable` for an address that is
   * neither unspecified nor local, `address-in-use` for a taken one (or when
   * no ephemeral port is left), `invalid-argument` when the address does not
   * match its family.
   * @throws {TypeError} For a malformed request.
   */
  bind(request: BindRequest): MemoryBinding;
  /**
   * Connects, completing on a later macrotask (or after the connect delay).
   *
   * @param request The remote address, an optional binding to originate from
   * (taken over), and the options.
   * @returns The client end; the listener gets the other end.
   * @throws {NetworkError} (as a rejection) `connection-refused` when nothing
   * listens or the backlog is full, an injected fault's code,
   * `invalid-state` for a closed binding, `address-in-use` when no ephemeral
   * port is left.
   */
  connect(request: ConnectRequest): Promise<MemoryConnection>;
}

const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_COUNT = 65536 - EPHEMERAL_FIRST;
const DEFAULT_WINDOW = 65536;
const OPTION_NAMES: ReadonlySet<TcpOptionName> = new Set<TcpOptionName>([
  "keepAliveEnabled",
  "keepAliveIdleTime",
  "keepAliveInterval",
  "keepAliveCount",
  "hopLimit",
  "receiveBufferSize",
  "sendBufferSize",
]);
const EMPTY = new Uint8Array(0);
// A Record, so that the compiler notices when ErrorCode grows.
const ERROR_CODES: Readonly<Record<ErrorCode, true>> = {
  "unknown": true,
  "access-denied": true,
  "not-supported": true,
  "invalid-argument": true,
  "out-of-memory": true,
  "timeout": true,
  "concurrency-conflict": true,
  "not-in-progress": true,
  "would-block": true,
  "invalid-state": true,
  "new-socket-limit": true,
  "address-not-bindable": true,
  "address-in-use": true,
  "remote-unreachable": true,
  "connection-refused": true,
  "connection-reset": true,
  "connection-aborted": true,
  "datagram-too-large": true,
  "name-unresolvable": true,
  "temporary-resolver-failure": true,
  "permanent-resolver-failure": true,
};

type Timer = ReturnType<typeof setTimeout>;

// A sink that throws is the caller's bug; it must surface, but it must not
// unwind through the network's bookkeeping (or into a writer's call stack).
function rethrowLater(e: unknown): void {
  queueMicrotask(() => {
    throw e;
  });
}

function canonical(family: IpFamily, text: string): string | undefined {
  if (family === "ipv4") {
    const a = parseIpv4(text);
    return a && a.join(".");
  }
  const a = parseIpv6(text);
  return a && formatIpv6(a);
}

function familyOf(text: string): IpFamily {
  return text.includes(":") ? "ipv6" : "ipv4";
}

function isUnspecified(address: string): boolean {
  return address === "0.0.0.0" || address === "::";
}

function loopback(family: IpFamily): string {
  return family === "ipv4" ? "127.0.0.1" : "::1";
}

function hostAddress(family: IpFamily, address: string, port: number): HostAddress {
  return Object.freeze(
    family === "ipv4" ? { family, address, port } : { family, address, port, flowInfo: 0, scopeId: 0 },
  );
}

function show(a: HostAddress): string {
  return a.family === "ipv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

function isPort(port: unknown): port is number {
  return typeof port === "number" && Number.isInteger(port) && port >= 0 && port <= 65535;
}

// Canonical form of a HostAddress from a request, or a thrown error.
function checkHost(value: unknown, what: string): HostAddress {
  const v = value as HostAddress | undefined;
  if (typeof v !== "object" || v === null || typeof v.address !== "string") {
    throw new TypeError(`Expected ${what} to be a HostAddress`);
  }
  if (v.family !== "ipv4" && v.family !== "ipv6") {
    throw new TypeError(`Expected ${what}.family to be "ipv4" or "ipv6"`);
  }
  if (!isPort(v.port)) throw new TypeError(`Expected ${what}.port to be an integer from 0 to 65535`);
  const address = canonical(v.family, v.address);
  if (address === undefined) {
    throw new NetworkError(
      "invalid-argument",
      `${v.address} is not an ${v.family === "ipv4" ? "IPv4" : "IPv6"} address`,
    );
  }
  return hostAddress(v.family, address, v.port);
}

function checkOptionName(name: unknown): asserts name is TcpOptionName {
  if (!OPTION_NAMES.has(name as TcpOptionName)) {
    throw new TypeError(`Unknown TCP option ${String(name)}`);
  }
}

// One (family, address, port) a binding, listener or client end holds.
class Reservation {
  owner: unknown;
  constructor(
    readonly family: IpFamily,
    readonly address: string,
    readonly port: number,
    owner: unknown,
  ) {
    this.owner = owner;
  }
}

interface Fault {
  code: ErrorCode;
  family?: IpFamily;
  address?: string;
  port?: number;
}

// The shared state behind one MemoryNetwork.
class World {
  readonly local: Set<string>;
  readonly window: number;
  readonly ports = new Map<string, Reservation[]>();
  readonly ends = new Set<End>();
  readonly bindings = new Set<Binding>();
  readonly listeners = new Set<Listener>();
  faults: Fault[] = [];
  connectDelay = 0;
  maxWriteChunk: number | undefined;
  #cursor = 0;

  constructor(local: Set<string>, window: number) {
    this.local = local;
    this.window = window;
  }

  isLocal(address: string): boolean {
    return this.local.has(address);
  }

  // The reservation whose address covers `address` on this port, if any.
  covering(family: IpFamily, address: string, port: number): Reservation | undefined {
    const list = this.ports.get(`${family} ${port}`);
    if (!list) return undefined;
    for (const r of list) {
      if (r.address === address || isUnspecified(r.address)) return r;
    }
    return undefined;
  }

  conflicts(family: IpFamily, address: string, port: number): boolean {
    const list = this.ports.get(`${family} ${port}`);
    if (!list) return false;
    if (isUnspecified(address)) return list.length > 0;
    for (const r of list) {
      if (r.address === address || isUnspecified(r.address)) return true;
    }
    return false;
  }

  ephemeral(family: IpFamily, address: string): number {
    for (let i = 0; i < EPHEMERAL_COUNT; i++) {
      const n = (this.#cursor + i) % EPHEMERAL_COUNT;
      if (!this.conflicts(family, address, EPHEMERAL_FIRST + n)) {
        // Count on from here rather than reusing the lowest free port, so a
        // port that was just released is not handed out again at once.
        this.#cursor = (n + 1) % EPHEMERAL_COUNT;
        return EPHEMERAL_FIRST + n;
      }
    }
    throw new NetworkError("address-in-use", `No ephemeral port is free on ${address}`);
  }

  reserve(family: IpFamily, address: string, port: number, owner: unknown): Reservation {
    const r = new Reservation(family, address, port, owner);
    const key = `${family} ${port}`;
    const list = this.ports.get(key);
    if (list) list.push(r);
    else this.ports.set(key, [r]);
    return r;
  }

  release(r: Reservation): void {
    const key = `${r.family} ${r.port}`;
    const list = this.ports.get(key);
    if (!list) return;
    const i = list.indexOf(r);
    if (i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.ports.delete(key);
  }

  fault(remote: HostAddress): Fault | undefined {
    for (const f of this.faults) {
      if (f.port !== undefined && f.port !== remote.port) continue;
      if (f.address !== undefined && (f.family !== remote.family || f.address !== remote.address)) {
        continue;
      }
      return f;
    }
    return undefined;
  }

  bind(request: BindRequest): Binding {
    if (typeof request !== "object" || request === null) {
      throw new TypeError("Expected request to be a BindRequest");
    }
    const local = checkHost(request.local, "request.local");
    if (!isUnspecified(local.address) && !this.isLocal(local.address)) {
      throw new NetworkError("address-not-bindable", `${local.address} is not a local address`);
    }
    let port = local.port;
    if (port === 0) {
      port = this.ephemeral(local.family, local.address);
    } else if (this.conflicts(local.family, local.address, port)) {
      throw new NetworkError("address-in-use", `${show(local)} is already in use`);
    }
    const binding = new Binding(this, hostAddress(local.family, local.address, port));
    this.bindings.add(binding);
    return binding;
  }

  connect(request: ConnectRequest): Promise<End> {
    return new Promise<End>((resolve, reject) => {
      let remote: HostAddress;
      let reservation: Reservation;
      let local: HostAddress;
      try {
        if (typeof request !== "object" || request === null) {
          throw new TypeError("Expected request to be a ConnectRequest");
        }
        remote = checkHost(request.remote, "request.remote");
        if (isUnspecified(remote.address) || remote.port === 0) {
          throw new NetworkError("invalid-argument", `Cannot connect to ${show(remote)}`);
        }
        const origin = this.isLocal(remote.address) ? remote.address : loopback(remote.family);
        const binding = request.binding;
        if (binding !== undefined) {
          if (!(binding instanceof Binding) || binding.world !== this) {
            throw new TypeError("Expected request.binding to come from this MemoryNetwork");
          }
          if (binding.localAddress.family !== remote.family) {
            throw new NetworkError("invalid-argument", "The binding and the remote address differ in family");
          }
          reservation = binding.take();
          local = hostAddress(
            remote.family,
            isUnspecified(reservation.address) ? origin : reservation.address,
            reservation.port,
          );
        } else {
          const port = this.ephemeral(remote.family, origin);
          reservation = this.reserve(remote.family, origin, port, undefined);
          local = hostAddress(remote.family, origin, port);
        }
      } catch (e) {
        reject(e);
        return;
      }
      const fault = this.fault(remote);
      const options = { ...defaultOptions(), ...request.options };
      const signal = request.signal;
      let timer: Timer | undefined;
      // Given up: the reservation is free at once, as an OS frees the
      // descriptor of an abandoned connect.
      const abandon = (): void => {
        clearTimeout(timer);
        this.release(reservation);
        reject(new NetworkError("connection-aborted", `The connect to ${show(remote)} was abandoned`));
      };
      if (signal?.aborted) {
        abandon();
        return;
      }
      signal?.addEventListener("abort", abandon, { once: true });
      timer = setTimeout(() => {
        signal?.removeEventListener("abort", abandon);
        if (fault) {
          this.release(reservation);
          reject(new NetworkError(fault.code, `Injected ${fault.code} for connects to ${show(remote)}`));
          return;
        }
        const target = this.covering(remote.family, remote.address, remote.port)?.owner;
        if (!(target instanceof Listener) || !this.isLocal(remote.address)) {
          this.release(reservation);
          reject(new NetworkError("connection-refused", `Nothing listens on ${show(remote)}`));
          return;
        }
        if (target.waiting.length >= target.backlog) {
          this.release(reservation);
          reject(
            new NetworkError("connection-refused", `The backlog of the listener on ${show(remote)} is full`),
          );
          return;
        }
        const client = new End(this, local, remote, options, reservation);
        const server = new End(this, remote, local, target.options(), undefined);
        reservation.owner = client;
        client.pair(server);
        target.offer(server);
        resolve(client);
      }, this.connectDelay);
    });
  }

  // Both ends get `connection-reset`; nothing else moves on this connection.
  resetPair(end: End, message: string): void {
    const peer = end.peer;
    end.outgoing.kill();
    end.incoming.kill();
    end.fail(new NetworkError("connection-reset", message));
    peer.fail(new NetworkError("connection-reset", message));
  }
}

// One direction of a connection: what `writer` wrote and `reader` has not yet
// received. Staged bytes wait for their turn under setMaxWriteChunk.
class Pipe {
  readonly writer: End;
  readonly reader: End;
  #queue: Uint8Array[] = [];
  #head = 0;
  #queued = 0;
  #staged: { bytes: Uint8Array; piece: number }[] = [];
  #stagedBytes = 0;
  #timer: Timer | undefined;
  #scheduled = false;
  #needDrain = false;
  #dead = false;
  fin = false;
  #finDelivered = false;

  constructor(writer: End, reader: End) {
    this.writer = writer;
    this.reader = reader;
  }

  write(chunk: Uint8Array): boolean {
    if (this.#dead || this.reader.dropping()) return true;
    const len = chunk.length;
    if (len > 0) {
      const piece = this.reader.world.maxWriteChunk;
      // Once something is staged, later writes queue behind it to keep order.
      if (piece !== undefined || this.#staged.length > 0) {
        this.#staged.push({ bytes: chunk, piece: piece ?? Infinity });
        this.#stagedBytes += len;
        this.#arm();
      } else {
        this.#queue.push(chunk);
        this.#queued += len;
        this.schedule();
      }
    }
    const ok = this.#stagedBytes === 0 && this.#queued <= this.reader.world.window;
    if (!ok) this.#needDrain = true;
    return ok;
  }

  // Flushed as a kernel would be: nothing staged, and no more in flight
  // than the reader's window takes.
  flush(): boolean {
    if (this.#dead || this.reader.dropping()) return true;
    const done = this.#stagedBytes === 0 && this.#queued <= this.reader.world.window;
    if (!done) this.#needDrain = true;
    return done;
  }

  shutdown(): void {
    if (this.fin) return;
    this.fin = true;
    this.schedule();
  }

  // The writer closed: what it wrote is handed over at once, then FIN.
  close(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    for (const s of this.#staged) {
      this.#queue.push(s.bytes);
      this.#queued += s.bytes.length;
    }
    this.#staged = [];
    this.#stagedBytes = 0;
    this.fin = true;
    this.schedule();
  }

  // The reader closed or shut down receiving: drop everything in flight.
  discard(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#queue = [];
    this.#head = 0;
    this.#queued = 0;
    this.#staged = [];
    this.#stagedBytes = 0;
  }

  kill(): void {
    this.#dead = true;
    this.discard();
  }

  schedule(): void {
    if (this.#scheduled || this.#dead) return;
    this.#scheduled = true;
    queueMicrotask(this.#flush);
  }

  #arm(): void {
    if (this.#timer === undefined && this.#staged.length > 0) {
      this.#timer = setTimeout(this.#tick, 0);
    }
  }

  // One piece per macrotask moves from the stage to the queue.
  #tick = (): void => {
    this.#timer = undefined;
    const first = this.#staged[0];
    if (!first) return;
    let piece = first.bytes;
    if (piece.length > first.piece) {
      first.bytes = piece.subarray(first.piece);
      piece = piece.subarray(0, first.piece);
    } else {
      this.#staged.shift();
    }
    this.#stagedBytes -= piece.length;
    this.#queue.push(piece);
    this.#queued += piece.length;
    this.schedule();
    this.#arm();
  };

  #flush = (): void => {
    this.#scheduled = false;
    if (this.#dead) return;
    const r = this.reader;
    if (r.dropping()) {
      this.discard();
    } else {
      // The sink may pause, shut down or close the reader, or write more, in
      // the middle of this loop: re-read the state on every turn.
      while (this.#head < this.#queue.length && r.canEmit()) {
        const chunk = this.#queue[this.#head];
        this.#queue[this.#head++] = EMPTY;
        this.#queued -= chunk.length;
        try {
          r.sink!.data(chunk);
        } catch (e) {
          rethrowLater(e);
        }
        if (this.#dead) return;
      }
      const q = this.#queue;
      if (this.#head === q.length) {
        q.length = 0;
        this.#head = 0;
      } else if (this.#head > 64) {
        q.splice(0, this.#head);
        this.#head = 0;
      }
    }
    if (
      this.fin && !this.#finDelivered && this.#queued === 0 && this.#stagedBytes === 0 &&
      r.canEmit()
    ) {
      this.#finDelivered = true;
      try {
        r.sink!.end();
      } catch (e) {
        rethrowLater(e);
      }
      if (this.#dead) return;
    }
    const w = this.writer;
    if (this.#needDrain && this.#queued === 0 && this.#stagedBytes === 0 && w.canDrain()) {
      this.#needDrain = false;
      try {
        w.sink!.drain();
      } catch (e) {
        rethrowLater(e);
      }
    }
  };
}

// One end of a connection.
class End implements MemoryConnection {
  readonly world: World;
  readonly localAddress: HostAddress;
  readonly remoteAddress: HostAddress;
  #options: TcpOptions;
  #reservation: Reservation | undefined;
  peer!: End;
  outgoing!: Pipe;
  incoming!: Pipe;
  sink: ConnectionSink | undefined;
  #paused = false;
  #closed = false;
  #receiveShut = false;
  #sendShut = false;
  #error: NetworkError | undefined;
  #errorScheduled = false;

  constructor(
    world: World,
    local: HostAddress,
    remote: HostAddress,
    options: TcpOptions,
    reservation: Reservation | undefined,
  ) {
    this.world = world;
    this.localAddress = local;
    this.remoteAddress = remote;
    this.#options = options;
    this.#reservation = reservation;
    world.ends.add(this);
  }

  pair(server: End): void {
    this.peer = server;
    server.peer = this;
    this.outgoing = server.incoming = new Pipe(this, server);
    this.incoming = server.outgoing = new Pipe(server, this);
  }

  get closed(): boolean {
    return this.#closed;
  }

  dropping(): boolean {
    return this.#closed || this.#receiveShut || this.#error !== undefined;
  }

  canEmit(): boolean {
    return this.sink !== undefined && !this.#paused && !this.#closed && this.#error === undefined;
  }

  canDrain(): boolean {
    return this.sink !== undefined && !this.#closed && this.#error === undefined;
  }

  start(sink: ConnectionSink): void {
    if (this.#closed) return;
    if (this.sink !== undefined) {
      throw new NetworkError("invalid-state", "The connection is already started");
    }
    if (typeof sink !== "object" || sink === null) {
      throw new TypeError("Expected sink to be a ConnectionSink");
    }
    this.sink = sink;
    if (this.#error) this.#scheduleError();
    this.incoming.schedule();
    this.outgoing.schedule();
  }

  write(chunk: Uint8Array): boolean {
    if (this.#closed || this.#sendShut || this.#error) return true;
    return this.outgoing.write(chunk);
  }

  flush(): boolean {
    if (this.#closed || this.#sendShut || this.#error) return true;
    return this.outgoing.flush();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.incoming.schedule();
  }

  shutdown(direction: "send" | "receive"): void {
    if (direction !== "send" && direction !== "receive") {
      throw new TypeError('Expected direction to be "send" or "receive"');
    }
    if (this.#closed || this.#error) return;
    if (direction === "send") {
      if (this.#sendShut) return;
      this.#sendShut = true;
      this.outgoing.shutdown();
    } else {
      if (this.#receiveShut) return;
      this.#receiveShut = true;
      this.incoming.discard();
      this.incoming.schedule();
    }
  }

  setOption<K extends TcpOptionName>(name: K, value: TcpOptions[K]): boolean {
    checkOptionName(name);
    this.#options[name] = value;
    return true;
  }

  getOption<K extends TcpOptionName>(name: K): TcpOptions[K] {
    checkOptionName(name);
    return this.#options[name];
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.world.ends.delete(this);
    if (this.#reservation) {
      this.world.release(this.#reservation);
      this.#reservation = undefined;
    }
    if (!this.peer) return;
    if (this.peer.#closed) {
      this.outgoing.kill();
      this.incoming.kill();
      return;
    }
    if (this.#error === undefined) this.outgoing.close();
    this.incoming.discard();
    // The peer may be waiting for a drain of what this end will never read.
    this.incoming.schedule();
  }

  fail(error: NetworkError): void {
    if (this.#closed || this.#error) return;
    this.#error = error;
    if (this.sink) this.#scheduleError();
  }

  #scheduleError(): void {
    if (this.#errorScheduled) return;
    this.#errorScheduled = true;
    queueMicrotask(() => {
      if (this.#closed) return;
      try {
        this.sink!.error(this.#error!);
      } catch (e) {
        rethrowLater(e);
      }
    });
  }
}

class Listener implements MemoryListener {
  readonly localAddress: HostAddress;
  readonly backlog: number;
  readonly waiting: End[] = [];
  #world: World;
  #reservation: Reservation;
  #onConnection: (connection: BackendConnection) => void;
  #options: TcpOptions;
  #paused = false;
  #closed = false;
  #scheduled = false;

  constructor(world: World, binding: Binding, reservation: Reservation, request: ListenRequest) {
    this.#world = world;
    this.localAddress = binding.localAddress;
    this.backlog = request.backlog;
    this.#reservation = reservation;
    this.#onConnection = request.onConnection;
    this.#options = { ...defaultOptions(), ...request.options };
    reservation.owner = this;
    world.listeners.add(this);
  }

  options(): TcpOptions {
    return { ...this.#options };
  }

  offer(end: End): void {
    this.waiting.push(end);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#paused || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(this.#handOver);
  }

  #handOver = (): void => {
    this.#scheduled = false;
    while (!this.#paused && !this.#closed && this.waiting.length > 0) {
      const end = this.waiting.shift()!;
      if (end.closed) continue;
      try {
        this.#onConnection(end);
      } catch (e) {
        rethrowLater(e);
      }
    }
  };

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#schedule();
  }

  setOption<K extends TcpOptionName>(name: K, value: TcpOptions[K]): boolean {
    checkOptionName(name);
    this.#options[name] = value;
    return true;
  }

  getOption<K extends TcpOptionName>(name: K): TcpOptions[K] {
    checkOptionName(name);
    return this.#options[name];
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#world.listeners.delete(this);
    this.#world.release(this.#reservation);
    // A kernel resets connections that were never accepted.
    for (const end of this.waiting.splice(0)) {
      this.#world.resetPair(end, "The listener closed before accepting the connection");
      end.close();
    }
  }
}

class Binding implements MemoryBinding {
  readonly world: World;
  readonly localAddress: HostAddress;
  #reservation: Reservation | undefined;
  #state: "bound" | "handed-over" | "closed" = "bound";

  constructor(world: World, local: HostAddress) {
    this.world = world;
    this.localAddress = local;
    this.#reservation = world.reserve(local.family, local.address, local.port, this);
  }

  // Hands the reservation to a listener or a connection.
  take(): Reservation {
    if (this.#state !== "bound") {
      throw new NetworkError(
        "invalid-state",
        this.#state === "closed" ? "The binding is closed" : "The binding is already in use",
      );
    }
    this.#state = "handed-over";
    this.world.bindings.delete(this);
    const r = this.#reservation!;
    this.#reservation = undefined;
    return r;
  }

  listen(request: ListenRequest): MemoryListener {
    if (typeof request !== "object" || request === null || typeof request.onConnection !== "function") {
      throw new TypeError("Expected request to be a ListenRequest");
    }
    const b = request.backlog;
    if (typeof b !== "number" || !Number.isInteger(b) || b < 1) {
      throw new TypeError("Expected request.backlog to be a positive integer");
    }
    return new Listener(this.world, this, this.take(), request);
  }

  close(): void {
    if (this.#state !== "bound") return;
    this.#state = "closed";
    this.world.bindings.delete(this);
    this.world.release(this.#reservation!);
    this.#reservation = undefined;
  }
}

/**
 * A deterministic in-memory TCP network for tests. Hand its {@link backend}
 * to the core (or drive the backend directly); inject faults with
 * {@link failConnect}, {@link setConnectDelay}, {@link setMaxWriteChunk} and
 * {@link reset}; check for leaks with {@link stats}.
 *
 * Simplifications worth knowing:
 * - close() ends the peer's stream gracefully (earlier data, then `end`), even
 *   with unread data, where a real TCP stack would send a reset.
 * - Bytes written towards an end that is closed or has shut down receiving
 *   are dropped silently; the writer gets no error.
 * - Connecting to an address that is not local, or to a port nothing listens
 *   on, is `connection-refused` (use {@link failConnect} for other outcomes).
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "./memory_network.ts";
 * import { createWasiSockets } from "./wasi_sockets.ts";
 * const net = new MemoryNetwork();
 * const sockets = createWasiSockets({ backend: net.backend });
 * net.failConnect("connection-refused", { port: 9 });
 * // ... run the guest, then:
 * console.log(net.stats); // { connections: 0, bindings: 0, listeners: 0 }
 * ```
 */
export class MemoryNetwork {
  #world: World;

  /** The {@link TcpBackend} named "memory"; every option is "real" (stored and readable). */
  readonly backend: MemoryBackend;

  /**
   * Creates an empty network.
   *
   * @param options Local addresses and the per-direction window.
   * @throws {TypeError} When a local address is not an IP address, or the
   * window is not a non-negative integer.
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_network.ts";
   * const net = new MemoryNetwork({ localAddresses: ["127.0.0.1", "10.0.0.2"], windowSize: 1024 });
   * ```
   */
  constructor(options: MemoryNetworkOptions = {}) {
    const addresses = options.localAddresses ?? ["127.0.0.1", "::1"];
    if (!Array.isArray(addresses)) {
      throw new TypeError("Expected localAddresses to be an array of IP addresses");
    }
    const local = new Set<string>();
    for (const a of addresses) {
      const c = typeof a === "string" ? canonical(familyOf(a), a) : undefined;
      if (c === undefined) throw new TypeError(`Expected an IP address in localAddresses, got ${String(a)}`);
      local.add(c);
    }
    const window = options.windowSize ?? DEFAULT_WINDOW;
    if (!Number.isSafeInteger(window) || window < 0) {
      throw new TypeError("Expected windowSize to be a non-negative integer");
    }
    const world = new World(local, window);
    this.#world = world;
    this.backend = Object.freeze({
      name: "memory",
      realOptions: OPTION_NAMES,
      bind: (request: BindRequest): MemoryBinding => world.bind(request),
      connect: (request: ConnectRequest): Promise<MemoryConnection> => world.connect(request),
    });
  }

  /**
   * Makes every later connect whose remote matches fail with `code`, until
   * {@link clearFaults}. The fault is decided when connect() is called and
   * reported when the connect would have completed (after the connect delay).
   * The first matching fault wins.
   *
   * @param code The error code the connect rejects with, such as `"timeout"`.
   * @param match The remote address and/or port to match; omitted fields match
   * anything, so no argument fails every connect.
   * @returns Nothing.
   * @throws {TypeError} For a code that is not a string, an address that is not
   * an IP, or a port outside 0 to 65535.
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_network.ts";
   * const net = new MemoryNetwork();
   * net.failConnect("remote-unreachable", { address: "::1" });
   * net.failConnect("timeout", { port: 8080 });
   * ```
   */
  failConnect(code: ErrorCode, match: ConnectFaultMatch = {}): void {
    if (!Object.hasOwn(ERROR_CODES, code)) {
      throw new TypeError(`Expected code to be a wasi:sockets error code, got ${String(code)}`);
    }
    if (typeof match !== "object" || match === null) {
      throw new TypeError("Expected match to be an object");
    }
    const fault: Fault = { code };
    if (match.address !== undefined) {
      const family = typeof match.address === "string" ? familyOf(match.address) : "ipv4";
      const address = typeof match.address === "string" ? canonical(family, match.address) : undefined;
      if (address === undefined) throw new TypeError(`Expected match.address to be an IP address`);
      fault.family = family;
      fault.address = address;
    }
    if (match.port !== undefined) {
      if (!isPort(match.port)) throw new TypeError("Expected match.port to be an integer from 0 to 65535");
      fault.port = match.port;
    }
    this.#world.faults.push(fault);
  }

  /**
   * Makes connects complete (or fail) `ms` milliseconds after connect() instead
   * of on the next macrotask. Applies to connects started afterwards.
   *
   * @param ms The delay; 0 restores the default.
   * @returns Nothing.
   * @throws {TypeError} When `ms` is not a finite number of at least 0.
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_network.ts";
   * const net = new MemoryNetwork();
   * net.setConnectDelay(50); // finish-connect answers would-block for ~50 ms
   * ```
   */
  setConnectDelay(ms: number): void {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      throw new TypeError("Expected ms to be a finite number of at least 0");
    }
    this.#world.connectDelay = ms;
  }

  /**
   * Turns on partial writes: the peer receives each later write in pieces of
   * at most `bytes`, one piece per macrotask (setTimeout 0); write() returns
   * false while any piece is undelivered, and `drain` follows the last one.
   * Pieces are views of the written array, not copies.
   *
   * @param bytes The largest piece, or `undefined` to turn partial writes off
   * (writes already split still go out piece by piece).
   * @returns Nothing.
   * @throws {TypeError} When `bytes` is neither undefined nor a positive integer.
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_network.ts";
   * const net = new MemoryNetwork();
   * net.setMaxWriteChunk(1); // byte by byte, like a very slow link
   * ```
   */
  setMaxWriteChunk(bytes: number | undefined): void {
    if (bytes !== undefined && (!Number.isSafeInteger(bytes) || bytes < 1)) {
      throw new TypeError("Expected bytes to be a positive integer or undefined");
    }
    this.#world.maxWriteChunk = bytes;
  }

  /**
   * Resets established connections: both ends get `sink.error` with a
   * `connection-reset` NetworkError (an end that is not started yet gets it
   * when it starts), and the data in flight is lost. Connects still in
   * progress are not affected.
   *
   * @param port Only connections whose local or remote port is `port`; all
   * connections when omitted.
   * @returns Nothing.
   * @throws {TypeError} When `port` is not an integer from 0 to 65535.
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_network.ts";
   * const net = new MemoryNetwork();
   * net.reset(8080); // every connection to or from port 8080
   * ```
   */
  reset(port?: number): void {
    if (port !== undefined && !isPort(port)) {
      throw new TypeError("Expected port to be an integer from 0 to 65535");
    }
    for (const end of [...this.#world.ends]) {
      if (
        port === undefined || end.localAddress.port === port || end.remoteAddress.port === port
      ) {
        this.#world.resetPair(end, "Connection reset by the memory network");
      }
    }
  }

  /**
   * Removes every injected fault: the {@link failConnect} rules, the connect
   * delay and partial writes. Connections already reset stay reset.
   *
   * @returns Nothing.
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_network.ts";
   * const net = new MemoryNetwork();
   * net.failConnect("timeout");
   * net.clearFaults(); // connects behave normally again
   * ```
   */
  clearFaults(): void {
    this.#world.faults = [];
    this.#world.connectDelay = 0;
    this.#world.maxWriteChunk = undefined;
  }

  /**
   * The open connection ends, e.g. to read back the options the core applied
   * to an accepted connection.
   *
   * @param port Only ends whose local or remote port is `port`; all when omitted.
   * @returns A new array, in creation order.
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_network.ts";
   * const net = new MemoryNetwork();
   * for (const c of net.connections(8080)) console.log(c.getOption("keepAliveEnabled"));
   * ```
   */
  connections(port?: number): MemoryConnection[] {
    const out: MemoryConnection[] = [];
    for (const end of this.#world.ends) {
      if (port === undefined || end.localAddress.port === port || end.remoteAddress.port === port) {
        out.push(end);
      }
    }
    return out;
  }

  /**
   * Open connection ends, bindings and listeners, for leak checks in tests.
   *
   * @returns A fresh snapshot on every read.
   * @example
   * ```ts
   * import { MemoryNetwork } from "./memory_network.ts";
   * const net = new MemoryNetwork();
   * console.log(net.stats); // { connections: 0, bindings: 0, listeners: 0 }
   * ```
   */
  get stats(): MemoryNetworkStats {
    const w = this.#world;
    return { connections: w.ends.size, bindings: w.bindings.size, listeners: w.listeners.size };
  }
}
