/**
 * The Bun backend: `wasi:sockets/tcp` on `Bun.listen` and `Bun.connect`, with
 * `bun:ffi` calls into libc for what Bun has no API for (a socket that is
 * bound but not listening, the listen backlog, and every socket option except
 * keep-alive on/off).
 *
 * How it maps the backend contract onto Bun 1.4 (each point measured):
 * - bind: `socket()` + `SO_REUSEADDR` (+ `IPV6_V6ONLY`) + `bind()` through
 *   ffi, so errors come back synchronously and a peer connecting is refused.
 * - listen: `listen(fd, backlog)` through ffi, then `Bun.listen({ fd })`
 *   adopts the descriptor, so no other socket can take the port in between.
 * - connect from a binding: Bun.connect with `localAddress`/`localPort` while
 *   the binding still holds the address (both use SO_REUSEADDR and neither
 *   listens, which Linux allows); the binding is released once the
 *   connection is up, so the port is never free for a third party.
 * - data: Bun copies every chunk into a fresh Uint8Array, so chunks are handed
 *   over as they are.
 * - writes: `socket.write` takes what the kernel takes now; the rest is queued
 *   (the caller's buffer, never copied) and finished on `drain`.
 * - half-close: `socket.shutdown()` once the queue is empty; `end()` would
 *   close the whole descriptor.
 *
 * Without libc (not Linux/glibc) bind falls back to a probe with Bun.listen,
 * which races (see {@link createBunBackend}) and only keep-alive is real.
 *
 * Besides {@link createBunBackend}, the module exports the namespaces jco
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
  IpFamily,
  ListenRequest,
  TcpBackend,
  TcpOptionName,
  TcpOptions,
} from "../core/backend.ts";
import { NetworkError } from "../core/errors.ts";
import { bunError, errnoError } from "./_bun_errors.ts";
import {
  bindFd,
  closeFd,
  encodeSockaddr,
  getpeername,
  getsockname,
  hasLibc,
  LINUX,
  listenFd,
  setIntOption,
  tcpSocket,
} from "./_bun_libc.ts";
import { ALL_OPTIONS, setOption } from "./_bun_sockopt.ts";
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

const { AF_INET, AF_INET6, IPPROTO_IPV6, IPV6_V6ONLY, SO_REUSEADDR, SOL_SOCKET } = LINUX;

/** The parts of a Bun TCP socket this backend uses. */
interface BunSocket {
  data: unknown;
  readonly fd: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number;
  pause(): void;
  resume(): void;
  shutdown(halfClose?: boolean): void;
  setKeepAlive(enable: boolean, initialDelay?: number): boolean;
  end(): void;
}

/** The parts of a Bun listener this backend uses. */
interface BunListenerHandle {
  readonly fd: number;
  readonly port: number | undefined;
  stop(closeActiveConnections?: boolean): void;
}

/** The socket handlers Bun calls; `this` is not used. */
interface BunHandlers {
  binaryType: "uint8array";
  open(socket: BunSocket): void;
  data(socket: BunSocket, chunk: Uint8Array): void;
  drain(socket: BunSocket): void;
  end(socket: BunSocket): void;
  close(socket: BunSocket, error?: unknown): void;
  error(socket: BunSocket, error: unknown): void;
  connectError?(socket: BunSocket, error: unknown): void;
}

interface BunApi {
  listen(options: Record<string, unknown>): BunListenerHandle;
  connect(options: Record<string, unknown>): Promise<BunSocket>;
}

function bunApi(): BunApi {
  return (globalThis as unknown as { Bun: BunApi }).Bun;
}

/** Bytes an unstarted connection buffers before it pauses the socket. */
const EARLY_LIMIT = 64 * 1024;

const SEND_OPEN = 0;
const SEND_PENDING = 1;
const SEND_DONE = 2;

