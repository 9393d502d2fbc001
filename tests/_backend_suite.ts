// The contract tests every real-socket backend must pass, driven through the
// TcpBackend interface, with raw node:net sockets as independent peers.

import { it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { readFileSync } from "node:fs";
import type {
  BackendBinding,
  BackendConnection,
  BackendListener,
  ConnectionSink,
  HostAddress,
  TcpBackend,
  TcpOptionName,
} from "../core/backend.ts";
import { defaultOptions } from "../core/_options.ts";
import { NetworkError } from "../core/errors.ts";

export const DEADLINE_MS = 10_000;

/** The runtime the tests run on. */
export const RUNTIME: "deno" | "bun" | "node" = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/** Rejects with `what` if `promise` has not settled within `ms`. */
export function within<T>(promise: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Resolves after every callback queued so far, including I/O, has run. */
function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Writes 64 KiB chunks to `peer` until its writes back up for good (a drain
 * that has not come within 500 ms), failing past 64 MiB without backpressure.
 *
 * @param peer A connected node:net socket.
 * @returns The bytes written, all queued or sent.
 */
async function writeUntilStalled(peer: net.Socket): Promise<number> {
  const chunk = new Uint8Array(65536);
  const cap = 64 * 1024 * 1024;
  let written = 0;
  for (;;) {
    while (peer.write(chunk)) {
      written += chunk.byteLength;
      assert.ok(written < cap, `peer wrote ${written} bytes without backpressure`);
    }
    written += chunk.byteLength;
    // A drain that never comes is the stall; reading on would drain at once.
    const drained = await Promise.race([
      new Promise<boolean>((resolve) => peer.once("drain", () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500)),
    ]);
    assert.ok(written < cap, `peer wrote ${written} bytes without backpressure`);
    if (!drained) return written;
  }
}

/** A sink that records every event and lets a test wait for a condition. */
export class Recorder implements ConnectionSink {
  chunks: Uint8Array[] = [];
  bytes = 0;
  ended = false;
  bytesAtEnd = -1;
  drains = 0;
  failure: NetworkError | undefined;
  events = 0;
  #waiters = new Set<() => void>();

  data(chunk: Uint8Array): void {
    assert.ok(chunk instanceof Uint8Array, "data() must hand over a Uint8Array");
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
    this.#event();
  }
  end(): void {
    this.ended = true;
    this.bytesAtEnd = this.bytes;
    this.#event();
  }
  drain(): void {
    this.drains++;
    this.#event();
  }
  error(error: NetworkError): void {
    this.failure = error;
    this.#event();
  }
  #event(): void {
    this.events++;
    for (const waiter of this.#waiters) waiter();
  }

  /** Waits until `condition()` holds, failing with `what` at the deadline. */
  until(condition: () => boolean, what: string, ms = DEADLINE_MS): Promise<void> {
    if (condition()) return Promise.resolve();
    let waiter: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      waiter = () => {
        if (condition()) resolve();
      };
      this.#waiters.add(waiter);
    });
    return within(done, what, ms).finally(() => this.#waiters.delete(waiter));
  }

  text(): string {
    return new TextDecoder().decode(concat(this.chunks));
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

/** Bytes whose value depends on their position, so reordering or reuse shows. */
export function pattern(size: number, offset = 0): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (offset + i) % 251;
  return out;
}

/** Checks that `chunks` are `pattern(total)` without concatenating them. */
export function assertPattern(chunks: Uint8Array[], total: number): void {
  let position = 0;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.byteLength; i++) {
      if (chunk[i] !== (position + i) % 251) {
        assert.fail(`Byte ${position + i} is ${chunk[i]}, expected ${(position + i) % 251}`);
      }
    }
    position += chunk.byteLength;
  }
  assert.equal(position, total);
}

export function host(address: string, port = 0): HostAddress {
  return { family: address.includes(":") ? "ipv6" : "ipv4", address, port };
}

async function bind(backend: TcpBackend, address: string, port = 0): Promise<BackendBinding> {
  return await backend.bind({ local: host(address, port), ipv6Only: true });
}

