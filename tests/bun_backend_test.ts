// Tests of the Bun backend through the TcpBackend interface, on loopback.
// Outside Bun the whole suite is skipped: runtimes/bun.ts imports bun:ffi,
// so it is only ever loaded dynamically, from inside a test, under Bun.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type {
  BackendBinding,
  BackendConnection,
  BackendListener,
  ConnectionSink,
  HostAddress,
  IpFamily,
  TcpBackend,
  TcpOptionName,
  TcpOptions,
} from "../core/backend.ts";
import type { NetworkError } from "../core/errors.ts";
import { backendSuite } from "./_backend_suite.ts";

declare const Bun: unknown;

const IN_BUN = typeof Bun !== "undefined";
const DEADLINE_MS = 5000;
// Above every deadline below, so that a deadline's message is what fails a test.
const SLOW = { timeout: 30_000 };
// Raw socket calls (options, the TIME_WAIT probe) go through glibc's libc.so.6.
const ON_LINUX = (globalThis as { process?: { platform?: string } }).process?.platform === "linux";
const LINUX_ONLY = { ...SLOW, skip: ON_LINUX ? false : "raw socket calls need Linux" };

type BunModule = { createBunBackend(): TcpBackend };
type SockoptModule = {
  readOption(fd: number, v6: boolean, name: TcpOptionName): number | undefined;
};
type LibcModule = {
  LINUX: { AF_INET: number };
  tcpSocket(family: number): number;
  encodeSockaddr(f: number, a: string, p: number, fl: number, s: number): [Uint8Array, number];
  bindFd(fd: number, addr: Uint8Array, len: number): number;
  closeFd(fd: number): void;
};

// Non-literal specifiers keep deno's type checker away from bun:ffi.
const BUN_SPEC = "../runtimes/bun.ts";
const SOCKOPT_SPEC = "../runtimes/_bun_sockopt.ts";
const LIBC_SPEC = "../runtimes/_bun_libc.ts";

let backendPromise: Promise<TcpBackend> | undefined;
function backend(): Promise<TcpBackend> {
  backendPromise ??= (import(BUN_SPEC) as Promise<BunModule>).then((m) => m.createBunBackend());
  return backendPromise;
}

function sockopt(): Promise<SockoptModule> {
  return import(SOCKOPT_SPEC) as Promise<SockoptModule>;
}

/**
 * Binds 127.0.0.1:port WITHOUT SO_REUSEADDR and releases it again.
 *
 * @returns 0 on success or the negative errno (-98 while a TIME_WAIT holds it).
 */
async function bindWithoutReuse(port: number): Promise<number> {
  const c = await (import(LIBC_SPEC) as Promise<LibcModule>);
  const fd = c.tcpSocket(c.LINUX.AF_INET);
  assert.ok(fd >= 0);
  try {
    return c.bindFd(fd, ...c.encodeSockaddr(c.LINUX.AF_INET, "127.0.0.1", port, 0, 0));
  } finally {
    c.closeFd(fd);
  }
}

// ---------------------------------------------------------------------------
// Waiting on events with a deadline

const waiters = new Set<() => void>();
function notify(): void {
  for (const w of [...waiters]) w();
}