function text(a: HostAddress): string {
  return a.family === "ipv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

function hostAddress(family: IpFamily, address: string, port: number): HostAddress {
  // Bun may append a zone ("fe80::1%eth0"); HostAddress keeps the bare IP.
  const zone = family === "ipv6" ? address.indexOf("%") : -1;
  return { family, address: zone < 0 ? address : address.slice(0, zone), port };
}

/** The per-listener value Bun hands to `open` as `socket.data`. */
interface ListenContext {
  family: IpFamily;
  /** The listener's address when it is a specific one: then every accepted socket's local end. */
  local?: HostAddress;
  onConnection(connection: BackendConnection): void;
}

/** The local end accepted sockets share: the listener's address, unless unspecified. */
function specificLocal(a: HostAddress): HostAddress | undefined {
  return a.address === "0.0.0.0" || a.address === "::" ? undefined : a;
}

// Whether a connection's addresses can be read with one libc call each;
// asked once, since a missing libc throws every time.
let libcAddresses: boolean | undefined;
function rawAddresses(): boolean {
  return libcAddresses ??= hasLibc();
}

/**
 * One Bun socket behind the backend contract. Bun pushes events through the
 * shared handler objects below, which find this object in `socket.data`.
 */
class BunConnection implements BackendConnection {
  #local: HostAddress | undefined;
  #remote: HostAddress | undefined;
  #remotePort = 0;
  // For a connection we dial: the peer, which Bun would otherwise be asked for.
  readonly #dialled: HostAddress | undefined;
  #localPort = 0;
  #remoteIp = "";
  #localIp = "";
  #family: IpFamily;
  #socket: BunSocket | undefined;
  #sink: ConnectionSink | undefined;
  // Events that arrived before start(); replayed in order by start().
  #early: Uint8Array[] | undefined;
  #earlyBytes = 0;
  #earlyEnd = false;
  #earlyError: NetworkError | undefined;
  // Bytes the kernel has not taken yet; the head is sent from #headOffset.
  #queue: Uint8Array[] = [];
  #headOffset = 0;
  #owesDrain = false;
  #send = SEND_OPEN;
  #receiveShut = false;
  #paused = false;
  #osPaused = false;
  // Inside the sink's data(): a pause the core asks for waits until the
  // reader that data() woke has run (see onData).
  #delivering = false;
  #ended = false;
  #closed = false; // close() was called
  #silent = false; // no more events: closed or failed
  #released = false; // the OS socket is gone
  #keepAliveMs = 0; // only for the setKeepAlive fallback without libc
  #keepAliveOn = false; // likewise

  constructor(family: IpFamily, dialled?: HostAddress) {
    this.#family = family;
    this.#dialled = dialled;
  }

  /** Binds to the socket Bun opened. */
  attach(socket: BunSocket, local?: HostAddress): void {
    this.#socket = socket;
    // Bun forgets every address once the socket closes, which a peer's reset
    // does at any time: keep now what the getters need and is not known
    // already (the listener's own address, the address dialled).
    // With libc, one getsockname(2) or getpeername(2) each: Bun's getters
    // make one call per address and one per port.
    const remote = this.#dialled;
    const fd = local && remote ? -1 : rawAddresses() ? socket.fd : -1;
    if (local) this.#local = { ...local };
    else {
      const name = fd >= 0 ? getsockname(fd) : -1;
      if (typeof name === "number") {
        this.#localIp = socket.localAddress;
        this.#localPort = socket.localPort;
      } else {
        this.#localIp = name.address;
        this.#localPort = name.port;
      }
    }
    if (remote) this.#remote = { ...remote };
    else {
      const name = fd >= 0 ? getpeername(fd) : -1;
      if (typeof name === "number") {
        this.#remoteIp = socket.remoteAddress;
        this.#remotePort = socket.remotePort;
      } else {
        this.#remoteIp = name.address;
        this.#remotePort = name.port;
      }
    }
  }

  // Built on first use and kept: most connections never ask (the core asks
  // for the accept hook and for local-address/remote-address only).
  get localAddress(): HostAddress {
    return this.#local ??= this.#address(false);
  }

  get remoteAddress(): HostAddress {
    return this.#remote ??= this.#address(true);
  }

  #address(remote: boolean): HostAddress {
    const f = this.#family;
    const socket = this.#socket;
    if (!socket) return { family: f, address: f === "ipv6" ? "::" : "0.0.0.0", port: 0 };
    return remote
      ? hostAddress(f, this.#remoteIp, this.#remotePort)
      : hostAddress(f, this.#localIp, this.#localPort);
  }

  get attached(): boolean {
    return this.#socket !== undefined;
  }

  /** The OS descriptor, -1 once released; for diagnostics and tests. */
  get fd(): number {
    return this.#released || !this.#socket ? -1 : this.#socket.fd;
  }

  start(sink: ConnectionSink): void {
    if (this.#sink) return;
    this.#sink = sink;
    const early = this.#early;
    this.#early = undefined;
    if (early) {
      for (const chunk of early) {
        if (this.#closed || this.#receiveShut) break;
        sink.data(chunk);
      }
    }
    if (this.#earlyEnd && !this.#closed && !this.#receiveShut) sink.end();
    const error = this.#earlyError;
    this.#earlyError = undefined;
    if (error && !this.#closed) sink.error(error);
    if (this.#owesDrain && this.#queue.length === 0 && !this.#silent) {
      this.#owesDrain = false;
      sink.drain();
    }
    this.#syncPause();
  }

  write(chunk: Uint8Array): boolean {
    return this.#write(chunk, false);
  }

  // Bun's write hands over what the kernel takes at once and keeps nothing,
  // so a lent chunk costs a copy of what is left over only.
  writeBorrowed(chunk: Uint8Array): boolean {
    return this.#write(chunk, true);
  }

  #write(chunk: Uint8Array, borrowed: boolean): boolean {
    if (this.#closed || this.#send !== SEND_OPEN) return true;
    const queue = this.#queue;
    if (queue.length !== 0) {
      queue.push(borrowed ? chunk.slice() : chunk);
      return false;
    }
    if (this.#released) {
      this.#broken();
      return false;
    }
    const n = this.#socket!.write(chunk);
    if (n === chunk.byteLength) return true;
    if (n < 0) {
      this.#broken();
      return false;
    }
    if (borrowed) {
      queue.push(chunk.slice(n));
      this.#headOffset = 0;
    } else {
      queue.push(chunk);
      this.#headOffset = n;
    }
    this.#owesDrain = true;
    return false;
  }

  flush(): boolean {
    if (this.#closed || this.#queue.length === 0) return true;
    this.#owesDrain = true;
    return false;
  }

  pause(): void {
    this.#paused = true;
    if (this.#sink && !this.#delivering) this.#syncPause();
  }

  resume(): void {
    this.#paused = false;
    if (this.#sink) this.#syncPause();
  }

  shutdown(direction: "send" | "receive"): void {
    if (direction === "receive") {
      if (this.#receiveShut) return;
      this.#receiveShut = true;
      this.#early = undefined;
      // Not SHUT_RD: Bun takes the 0 it makes reads return for the peer's FIN,
      // and once our FIN is out too, it closes the descriptor itself (with
      // unread data, a reset that loses what we still had to send). What
      // arrives is read and dropped instead, so reading must go on.
      this.#syncPause();
      return;
    }
    if (this.#send !== SEND_OPEN) return;
    if (this.#queue.length !== 0) {
      this.#send = SEND_PENDING; // onDrain sends the FIN after the last byte
      return;
    }
    this.#send = SEND_DONE;
    if (!this.#released) this.#socket!.shutdown();
  }

  setOption<K extends TcpOptionName>(name: K, value: TcpOptions[K]): boolean {
    if (this.#released) return false;
    const socket = this.#socket!;
    if (setOption(socket.fd, this.#family === "ipv6", name, value)) return true;
    if (hasLibc()) return false;
    // Without libc only Bun's own keep-alive switch works; it also forces the
    // interval and count, which is why the libc path above is preferred.
    if (name === "keepAliveIdleTime") {
      const secs = Number((value as bigint) / 1_000_000_000n);
      this.#keepAliveMs = Math.min(Math.max(secs, 1), 32767) * 1000;
      // Bun sets the idle time only with the switch: while keep-alive is on,
      // switching it on again applies the new time.
      return this.#keepAliveOn ? socket.setKeepAlive(true, this.#keepAliveMs) : true;
    }
    if (name === "keepAliveEnabled") {
      const ok = socket.setKeepAlive(value as boolean, this.#keepAliveMs || undefined);
      if (ok) this.#keepAliveOn = value as boolean;
      return ok;
    }
    return false;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#silent = true;
    this.#queue.length = 0;
    this.#early = undefined;
    if (!this.#released) {
      this.#released = true;
      // end() closes the descriptor at once (FIN, or RST with unread data),
      // like dropping a socket in wasmtime; terminate() would always reset.
      this.#socket?.end();
    }
  }

  onData(chunk: Uint8Array): void {
    if (this.#silent || this.#receiveShut) return;
    const sink = this.#sink;
    if (sink) {
      // Bun reads up to 512 KiB at once, more than the core's receive window,
      // so the core asks for a pause on nearly every chunk, and a reader that
      // waits for data takes it all and resumes at once: two epoll_ctl calls
      // per chunk for nothing (5808 against raw's 56 in six 224 MiB
      // transfers). The pause is settled in a microtask queued after the
      // reader's wake-up instead. Bun runs microtasks after each data
      // callback, before it reads again, so a reader that leaves the bytes
      // still keeps the rest in the kernel as before.
      this.#delivering = true;
      try {
        sink.data(chunk);
      } finally {
        this.#delivering = false;
      }
      if (this.#paused && !this.#osPaused) queueMicrotask(() => this.#sink && this.#syncPause());
      return;
    }
    (this.#early ??= []).push(chunk);
    this.#earlyBytes += chunk.byteLength;
    if (this.#earlyBytes >= EARLY_LIMIT && !this.#osPaused) {
      // Leave the rest in the kernel until the core takes the connection.
      this.#osPaused = true;
      this.#socket!.pause();
    }
  }

  onEnd(): void {
    if (this.#silent || this.#ended) return;
    this.#ended = true;
    if (this.#receiveShut) return;
    if (this.#sink) this.#sink.end();
    else this.#earlyEnd = true;
  }

  onDrain(): void {
    if (this.#closed) return;
    const queue = this.#queue;
    const socket = this.#socket!;
    while (queue.length !== 0) {
      const head = queue[0];
      const offset = this.#headOffset;
      const rest = head.byteLength - offset;
      const n = socket.write(head, offset, rest);
      if (n < 0) {
        this.#fail(new NetworkError("connection-reset", "The connection closed while writing"));
        return;
      }
      if (n < rest) {
        this.#headOffset = offset + n;
        return;
      }
      queue.shift();
      this.#headOffset = 0;
    }
    if (this.#send === SEND_PENDING) {
      this.#send = SEND_DONE;
      socket.shutdown();
    }
    // Owed until there is a sink to tell: start() pays it.
    if (this.#owesDrain && this.#sink) {
      this.#owesDrain = false;
      if (!this.#silent) this.#sink.drain();
    }
  }

  onClose(error: unknown): void {
    this.#released = true;
    if (this.#silent) return;
    if (error !== undefined && error !== null) {
      this.#fail(bunError(error, "io", text(this.remoteAddress)));
      return;
    }
    if (this.#queue.length !== 0) {
      this.#fail(
        new NetworkError("connection-reset", "The connection closed before every byte was sent"),
      );
      return;
    }
    // With our FIN already sent, Bun closes on the peer's FIN instead of
    // calling `end`: report the end the core is waiting for.
    this.onEnd();
  }

  onError(error: unknown): void {
    this.#fail(bunError(error, "io", text(this.remoteAddress)));
  }

  #fail(error: NetworkError): void {
    if (this.#silent) return;
    this.#silent = true;
    this.#queue.length = 0;
    if (this.#sink) this.#sink.error(error);
    else this.#earlyError = error;
  }

  #broken(): void {
    if (this.#silent) return;
    // Not from inside write(): the core does not expect events re-entrantly.
    queueMicrotask(() =>
      this.#fail(new NetworkError("connection-reset", "The connection is closed"))
    );
  }

  #syncPause(): void {
    // After shutdown(receive) data is dropped as it comes: never paused.
    const want = this.#paused && !this.#receiveShut;
    if (want === this.#osPaused || this.#released) return;
    this.#osPaused = want;
    if (want) this.#socket!.pause();
    else this.#socket!.resume();
  }
}

function connectionOf(socket: BunSocket): BunConnection | undefined {
  const c = socket.data;
  return c instanceof BunConnection ? c : undefined;
}

// One handler object per role, shared by every socket: nothing is allocated
// per connection beyond Bun's own objects.
const SERVER_HANDLERS: BunHandlers = {
  binaryType: "uint8array",
  open(socket) {
    const ctx = socket.data as ListenContext;
    const connection = new BunConnection(ctx.family);
    connection.attach(socket, ctx.local);
    socket.data = connection;
    ctx.onConnection(connection);
  },
  data(socket, chunk) {
    (socket.data as BunConnection).onData(chunk);
  },
  drain(socket) {
    connectionOf(socket)?.onDrain();
  },
  end(socket) {
    connectionOf(socket)?.onEnd();
  },
  close(socket, error) {
    connectionOf(socket)?.onClose(error);
  },
  error(socket, error) {
    connectionOf(socket)?.onError(error);
  },
};

const CLIENT_HANDLERS: BunHandlers = {
  ...SERVER_HANDLERS,
  open(socket) {
    (socket.data as BunConnection).attach(socket);
  },
  // The promise of Bun.connect carries the error; this only marks it handled.
  connectError() {},
};

/** A listening Bun socket. */
class BunListener implements BackendListener {
  readonly localAddress: HostAddress;
  #handle: BunListenerHandle | undefined;

  constructor(handle: BunListenerHandle, localAddress: HostAddress) {
    this.#handle = handle;
    this.localAddress = localAddress;
  }

  /** The listening descriptor, -1 once closed; for diagnostics and tests. */
  get fd(): number {
    return this.#handle ? this.#handle.fd : -1;
  }

  // Bun accepts by push and has no way to stop taking connections short of
  // closing the listener; the core bounds its own queue, so these do nothing.
  pause(): void {}
  resume(): void {}

  setOption<K extends TcpOptionName>(name: K, value: TcpOptions[K]): boolean {
    const h = this.#handle;
    if (!h) return false;
    return setOption(h.fd, this.localAddress.family === "ipv6", name, value);
  }

  close(): void {
    const h = this.#handle;
    if (!h) return;
    this.#handle = undefined;
    // false: accepted connections belong to their own sockets and stay open.
    h.stop(false);
  }
}

function applyChanged(
  fd: number,
  v6: boolean,
  options: TcpOptions,
  changed: ReadonlySet<TcpOptionName>,
): void {
  for (const name of changed) setOption(fd, v6, name, options[name]);
}

/** A socket bound through libc, not listening. */
class FfiBinding implements BackendBinding {
  localAddress: HostAddress;
  #fd: number;

  constructor(fd: number, localAddress: HostAddress) {
    this.#fd = fd;
    this.localAddress = localAddress;
  }

  listen(request: ListenRequest): BackendListener {
    const fd = this.#fd;
    if (fd < 0) throw new NetworkError("invalid-state", "The binding is closed");
    const v6 = this.localAddress.family === "ipv6";
    // Before listen(), so that accepted sockets inherit them (SO_RCVBUF sets
    // the window scale at the handshake).
    applyChanged(fd, v6, request.options, request.changed);
    const r = listenFd(fd, request.backlog);
    if (r < 0) throw errnoError(r, "listen", text(this.localAddress));
    // request.onError is never called: Bun has no error event for a
    // listening socket.
    const context: ListenContext = {
      family: this.localAddress.family,
      local: specificLocal(this.localAddress),
      onConnection: request.onConnection,
    };
    let handle: BunListenerHandle;
    try {
      handle = bunApi().listen({
        fd,
        allowHalfOpen: true,
        data: context,
        socket: SERVER_HANDLERS,
      });
    } catch (e) {
      // The descriptor listens now and cannot go back; the core closes the
      // socket after a failed listen anyway.
      this.#fd = -1;
      closeFd(fd);
      throw bunError(e, "listen", text(this.localAddress));
    }
    // Bun owns the descriptor from here and closes it on stop(). Adopting it,
    // Bun listens again with its own backlog (511); Linux lets a listening
    // socket's backlog change, so the one asked for goes back on.
    this.#fd = -1;
    listenFd(handle.fd, request.backlog);
    return new BunListener(handle, this.localAddress);
  }

  close(): void {
    if (this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
  }
}

/**
 * The binding used without libc: bind probes the address with a short-lived
 * Bun.listen and frees it again, listen takes it for real. Between the two
 * another socket may take the port (listen then fails with address-in-use).
 */
class ProbeBinding implements BackendBinding {
  localAddress: HostAddress;
  #ipv6Only: boolean;
  #closed = false;

  constructor(localAddress: HostAddress, ipv6Only: boolean) {
    this.localAddress = localAddress;
    this.#ipv6Only = ipv6Only;
  }

  listen(request: ListenRequest): BackendListener {
    if (this.#closed) throw new NetworkError("invalid-state", "The binding is closed");
    const a = this.localAddress;
    const context: ListenContext = {
      family: a.family,
      local: specificLocal(a),
      onConnection: request.onConnection,
    };
    let handle: BunListenerHandle;
    try {
      handle = bunApi().listen({
        hostname: a.address,
        port: a.port,
        ipv6Only: a.family === "ipv6" && this.#ipv6Only,
        allowHalfOpen: true,
        data: context,
        socket: SERVER_HANDLERS,
      });
    } catch (e) {
      throw bunError(e, "listen", text(a));
    }
    this.#closed = true;
    return new BunListener(handle, a);
  }

  close(): void {
    this.#closed = true;
  }
}

function reserve(local: HostAddress, ipv6Only: boolean): { fd: number; address: HostAddress } {
  const v6 = local.family === "ipv6";
  const fd = tcpSocket(v6 ? AF_INET6 : AF_INET);
  if (fd < 0) throw errnoError(fd, "bind", text(local));
  try {
    setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (v6) setIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, ipv6Only ? 1 : 0);
    let encoded: [Uint8Array, number];
    try {
      encoded = encodeSockaddr(
        v6 ? AF_INET6 : AF_INET,
        local.address,
        local.port,
        local.flowInfo ?? 0,
        local.scopeId ?? 0,
      );
    } catch {
      throw new NetworkError("invalid-argument", `Not an IP address: ${local.address}`);
    }
    const r = bindFd(fd, encoded[0], encoded[1]);
    if (r < 0) throw errnoError(r, "bind", text(local));
    const name = getsockname(fd);
    if (typeof name === "number") throw errnoError(name, "bind", text(local));
    const address: HostAddress = { family: local.family, address: name.address, port: name.port };
    if (v6) {
      address.flowInfo = name.flowInfo;
      address.scopeId = name.scopeId;
    }
    return { fd, address };
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

function probeBind(request: BindRequest): BackendBinding {
  const a = request.local;
  let handle: BunListenerHandle;
  try {
    handle = bunApi().listen({
      hostname: a.address,
      port: a.port,
      ipv6Only: a.family === "ipv6" && request.ipv6Only,
      socket: SERVER_HANDLERS,
    });
  } catch (e) {
    throw bunError(e, "bind", text(a));
  }
  const port = handle.port ?? a.port;
  handle.stop(true);
  return new ProbeBinding({ family: a.family, address: a.address, port }, request.ipv6Only);
}

async function connect(request: ConnectRequest): Promise<BackendConnection> {
  const { remote, binding } = request;
  const connection = new BunConnection(remote.family, remote);
  const options: Record<string, unknown> = {
    hostname: remote.address,
    port: remote.port,
    allowHalfOpen: true,
    data: connection,
    socket: CLIENT_HANDLERS,
  };
  if (binding) {
    options.localAddress = binding.localAddress.address;
    options.localPort = binding.localAddress.port;
  }
  let socket: BunSocket;
  try {
    socket = await bunApi().connect(options);
  } catch (e) {
    throw bunError(e, "connect", text(remote));
  } finally {
    // Held until now so that nobody else could take the port meanwhile.
    binding?.close();
  }
  if (!connection.attached) connection.attach(socket);
  for (const name of request.changed) connection.setOption(name, request.options[name]);
  return connection;
}

/**
 * Creates the backend for Bun's native sockets.
 *
 * On Linux with glibc every option in {@link TcpBackend.realOptions} is set
 * with setsockopt on the real descriptor, binding never listens, and listen
 * adopts the bound descriptor. Elsewhere only keep-alive on/off and idle time
 * are real, and bind probes the address with a listener it closes again, so
 * another process may take the port before listen (which then fails with
 * `address-in-use`).
 *
 * Bun reports every connect failure as ECONNREFUSED, so unreachable hosts and
 * timeouts surface as `connection-refused`.
 *
 * @returns A backend named "bun"; its methods throw or reject with
 * {@link NetworkError}s.
 * @example
 * ```ts
 * import { createBunBackend } from "./bun.ts";
 * const backend = createBunBackend();
 * const binding = backend.bind({
 *   local: { family: "ipv4", address: "127.0.0.1", port: 0 },
 *   ipv6Only: true,
 * });
 * console.log(binding instanceof Promise ? "async" : binding.localAddress.port);
 * ```
 */
export function createBunBackend(): TcpBackend {
  const ffi = hasLibc();
  const realOptions: ReadonlySet<TcpOptionName> = ffi
    ? ALL_OPTIONS
    : new Set<TcpOptionName>(["keepAliveEnabled", "keepAliveIdleTime"]);
  return {
    name: "bun",
    realOptions,
    // Bun runs immediates after polling its sockets, in microseconds, where
    // setTimeout(0) takes a millisecond.
    macrotask: (cb: () => void): void => {
      setImmediate(cb);
    },
    bind(request: BindRequest): BackendBinding {
      if (!ffi) return probeBind(request);
      const { fd, address } = reserve(request.local, request.ipv6Only);
      return new FfiBinding(fd, address);
    },
    connect,
  };
}

// jco copies every read result into guest memory at once, so the namespaces
// jco imports lend read buffers (see WasiSocketsOptions.lendReadBuffers).
const wasi: WasiSockets = createWasiSockets({ backend: createBunBackend(), lendReadBuffers: true });

/**
 * `wasi:sockets/tcp` on Bun, for `jco transpile --map 'wasi:sockets/*=wasi-tcp/bun#*'`.
 *
 * @example
 * ```ts
 * import { tcp } from "./bun.ts";
 * console.log(typeof tcp.TcpSocket); // "function"
 * ```
 */
export const tcp: TcpNamespace = wasi.tcp;
/**
 * `wasi:sockets/tcp-create-socket` on Bun.
 *
 * @example
 * ```ts
 * import { tcpCreateSocket } from "./bun.ts";
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
 * import { network } from "./bun.ts";
 * console.log(typeof network.Network); // "function"
 * ```
 */
export const network: NetworkNamespace = wasi.network;
/**
 * `wasi:sockets/instance-network`.
 *
 * @example
 * ```ts
 * import { instanceNetwork } from "./bun.ts";
 * console.log(instanceNetwork.instanceNetwork() === instanceNetwork.instanceNetwork()); // true
 * ```
 */
export const instanceNetwork: InstanceNetworkNamespace = wasi.instanceNetwork;
/**
 * `wasi:io/streams`; read results are lent: valid until the next read on that stream.
 *
 * @example
 * ```ts
 * import { streams } from "./bun.ts";
 * console.log(typeof streams.InputStream); // "function"
 * ```
 */
export const streams: StreamsNamespace = wasi.streams;
/**
 * `wasi:io/poll`.
 *
 * @example
 * ```ts
 * import { monotonicClock, poll } from "./bun.ts";
 * console.log(await poll.poll([monotonicClock.subscribeDuration(0n)])); // Uint32Array [0]
 * ```
 */
export const poll: PollNamespace = wasi.poll;
/**
 * `wasi:io/error`.
 *
 * @example
 * ```ts
 * import { error } from "./bun.ts";
 * console.log(new error.Error("connection reset").toDebugString());
 * ```
 */
export const error: ErrorNamespace = wasi.error;
/**
 * `wasi:clocks/monotonic-clock`.
 *
 * @example
 * ```ts
 * import { monotonicClock } from "./bun.ts";
 * console.log(monotonicClock.now() > 0n); // true
 * ```
 */
export const monotonicClock: MonotonicClockNamespace = wasi.monotonicClock;
/**
 * `wasi:clocks/wall-clock`.
 *
 * @example
 * ```ts
 * import { wallClock } from "./bun.ts";
 * console.log(wallClock.now().seconds > 1_700_000_000n); // true
 * ```
 */
export const wallClock: WallClockNamespace = wasi.wallClock;