async function bindError(
  backend: TcpBackend,
  address: string,
  port: number,
): Promise<NetworkError> {
  let binding: BackendBinding | undefined;
  try {
    binding = await backend.bind({ local: host(address, port), ipv6Only: true });
  } catch (error) {
    assert.ok(error instanceof NetworkError, `Expected a NetworkError, got ${error}`);
    return error;
  }
  binding.close();
  return assert.fail(`Bind to ${address}:${port} succeeded`);
}

/** A backend listener plus a queue of accepted connections. */
class Server {
  listener!: BackendListener;
  #accepted: BackendConnection[] = [];
  #waiter: (() => void) | undefined;
  errors: NetworkError[] = [];

  static async open(backend: TcpBackend, address = "127.0.0.1", ipv6Only = true): Promise<Server> {
    const server = new Server();
    const binding = await backend.bind({ local: host(address), ipv6Only });
    try {
      server.listener = await binding.listen({
        backlog: 128,
        options: defaultOptions(),
        changed: new Set(),
        onConnection: (c) => {
          server.#accepted.push(c);
          server.#waiter?.();
        },
        onError: (e) => server.errors.push(e),
      });
    } catch (error) {
      binding.close();
      throw error;
    }
    return server;
  }

  get port(): number {
    return this.listener.localAddress.port;
  }