/** Resolves once `pred()` holds, re-checked on every socket event. */
function until(pred: () => boolean, what: string, ms = DEADLINE_MS): Promise<void> {
  if (pred()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (!pred()) return;
      waiters.delete(check);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`Timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    waiters.add(check);
  });
}

/** Resolves `true` if `pred()` becomes true within `ms`, `false` otherwise. */
async function within(pred: () => boolean, ms: number): Promise<boolean> {
  try {
    await until(pred, "condition", ms);
    return true;
  } catch {
    return false;
  }
}

function withDeadline<T>(p: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A sink that records everything, for assertions. */
class Recorder implements ConnectionSink {
  chunks: Uint8Array[] = [];
  bytes = 0;
  ended = false;
  drains = 0;
  failure: NetworkError | undefined;
  events: string[] = [];

  data(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
    this.events.push("data");
    notify();
  }
  end(): void {
    this.ended = true;
    this.events.push("end");
    notify();
  }
  drain(): void {
    this.drains++;
    this.events.push("drain");
    notify();
  }
  error(error: NetworkError): void {
    this.failure = error;
    this.events.push("error");
    notify();
  }
  text(): string {
    return new TextDecoder().decode(concat(this.chunks));
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Fixtures: everything opened is registered and closed in `finally`

class Scope {
  #closers: (() => void)[] = [];
  add<T extends { close(): void }>(x: T): T {
    this.#closers.push(() => x.close());
    return x;
  }
  close(): void {
    for (const c of this.#closers.reverse()) {
      try {
        c();
      } catch {
        // Closing is best effort in cleanup.
      }
    }
  }
}

function loopback(family: IpFamily, port = 0): HostAddress {
  return { family, address: family === "ipv6" ? "::1" : "127.0.0.1", port };
}

const NO_CHANGES: ReadonlySet<TcpOptionName> = new Set();
const DEFAULTS: TcpOptions = {
  keepAliveEnabled: false,
  keepAliveIdleTime: 7200_000_000_000n,
  keepAliveInterval: 75_000_000_000n,
  keepAliveCount: 9,
  hopLimit: 64,
  receiveBufferSize: 131072n,
  sendBufferSize: 16384n,
};

async function bind(b: TcpBackend, local: HostAddress, scope: Scope): Promise<BackendBinding> {
  return scope.add(await b.bind({ local, ipv6Only: true }));
}

interface Server {
  listener: BackendListener;
  accepted: BackendConnection[];
  address: HostAddress;
}

async function listen(
  b: TcpBackend,
  family: IpFamily,
  scope: Scope,
  options: TcpOptions = DEFAULTS,
  changed: ReadonlySet<TcpOptionName> = NO_CHANGES,
): Promise<Server> {
  const binding = await bind(b, loopback(family), scope);
  const accepted: BackendConnection[] = [];
  const listener = scope.add(
    await binding.listen({
      backlog: 16,
      options,
      changed,
      onConnection: (c) => {
        accepted.push(scope.add(c));
        notify();
      },
      onError: () => {},
    }),
  );
  return { listener, accepted, address: listener.localAddress };
}

async function connect(
  b: TcpBackend,
  remote: HostAddress,
  scope: Scope,
  binding?: BackendBinding,
): Promise<BackendConnection> {
  const c = await withDeadline(
    b.connect({ remote, binding, options: DEFAULTS, changed: NO_CHANGES }),
    `a connection to port ${remote.port}`,
  );
  return scope.add(c);
}

async function accept(server: Server, index = 0): Promise<BackendConnection> {
  await until(() => server.accepted.length > index, "an accepted connection");
  return server.accepted[index];
}

/** A connection over 127.0.0.1, both ends started with a Recorder. */
async function startedPair(b: TcpBackend, scope: Scope): Promise<{
  server: Server;
  client: BackendConnection;
  clientSink: Recorder;
  conn: BackendConnection;
  serverSink: Recorder;
}> {
  const server = await listen(b, "ipv4", scope);
  const client = await connect(b, server.address, scope);
  const clientSink = new Recorder();
  client.start(clientSink);
  const conn = await accept(server);
  const serverSink = new Recorder();
  conn.start(serverSink);
  return { server, client, clientSink, conn, serverSink };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(withDeadline(p, `a ${code} failure`), (e: unknown) => {
    assert.equal((e as NetworkError).payload, code);
    return true;
  });
}

function throwsWith(f: () => unknown, code: string): void {
  assert.throws(f, (e: unknown) => {
    assert.equal((e as NetworkError).payload, code);
    return true;
  });
}

const encode = (s: string): Uint8Array => new TextEncoder().encode(s);

function fdOf(x: BackendConnection | BackendListener): number {
  return (x as unknown as { fd: number }).fd;
}

// ---------------------------------------------------------------------------

describe("createBunBackend()", { skip: IN_BUN ? false : "needs Bun" }, () => {
  it("createBunBackend() is named bun and applies every option for real", LINUX_ONLY, async () => {
    const b = await backend();
    assert.equal(b.name, "bun");
    assert.deepEqual(
      [...b.realOptions].sort(),
      [
        "hopLimit",
        "keepAliveCount",
        "keepAliveEnabled",
        "keepAliveIdleTime",
        "keepAliveInterval",
        "receiveBufferSize",
        "sendBufferSize",
      ],
    );
  });

  it("createBunBackend().bind() resolves port 0 at bind, synchronously", SLOW, async () => {
    const b = await backend();
    const scope = new Scope();
    try {
      for (const family of ["ipv4", "ipv6"] as const) {
        const result = b.bind({ local: loopback(family), ipv6Only: true });
        assert.ok(!(result instanceof Promise), "bind should not return a promise");
        scope.add(result);
        assert.equal(result.localAddress.family, family);
        assert.equal(result.localAddress.address, family === "ipv6" ? "::1" : "127.0.0.1");
        assert.ok(result.localAddress.port > 0, "port 0 should be resolved");
      }
    } finally {
      scope.close();
    }
  });

  it("createBunBackend().bind() reports address-in-use for a taken port", SLOW, async () => {
    const b = await backend();
    const scope = new Scope();
    try {
      const server = await listen(b, "ipv4", scope);
      throwsWith(() => b.bind({ local: server.address, ipv6Only: true }), "address-in-use");
      const server6 = await listen(b, "ipv6", scope);
      throwsWith(() => b.bind({ local: server6.address, ipv6Only: true }), "address-in-use");
    } finally {
      scope.close();
    }
  });

  it("createBunBackend().bind() reports address-not-bindable for 192.0.2.1", SLOW, async () => {
    const b = await backend();
    throwsWith(
      () => b.bind({ local: { family: "ipv4", address: "192.0.2.1", port: 0 }, ipv6Only: true }),
      "address-not-bindable",
    );
  });

  it(
    "createBunBackend().bind() does not listen: a peer gets connection-refused",
    SLOW,
    async () => {
      const b = await backend();
      const scope = new Scope();
      try {
        for (const family of ["ipv4", "ipv6"] as const) {
          const binding = await bind(b, loopback(family), scope);
          await rejectsWith(
            b.connect({ remote: binding.localAddress, options: DEFAULTS, changed: NO_CHANGES }),
            "connection-refused",
          );
        }
      } finally {
        scope.close();
      }
    },
  );

  it(
    "createBunBackend().bind() is not blocked by a TIME_WAIT on the port",
    LINUX_ONLY,
    async () => {
      const b = await backend();
      const scope = new Scope();
      try {
        const server = await listen(b, "ipv4", scope);
        const port = server.address.port;
        const client = await connect(b, server.address, scope);
        const clientSink = new Recorder();
        client.start(clientSink);
        const conn = await accept(server);
        conn.start(new Recorder());
        // Our side closes first, so the TIME_WAIT lands on the listener's port.
        conn.close();
        await until(() => clientSink.ended, "the client to see the server's FIN");
        client.close();
        server.listener.close();
        // Proof that something (the TIME_WAIT) holds the port: a plain bind fails.
        assert.equal(await bindWithoutReuse(port), -98, "expected EADDRINUSE without SO_REUSEADDR");
        const again = await bind(b, loopback("ipv4", port), scope);
        assert.equal(again.localAddress.port, port);
        const listener = scope.add(
          await again.listen({
            backlog: 4,
            options: DEFAULTS,
            changed: NO_CHANGES,
            onConnection: (c) => c.close(),
            onError: () => {},
          }),
        );
        assert.equal(listener.localAddress.port, port);
      } finally {
        scope.close();
      }
    },
  );

  for (const family of ["ipv4", "ipv6"] as const) {
    it(
      `createBunBackend().connect() from a bound ${family} address and port keeps both`,
      SLOW,
      async () => {
        const b = await backend();
        const scope = new Scope();
        try {
          const server = await listen(b, family, scope);
          const binding = await bind(b, loopback(family), scope);
          const local = binding.localAddress;
          const client = await connect(b, server.address, scope, binding);
          assert.deepEqual(
            [client.localAddress.address, client.localAddress.port],
            [local.address, local.port],
          );
          const conn = await accept(server);
          assert.equal(conn.remoteAddress.port, local.port);
          assert.equal(conn.remoteAddress.address, local.address);
        } finally {
          scope.close();
        }
      },
    );
  }

  for (const family of ["ipv4", "ipv6"] as const) {
    const host = family === "ipv6" ? "::1" : "127.0.0.1";
    it(`createBunBackend().listen() accepts and echoes both ways over ${host}`, SLOW, async () => {
      const b = await backend();
      const scope = new Scope();
      try {
        const server = await listen(b, family, scope);
        const client = await connect(b, server.address, scope);
        const clientSink = new Recorder();
        client.start(clientSink);
        // Written before the server starts the connection: nothing may be lost.
        assert.equal(client.write(encode("ping")), true);
        const conn = await accept(server);
        assert.equal(conn.localAddress.port, server.address.port);
        assert.equal(conn.remoteAddress.port, client.localAddress.port);
        assert.equal(client.remoteAddress.address, host);
        const serverSink = new Recorder();
        conn.start(serverSink);
        await until(() => serverSink.bytes >= 4, "ping at the server");
        assert.equal(serverSink.text(), "ping");
        conn.write(encode("pong"));
        await until(() => clientSink.bytes >= 4, "pong at the client");
        assert.equal(clientSink.text(), "pong");
      } finally {
        scope.close();
      }
    });
  }

  it(
    "createBunBackend() connections deliver data and end that arrived before start()",
    SLOW,
    async () => {
      const b = await backend();
      const scope = new Scope();
      try {
        const server = await listen(b, "ipv4", scope);
        const client = await connect(b, server.address, scope);
        client.start(new Recorder());
        const payload = new Uint8Array(200_000).map((_, i) => i % 251);
        client.write(payload);
        client.shutdown("send");
        const conn = await accept(server);
        // Start late on purpose so that data and FIN reach the backend first.
        await new Promise((r) => setTimeout(r, 100));
        const sink = new Recorder();
        conn.start(sink);
        await until(() => sink.ended, "the early end");
        assert.deepEqual(concat(sink.chunks), payload);
        assert.equal(sink.events.at(-1), "end");
      } finally {
        scope.close();
      }
    },
  );

  it(
    "createBunBackend() shutdown('send') sends FIN after every queued byte and keeps receiving",
    SLOW,
    async () => {
      const b = await backend();
      const scope = new Scope();
      try {
        const server = await listen(b, "ipv4", scope);
        const client = await connect(b, server.address, scope);
        const clientSink = new Recorder();
        client.start(clientSink);
        const conn = await accept(server);
        const serverSink = new Recorder();
        conn.start(serverSink);
        const size = 4 << 20;
        const payload = new Uint8Array(size);
        for (let i = 0; i < size; i++) payload[i] = (i * 31 + (i >>> 12)) & 0xff;
        client.write(payload);
        client.shutdown("send");
        client.shutdown("send");
        await until(() => serverSink.ended, "the server to see FIN", 10_000);
        assert.equal(serverSink.bytes, size);
        assert.deepEqual(concat(serverSink.chunks), payload);
        assert.equal(serverSink.events.at(-1), "end");
        // The other direction still works.
        conn.write(encode("still here"));
        conn.shutdown("send");
        await until(() => clientSink.ended, "the client to see FIN");
        assert.equal(clientSink.text(), "still here");
        assert.equal(clientSink.failure, undefined);
        assert.equal(serverSink.failure, undefined);
      } finally {
        scope.close();
      }
    },
  );

  it(
    "createBunBackend() write() queues what the kernel does not take and calls drain()",
    SLOW,
    async () => {
      const b = await backend();
      const scope = new Scope();
      try {
        const server = await listen(b, "ipv4", scope);
        const client = await connect(b, server.address, scope);
        const clientSink = new Recorder();
        client.start(clientSink);
        const conn = await accept(server);
        const serverSink = new Recorder();
        conn.start(serverSink);
        conn.pause();
        const chunk = new Uint8Array(1 << 20).fill(7);
        let written = 0;
        let ok = true;
        while (ok && written < (256 << 20)) {
          ok = client.write(chunk);
          written += chunk.byteLength;
        }
        assert.equal(ok, false, "write() should report backpressure against a paused peer");
        assert.equal(clientSink.drains, 0);
        conn.resume();
        await until(() => clientSink.drains === 1, "drain()", 10_000);
        await until(() => serverSink.bytes === written, "every byte at the server", 10_000);
      } finally {
        scope.close();
      }
    },
  );

  it(
    "createBunBackend() pause() stops reading so that the peer's writes back up",
    SLOW,
    async () => {
      const b = await backend();
      const scope = new Scope();
      try {
        const server = await listen(b, "ipv4", scope);
        const client = await connect(b, server.address, scope);
        const clientSink = new Recorder();
        client.start(clientSink);
        const conn = await accept(server);
        const serverSink = new Recorder();
        conn.start(serverSink);
        conn.pause();
        const chunk = new Uint8Array(64 * 1024).fill(1);
        let written = 0;
        let backedUp = false;
        while (!backedUp) {
          assert.ok(written < (64 << 20), "the peer never backed up while paused");
          if (client.write(chunk)) {
            written += chunk.byteLength;
            continue;
          }
          written += chunk.byteLength;
          const drains = clientSink.drains;
          // A drain within the window means the bytes were still flowing.
          backedUp = !(await within(() => clientSink.drains > drains, 500));
        }
        assert.ok(
          serverSink.bytes <= 256 * 1024,
          `a paused connection received ${serverSink.bytes} bytes`,
        );
        conn.resume();
        await until(() => serverSink.bytes === written, "every byte after resume()", 10_000);
      } finally {
        scope.close();
      }
    },
  );

  it(
    "createBunBackend().connect() reports connection-refused for a closed port",
    SLOW,
    async () => {
      const b = await backend();
      const scope = new Scope();
      try {
        const binding = b.bind({ local: loopback("ipv4"), ipv6Only: true }) as BackendBinding;
        const port = binding.localAddress.port;
        binding.close();
        await rejectsWith(
          b.connect({ remote: loopback("ipv4", port), options: DEFAULTS, changed: NO_CHANGES }),
          "connection-refused",
        );
      } finally {
        scope.close();
      }
    },
  );

  it(
    "createBunBackend() setOption() really sets the options on the OS socket",
    LINUX_ONLY,
    async () => {
      const b = await backend();
      const { readOption } = await sockopt();
      const scope = new Scope();
      try {
        for (const family of ["ipv4", "ipv6"] as const) {
          const v6 = family === "ipv6";
          const server = await listen(b, family, scope);
          const client = await connect(b, server.address, scope);
          const fd = fdOf(client);
          assert.ok(fd >= 0);
          const set = <K extends TcpOptionName>(name: K, value: TcpOptions[K]): void =>
            assert.equal(client.setOption(name, value), true, `setOption(${name})`);
          set("hopLimit", 42);
          set("receiveBufferSize", 65536n);
          set("sendBufferSize", 65536n);
          set("keepAliveInterval", 7_000_000_000n);
          set("keepAliveCount", 5);
          set("keepAliveIdleTime", 30_500_000_000n);
          set("keepAliveEnabled", true);
          assert.equal(readOption(fd, v6, "hopLimit"), 42);
          assert.ok(readOption(fd, v6, "receiveBufferSize")! >= 65536);
          assert.ok(readOption(fd, v6, "sendBufferSize")! >= 65536);
          assert.equal(readOption(fd, v6, "keepAliveEnabled"), 1);
          assert.equal(readOption(fd, v6, "keepAliveIdleTime"), 30);
          // Enabling keep-alive must not reset what was set before it.
          assert.equal(readOption(fd, v6, "keepAliveInterval"), 7);
          assert.equal(readOption(fd, v6, "keepAliveCount"), 5);
          // Out-of-range values are clamped, not refused.
          set("receiveBufferSize", 0xffff_ffff_ffff_ffffn);
          set("keepAliveIdleTime", 1n);
          assert.equal(readOption(fd, v6, "keepAliveIdleTime"), 1);
        }
      } finally {
        scope.close();
      }
    },
  );

  it(
    "createBunBackend() applies changed options to listeners and new connections",
    LINUX_ONLY,
    async () => {
      const b = await backend();
      const { readOption } = await sockopt();
      const scope = new Scope();
      try {
        const options: TcpOptions = { ...DEFAULTS, hopLimit: 33, receiveBufferSize: 300_000n };
        const changed = new Set<TcpOptionName>(["hopLimit", "receiveBufferSize"]);
        const server = await listen(b, "ipv4", scope, options, changed);
        const lfd = fdOf(server.listener);
        assert.equal(readOption(lfd, false, "hopLimit"), 33);
        assert.ok(readOption(lfd, false, "receiveBufferSize")! >= 300_000);
        assert.equal(server.listener.setOption("hopLimit", 12), true);
        assert.equal(readOption(lfd, false, "hopLimit"), 12);
        const client = scope.add(
          await withDeadline(
            b.connect({ remote: server.address, options: { ...DEFAULTS, hopLimit: 99 }, changed }),
            "a connection",
          ),
        );
        assert.equal(readOption(fdOf(client), false, "hopLimit"), 99);
        server.listener.close();
        assert.equal(server.listener.setOption("hopLimit", 5), false);
      } finally {
        scope.close();
      }
    },
  );

  it("createBunBackend() shutdown('receive') stops delivering data", SLOW, async () => {
    const b = await backend();
    const scope = new Scope();
    try {
      const { client, clientSink, conn, serverSink } = await startedPair(b, scope);
      client.shutdown("receive");
      conn.write(encode("ignored"));
      // The send side still works; its round trip orders the check below.
      client.write(encode("hello"));
      await until(() => serverSink.bytes === 5, "hello at the server");
      conn.write(encode("more"));
      client.write(encode("!"));
      await until(() => serverSink.bytes === 6, "! at the server");
      assert.deepEqual(clientSink.events, []);
    } finally {
      scope.close();
    }
  });

  it("createBunBackend() shutdown('receive') then shutdown('send') keeps the descriptor, and every byte written still arrives", SLOW, async () => {
    const b = await backend();
    const scope = new Scope();
    try {
      const { client, clientSink, conn, serverSink } = await startedPair(b, scope);
      client.shutdown("receive");
      // Data the client no longer reads, in its kernel buffer before the FIN.
      assert.equal(conn.write(new Uint8Array(5000)), true);
      const data = new Uint8Array(1 << 20).map((_, i) => (i * 13 + (i >> 9)) & 255);
      client.write(data);
      client.shutdown("send");
      await until(() => serverSink.ended || serverSink.failure !== undefined, "the server to see the end", 10_000);
      assert.equal(serverSink.failure, undefined, "the server saw an error");
      assert.equal(serverSink.bytes, data.length);
      assert.deepEqual(concat(serverSink.chunks), data);
      assert.ok(fdOf(client) >= 0, "the descriptor stays open until close()");
      assert.deepEqual(clientSink.events, []);
    } finally {
      scope.close();
    }
  });

  it("createBunBackend() delivers at start() a drain owed from before it", SLOW, async () => {
    const b = await backend();
    const scope = new Scope();
    try {
      const server = await listen(b, "ipv4", scope);
      const client = await connect(b, server.address, scope);
      const clientSink = new Recorder();
      client.start(clientSink);
      const conn = await accept(server);
      // Not started: write until the kernel takes less, then let the peer read it all.
      let written = 0;
      for (let more = true; more;) {
        assert.ok(written < 64 << 20, "the peer never backed up");
        more = conn.write(new Uint8Array(1 << 20));
        written += 1 << 20;
      }
      assert.equal(conn.flush!(), false, "bytes are still queued");
      await until(() => clientSink.bytes === written, "the peer to read everything", 10_000);
      await until(() => conn.flush!(), "the queue to empty");
      const serverSink = new Recorder();
      conn.start(serverSink);
      assert.equal(serverSink.drains, 1, "the drain owed since the write");
    } finally {
      scope.close();
    }
  });

  it("createBunBackend().listen() gives the kernel the backlog asked for", LINUX_ONLY, async (t) => {
    const { execFileSync } = await import("node:child_process");
    const b = await backend();
    const scope = new Scope();
    try {
      const binding = await bind(b, loopback("ipv4"), scope);
      const listener = scope.add(
        await binding.listen({ backlog: 3, options: DEFAULTS, changed: NO_CHANGES, onConnection: (c) => c.close(), onError: () => {} }),
      );
      let line: string;
      try {
        // ss reports a listening socket's backlog as its Send-Q.
        line = execFileSync("ss", ["-ltnH", `sport = :${listener.localAddress.port}`], { encoding: "utf8" });
      } catch {
        t.skip("ss (iproute2) is not installed");
        return;
      }
      assert.equal(line.trim().split(/\s+/)[2], "3", `ss says: ${line.trim()}`);
    } finally {
      scope.close();
    }
  });

  it("createBunBackend() without libc applies an idle time set while keep-alive is on", LINUX_ONLY, async () => {
    // The fallback is for platforms without glibc; a child process fakes one.
    const { execFileSync } = await import("node:child_process");
    const fixture = new URL("./fixtures/bun_without_libc.ts", import.meta.url).pathname;
    const { execPath } = await import("node:process");
    const out = execFileSync(execPath, [fixture], { encoding: "utf8", timeout: 20_000 });
    assert.deepEqual(JSON.parse(out), { enabled: true, idle: true, keepAlive: 1, keepIdle: 30 });
  });

  it("createBunBackend() close() is idempotent and no events follow it", SLOW, async () => {
    const b = await backend();
    const scope = new Scope();
    try {
      const { server, client, clientSink, conn, serverSink } = await startedPair(b, scope);
      client.close();
      client.close();
      await until(() => serverSink.ended, "the server to see the close");
      conn.write(encode("after close"));
      conn.shutdown("send");
      // The peer's reset (or nothing) is what comes back; wait for a round trip.
      const second = await connect(b, server.address, scope);
      second.start(new Recorder());
      await accept(server, 1);
      assert.deepEqual(clientSink.events, []);
      client.write(encode("x"));
      assert.deepEqual(clientSink.events, []);
      assert.equal(client.setOption("hopLimit", 9), false);
      server.listener.close();
      server.listener.close();
      await rejectsWith(
        b.connect({ remote: server.address, options: DEFAULTS, changed: NO_CHANGES }),
        "connection-refused",
      );
    } finally {
      scope.close();
    }
  });
});

// The contract suite every backend passes, including the v6-only check.
const bunModule: BunModule | undefined = IN_BUN ? await (import(BUN_SPEC) as Promise<BunModule>) : undefined;

describe("runtimes/bun.ts contract", { skip: IN_BUN ? false : "needs Bun" }, () => {
  backendSuite({
    label: "createBunBackend()",
    create: () => bunModule!.createBunBackend(),
    noIpv6Only: false,
    noConnectAbort: "Bun.connect cannot be given up",
  });
});