  async next(): Promise<BackendConnection> {
    if (this.#accepted.length === 0) {
      // As the core does when the guest accepts: a backend may wait for it.
      this.listener.demand?.();
      await within(new Promise<void>((resolve) => (this.#waiter = resolve)), "accept a connection");
      this.#waiter = undefined;
    }
    return this.#accepted.shift()!;
  }

  close(): void {
    this.listener?.close();
    for (const c of this.#accepted) c.close();
  }
}

function connect(
  backend: TcpBackend,
  address: string,
  port: number,
  binding?: BackendBinding,
): Promise<BackendConnection> {
  return backend.connect({
    remote: host(address, port),
    binding,
    options: defaultOptions(),
    changed: new Set(),
  });
}

/** Connects a raw node:net socket; rejects with its error code. */
function rawConnect(address: string, port: number): Promise<net.Socket> {
  return within(
    new Promise((resolve, reject) => {
      const socket = net.connect({ host: address, port, allowHalfOpen: true });
      socket.once("connect", () => {
        socket.off("error", reject);
        socket.on("error", () => {});
        resolve(socket);
      });
      socket.once("error", (error) => {
        socket.destroy();
        reject(error);
      });
    }),
    `raw connect to ${address}:${port}`,
  );
}

async function rawConnectError(address: string, port: number): Promise<string> {
  try {
    const socket = await rawConnect(address, port);
    socket.destroy();
  } catch (error) {
    return String((error as { code?: unknown }).code);
  }
  return "connected";
}

function once(emitter: net.Socket | net.Server, event: string, what: string): Promise<unknown[]> {
  return within(new Promise((resolve) => emitter.once(event, (...args) => resolve(args))), what);
}

/** One /proc/net/tcp row: local port, state (hex) and keep-alive timer. */
export interface TcpRow {
  localPort: number;
  remotePort: number;
  state: string;
  timer: number;
  ticks: number;
}

/** Reads Linux's TCP socket table, or `undefined` where there is none. */
export function tcpTable(): TcpRow[] | undefined {
  const rows: TcpRow[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 6) continue;
      const [timer, ticks] = f[5].split(":");
      rows.push({
        localPort: parseInt(f[1].split(":")[1], 16),
        remotePort: parseInt(f[2].split(":")[1], 16),
        state: f[3],
        timer: parseInt(timer, 16),
        ticks: parseInt(ticks, 16),
      });
    }
  }
  return rows;
}

/** How a backend suite is set up. */
export interface SuiteOptions {
  /** The factory's name as tests print it, e.g. `createNodeBackend()`. */
  label: string;
  /** Makes the backend. */
  create: () => TcpBackend;
  /** Why IPv6 sockets cannot be v6-only here, or `false` when they can. */
  noIpv6Only: string | false;
  /** Why a connect cannot be given up here, or `false` when it can. */
  noConnectAbort?: string | false;
  /** Why its connections have no writeBorrowed, or `false` when they have it (checked). */
  noWriteBorrowed?: string | false;
}

/** Registers the backend contract tests. */
export function backendSuite(
  { label, create, noIpv6Only, noConnectAbort = false, noWriteBorrowed = false }: SuiteOptions,
): void {
  it(`${label}.connect() gives the attempt up when its signal aborts, and rejects`, { skip: noConnectAbort }, async () => {
    const backend = create();
    const server = await Server.open(backend);
    try {
      for (let i = 0; i < 10; i++) {
        const abort = new AbortController();
        const attempt = backend.connect({
          remote: host("127.0.0.1", server.port),
          options: defaultOptions(),
          changed: new Set(),
          signal: abort.signal,
        });
        abort.abort();
        const outcome = await within(
          attempt.then((c) => (c.close(), "connected"), () => "rejected"),
          "the abandoned connect to settle",
        );
        assert.equal(outcome, "rejected", `attempt ${i}`);
      }
      const aborted = new AbortController();
      aborted.abort();
      await assert.rejects(
        within(
          backend.connect({ remote: host("127.0.0.1", server.port), options: defaultOptions(), changed: new Set(), signal: aborted.signal }),
          "a connect with an aborted signal",
        ),
      );
    } finally {
      server.close();
    }
  });

  it(`${label}.bind() resolves port 0 synchronously`, () => {
    const backend = create();
    const result = backend.bind({ local: host("127.0.0.1"), ipv6Only: true });
    assert.ok(!(result instanceof Promise), "bind() should not return a promise on success");
    try {
      assert.equal(result.localAddress.family, "ipv4");
      assert.equal(result.localAddress.address, "127.0.0.1");
      assert.ok(result.localAddress.port > 0, `port is ${result.localAddress.port}`);
    } finally {
      result.close();
    }
  });

  it(`${label}.bind() reports address-in-use for a port with a listener`, async () => {
    const raw = net.createServer();
    try {
      raw.listen(0, "127.0.0.1");
      await once(raw, "listening", "raw server listening");
      const port = (raw.address() as net.AddressInfo).port;
      const error = await bindError(create(), "127.0.0.1", port);
      assert.equal(error.payload, "address-in-use");
    } finally {
      raw.close();
    }
  });

  it(`${label}.bind() reports address-not-bindable for a non-local address`, async () => {
    const error = await bindError(create(), "192.0.2.1", 0);
    assert.equal(error.payload, "address-not-bindable");
  });

  it(`${label}.bind() refuses peers while bound but not listening`, async () => {
    const binding = await bind(create(), "127.0.0.1");
    try {
      assert.equal(await rawConnectError("127.0.0.1", binding.localAddress.port), "ECONNREFUSED");
    } finally {
      binding.close();
    }
  });

  it(`${label}.bind() is not blocked by a TIME_WAIT socket on the port`, async () => {
    const backend = create();
    let server: Server | undefined = await Server.open(backend);
    const port = server.port;
    let peer: net.Socket | undefined;
    let accepted: BackendConnection | undefined;
    let again: BackendBinding | undefined;
    let listener: BackendListener | undefined;
    try {
      peer = await rawConnect("127.0.0.1", port);
      const peerEnded = once(peer, "end", "peer sees our FIN");
      accepted = await server.next();
      const rec = new Recorder();
      accepted.start(rec);
      // Our side closes first, so our port is the one left in TIME_WAIT.
      accepted.shutdown("send");
      await peerEnded;
      peer.end();
      await rec.until(() => rec.ended, "our side sees the peer's FIN");
      accepted.close();
      server.close();
      server = undefined;
      if (tcpTable() !== undefined) {
        const deadline = performance.now() + DEADLINE_MS;
        while (!tcpTable()!.some((r) => r.localPort === port && r.state === "06")) {
          assert.ok(performance.now() < deadline, "no TIME_WAIT socket appeared on the port");
          await turn();
        }
      }
      again = await bind(backend, "127.0.0.1", port);
      assert.equal(again.localAddress.port, port);
      listener = await again.listen({
        backlog: 8,
        options: defaultOptions(),
        changed: new Set(),
        onConnection: (c) => c.close(),
        onError: () => {},
      });
      assert.equal(listener.localAddress.port, port);
    } finally {
      peer?.destroy();
      accepted?.close();
      server?.close();
      listener?.close();
      again?.close();
    }
  });

  it(`${label}.connect() from a binding originates from its address and port`, async () => {
    const backend = create();
    const server = await Server.open(backend);
    const binding = await bind(backend, "127.0.0.1");
    const local = binding.localAddress;
    let client: BackendConnection | undefined;
    try {
      client = await connect(backend, "127.0.0.1", server.port, binding);
      const accepted = await server.next();
      assert.deepEqual(
        { address: client.localAddress.address, port: client.localAddress.port },
        { address: "127.0.0.1", port: local.port },
      );
      assert.equal(accepted.remoteAddress.port, local.port);
      assert.equal(accepted.remoteAddress.address, "127.0.0.1");
    } finally {
      client?.close();
      binding.close();
      server.close();
    }
  });

  for (const address of ["127.0.0.1", "::1"]) {
    it(`${label}.listen() accepts and echoes both ways over ${address}`, async () => {
      const backend = create();
      const server = await Server.open(backend, address);
      let client: BackendConnection | undefined;
      try {
        client = await connect(backend, address, server.port);
        const accepted = await server.next();
        const family = address.includes(":") ? "ipv6" : "ipv4";
        assert.equal(client.localAddress.family, family);
        assert.equal(accepted.remoteAddress.family, family);
        assert.equal(accepted.remoteAddress.port, client.localAddress.port);
        assert.equal(client.remoteAddress.port, server.port);
        assert.equal(client.localAddress.address, address);
        assert.equal(accepted.remoteAddress.address, address);
        const atServer = new Recorder();
        const atClient = new Recorder();
        accepted.start(atServer);
        client.start(atClient);
        const size = 256 * 1024;
        client.write(pattern(size));
        await atServer.until(() => atServer.bytes >= size, "server receives the request");
        assertPattern(atServer.chunks, size);
        for (const chunk of atServer.chunks) accepted.write(chunk);
        await atClient.until(() => atClient.bytes >= size, "client receives the echo");
        assertPattern(atClient.chunks, size);
        assert.equal(atServer.failure, undefined);
        assert.equal(atClient.failure, undefined);
      } finally {
        client?.close();
        server.close();
      }
    });
  }

  it(`${label}.listen() keeps a connection's data until start()`, async () => {
    const backend = create();
    const server = await Server.open(backend);
    let peer: net.Socket | undefined;
    try {
      peer = await rawConnect("127.0.0.1", server.port);
      const finished = once(peer, "finish", "peer flushes and ends");
      peer.end("early bytes");
      const accepted = await server.next();
      await finished;
      // Give a wrongly flowing socket every chance to emit before start().
      await turn();
      await turn();
      const rec = new Recorder();
      accepted.start(rec);
      await rec.until(() => rec.ended, "data and end after start");
      assert.equal(rec.text(), "early bytes");
    } finally {
      peer?.destroy();
      server.close();
    }
  });

  it(`${label} connections keep their addresses after the peer resets them, before or after start()`, async () => {
    const backend = create();
    const server = await Server.open(backend);
    const accepted: BackendConnection[] = [];
    const peers: net.Socket[] = [];
    try {
      for (const resetBeforeStart of [true, false]) {
        const peer = await rawConnect("127.0.0.1", server.port);
        peers.push(peer);
        const peerPort = peer.localPort;
        const connection = await server.next();
        accepted.push(connection);
        const rec = new Recorder();
        const closed = once(peer, "close", "the peer resets");
        if (resetBeforeStart) {
          peer.resetAndDestroy();
          await closed;
          connection.start(rec);
        } else {
          connection.start(rec);
          peer.resetAndDestroy();
          await closed;
        }
        await rec.until(() => rec.failure !== undefined || rec.ended, "the reset reaches the connection");
        const when = resetBeforeStart ? "reset before start()" : "reset after start()";
        assert.deepEqual(connection.localAddress, host("127.0.0.1", server.port), when);
        assert.deepEqual(connection.remoteAddress, host("127.0.0.1", peerPort), when);
      }
    } finally {
      for (const c of accepted) c.close();
      for (const p of peers) p.destroy();
      server.close();
    }
  });

  it(`${label}.flush() answers false while bytes wait, and a reset then brings an error, never a drain`, async () => {
    const backend = create();
    const server = await Server.open(backend);
    let peer: net.Socket | undefined;
    let connection: BackendConnection | undefined;
    try {
      peer = await rawConnect("127.0.0.1", server.port);
      // The peer reads nothing: the bytes back up on our side.
      peer.pause();
      connection = await server.next();
      const rec = new Recorder();
      connection.start(rec);
      const chunk = new Uint8Array(1 << 20);
      for (let n = 1; connection.write(chunk); n++) assert.ok(n < 64, "the peer never backed up");
      if (connection.flush) assert.equal(connection.flush(), false, "flush() while bytes wait");
      const closed = once(peer, "close", "the peer resets");
      peer.resetAndDestroy();
      await closed;
      await rec.until(() => rec.failure !== undefined, "the reset reaches the connection");
      assert.equal(rec.drains, 0, "a drain for bytes that never left");
    } finally {
      connection?.close();
      peer?.destroy();
      server.close();
    }
  });

  it(`${label}.shutdown() "send" delivers every byte, then end, while the peer can still send`, async () => {
    const backend = create();
    const server = await Server.open(backend);
    let client: BackendConnection | undefined;
    try {
      client = await connect(backend, "127.0.0.1", server.port);
      const accepted = await server.next();
      const atServer = new Recorder();
      const atClient = new Recorder();
      accepted.start(atServer);
      client.start(atClient);
      const size = 4 * 1024 * 1024;
      const data = pattern(size);
      for (let offset = 0; offset < size; offset += 65536) {
        client.write(data.subarray(offset, offset + 65536));
      }
      client.shutdown("send");
      client.shutdown("send");
      await atServer.until(() => atServer.ended, "server sees end", 30_000);
      assert.equal(atServer.bytesAtEnd, size, "end came before the last byte");
      assertPattern(atServer.chunks, size);
      accepted.write(new TextEncoder().encode("reply after FIN"));
      accepted.shutdown("send");
      await atClient.until(() => atClient.ended, "client sees the reply and end");
      assert.equal(atClient.text(), "reply after FIN");
      assert.equal(atClient.failure, undefined);
      assert.equal(atServer.failure, undefined);
    } finally {
      client?.close();
      server.close();
    }
  });

  // Connects, lets `write` send the pattern through writeBorrowed while the
  // server does not read yet, then checks what the server gets: every byte,
  // in order, whatever the caller did with its arrays after each call.
  const borrowedWritesArrive = async (
    write: (writeBorrowed: (chunk: Uint8Array) => boolean, data: Uint8Array) => void,
    size: number,
  ): Promise<void> => {
    const backend = create();
    const server = await Server.open(backend);
    let client: BackendConnection | undefined;
    try {
      client = await connect(backend, "127.0.0.1", server.port);
      assert.equal(typeof client.writeBorrowed, "function");
      const accepted = await server.next();
      const atServer = new Recorder();
      client.start(new Recorder());
      write(client.writeBorrowed!.bind(client), pattern(size));
      client.shutdown("send");
      accepted.start(atServer);
      await atServer.until(() => atServer.ended, "server sees end", 30_000);
      assert.equal(atServer.bytesAtEnd, size);
      assertPattern(atServer.chunks, size);
    } finally {
      client?.close();
      server.close();
    }
  };

  it(`${label}.writeBorrowed() copies what the OS does not take at once: a caller reusing its array loses nothing`, {
    skip: noWriteBorrowed,
  }, async () => {
    // 8 MiB while the server does not read: the kernel's buffers fill, so
    // most writes are partial or queued behind one.
    await borrowedWritesArrive((writeBorrowed, data) => {
      const scratch = new Uint8Array(65536);
      let stalled = false;
      for (let offset = 0; offset < data.length; offset += scratch.length) {
        scratch.set(data.subarray(offset, offset + scratch.length));
        if (!writeBorrowed(scratch)) stalled = true;
        scratch.fill(0xee);
      }
      assert.ok(stalled, "the writes never backed up, so nothing was left to copy");
    }, 8 * 1024 * 1024);
  });

  // Sizes around the backends' buffer sizes, repeated while the server does
  // not read, so that writes land behind pending ones.
  const MIXED_SIZES = [1, 100, 65535, 65537, 3, 1048576 + 3, 65536, 7, 2 * 1048576 + 1, 1];

  it(`${label}.writeBorrowed() keeps the order of writes from 1 byte to over 1 MiB, whatever it queues them in`, {
    skip: noWriteBorrowed,
  }, async () => {
    await borrowedWritesArrive((writeBorrowed, data) => {
      const scratch = new Uint8Array(2 * 1048576 + 1);
      for (let offset = 0, i = 0; offset < data.length; i++) {
        const n = MIXED_SIZES[i % MIXED_SIZES.length];
        scratch.set(data.subarray(offset, offset + n));
        writeBorrowed(scratch.subarray(0, n));
        scratch.fill(0xee);
        offset += n;
      }
    }, 4 * MIXED_SIZES.reduce((a, b) => a + b));
  });

  it(`${label}.pause() stops reading so that the peer's writes back up`, async () => {
    const backend = create();
    const server = await Server.open(backend);
    let peer: net.Socket | undefined;
    try {
      peer = await rawConnect("127.0.0.1", server.port);
      const accepted = await server.next();
      const rec = new Recorder();
      accepted.start(rec);
      peer.write("before pause");
      await rec.until(() => rec.bytes === 12, "data flows before pause");
      accepted.pause();
      const before = rec.bytes;
      const written = await writeUntilStalled(peer);
      assert.equal(rec.bytes, before, "data was delivered while paused");
      accepted.resume();
      await rec.until(() => rec.bytes === before + written, "all bytes after resume", 30_000);
      assert.equal(rec.failure, undefined);
    } finally {
      peer?.destroy();
      server.close();
    }
  });

  it(`${label}.pause() called from inside data(), as the core does once its window is full, stops reading`, async () => {
    const backend = create();
    const server = await Server.open(backend);
    let peer: net.Socket | undefined;
    try {
      peer = await rawConnect("127.0.0.1", server.port);
      const accepted = await server.next();
      const window = 256 * 1024;
      // The core's receive window, then a pause from within the delivery.
      let full = true;
      const rec = new (class extends Recorder {
        override data(chunk: Uint8Array): void {
          super.data(chunk);
          if (full && this.bytes >= window) accepted.pause();
        }
      })();
      accepted.start(rec);
      const written = await writeUntilStalled(peer);
      // The window plus the one read under way (at most 1 MiB on any backend).
      assert.ok(rec.bytes <= window + 1024 * 1024, `${rec.bytes} bytes delivered after the pause`);
      full = false;
      accepted.resume();
      await rec.until(() => rec.bytes === written, "all bytes after resume", 30_000);
      assert.equal(rec.failure, undefined);
    } finally {
      peer?.destroy();
      server.close();
    }
  });

  it(`${label}.connect() reports connection-refused for a closed port`, async () => {
    const backend = create();
    const binding = await bind(backend, "127.0.0.1");
    const port = binding.localAddress.port;
    binding.close();
    await assert.rejects(
      within(connect(backend, "127.0.0.1", port), "connect to a closed port"),
      (error: unknown) => error instanceof NetworkError && error.payload === "connection-refused",
    );
  });

  it(`${label}.close() is idempotent and delivers no events afterwards`, async () => {
    const backend = create();
    const server = await Server.open(backend);
    let client: BackendConnection | undefined;
    try {
      client = await connect(backend, "127.0.0.1", server.port);
      const accepted = await server.next();
      const atServer = new Recorder();
      const atClient = new Recorder();
      accepted.start(atServer);
      client.start(atClient);
      client.write(new TextEncoder().encode("hello"));
      await atServer.until(() => atServer.bytes === 5, "server receives hello");
      client.close();
      client.close();
      // The peer talks to the closed side, which must stay silent.
      accepted.write(pattern(1024));
      accepted.shutdown("send");
      await atServer.until(
        () => atServer.ended || atServer.failure !== undefined,
        "server sees the close",
      );
      await turn();
      await turn();
      assert.equal(atClient.events, 0);
      client.write(pattern(16));
      client.pause();
      client.resume();
      client.shutdown("send");
      assert.equal(atClient.events, 0);
    } finally {
      client?.close();
      server.close();
      server.close();
    }
  });

  it(`${label}.bind() with ipv6Only refuses IPv4 peers on "::"`, { skip: noIpv6Only }, async () => {
    const server = await Server.open(create(), "::", true);
    try {
      assert.equal(await rawConnectError("127.0.0.1", server.port), "ECONNREFUSED");
      const peer = await rawConnect("::1", server.port);
      peer.destroy();
    } finally {
      server.close();
    }
  });

  it(
    `${label}.connect() applies the changed options to the new socket`,
    { skip: tcpTable() === undefined ? "needs Linux's /proc/net/tcp" : false },
    async () => {
      const backend = create();
      const server = await Server.open(backend);
      let client: BackendConnection | undefined;
      try {
        const options = defaultOptions();
        options.keepAliveEnabled = true;
        client = await backend.connect({
          remote: host("127.0.0.1", server.port),
          options,
          changed: new Set<TcpOptionName>(["keepAliveEnabled"]),
        });
        const port = client.localAddress.port;
        const row = tcpTable()!.find((r) => r.localPort === port && r.remotePort === server.port);
        assert.ok(row, "client socket is in /proc/net/tcp");
        assert.equal(row.timer, 2, "keep-alive timer is not armed");
      } finally {
        client?.close();
        server.close();
      }
    },
  );

  it(`${label}.setOption() applies exactly the options in realOptions`, async () => {
    const backend = create();
    const server = await Server.open(backend);
    let client: BackendConnection | undefined;
    try {
      client = await connect(backend, "127.0.0.1", server.port);
      const accepted = await server.next();
      accepted.start(new Recorder());
      const values = defaultOptions();
      values.keepAliveIdleTime = 30n * 1_000_000_000n;
      values.keepAliveEnabled = true;
      const names = Object.keys(values) as TcpOptionName[];
      const applied = names.filter((name) => client!.setOption(name, values[name]));
      assert.deepEqual(new Set(applied), new Set(backend.realOptions));
      assert.ok(backend.realOptions.has("keepAliveEnabled"));
      const table = tcpTable();
      if (table !== undefined) {
        // The kernel arms the keep-alive timer (timer kind 2) of an idle socket.
        const row = table.find((r) =>
          r.localPort === client!.localAddress.port && r.remotePort === server.port
        );
        assert.ok(row, "client socket is in /proc/net/tcp");
        assert.equal(row.timer, 2, "keep-alive timer is not armed");
        // ticks are USER_HZ (100/s) until the first probe.
        if (backend.realOptions.has("keepAliveIdleTime")) {
          assert.ok(row.ticks <= 3000, `timer ${row.ticks}`);
        } else assert.ok(row.ticks > 3000, `timer ${row.ticks}`);
      }
    } finally {
      client?.close();
      server.close();
    }
  });
}
