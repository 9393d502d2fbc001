// Tests of the in-memory virtual network: the backend contract (bind, listen,
// connect, data, backpressure, shutdown, close) and the fault injection API.
// Every wait is bounded; "nothing happens" is checked after a fixed number of
// macrotasks, which is exact here because the network only uses microtasks
// and zero-delay timers.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ConnectionSink, TcpOptions } from "../core/backend.ts";
import { NetworkError } from "../core/errors.ts";
import {
  type MemoryBinding,
  type MemoryConnection,
  type MemoryListener,
  MemoryNetwork,
} from "../core/memory_network.ts";

const OPTIONS: TcpOptions = {
  keepAliveEnabled: false,
  keepAliveIdleTime: 7200_000_000_000n,
  keepAliveInterval: 75_000_000_000n,
  keepAliveCount: 9,
  hopLimit: 64,
  receiveBufferSize: 131072n,
  sendBufferSize: 16384n,
};
const NO_CHANGES: ReadonlySet<keyof TcpOptions> = new Set();
const WAIT_MS = 3000;

function macrotasks(n: number): Promise<void> {
  let p = Promise.resolve();
  for (let i = 0; i < n; i++) p = p.then(() => new Promise<void>((r) => setTimeout(r, 0)));
  return p;
}

// Resolves when `pred` holds after some notify(), or fails after WAIT_MS.
class Signal {
  #waiters = new Set<() => void>();

  notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  until(pred: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pred()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`Timed out waiting for ${what}`));
      }, ms);
      this.#waiters.add(check);
    });
  }
}

function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class Recorder implements ConnectionSink {
  readonly signal = new Signal();
  chunks: Uint8Array[] = [];
  events: string[] = [];
  ends = 0;
  drains = 0;
  errors: NetworkError[] = [];
  onData: ((chunk: Uint8Array) => void) | undefined;

  data(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.events.push("data");
    this.onData?.(chunk);
    this.signal.notify();
  }
  end(): void {
    this.ends++;
    this.events.push("end");
    this.signal.notify();
  }
  drain(): void {
    this.drains++;
    this.events.push("drain");
    this.signal.notify();
  }
  error(error: NetworkError): void {
    this.errors.push(error);
    this.events.push("error");
    this.signal.notify();
  }

  get bytes(): number {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    return n;
  }

  text(): string {
    const all = new Uint8Array(this.bytes);
    let at = 0;
    for (const c of this.chunks) {
      all.set(c, at);
      at += c.length;
    }
    return new TextDecoder().decode(all);
  }

  until(pred: () => boolean, what: string): Promise<void> {
    return this.signal.until(pred, what);
  }
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function isCode(code: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof NetworkError, `expected a NetworkError, got ${String(e)}`);
    assert.equal(e.payload, code);
    return true;
  };
}

interface Server {
  binding: MemoryBinding;
  listener: MemoryListener;
  accepted: MemoryConnection[];
  signal: Signal;
  port: number;
}

function listen(
  net: MemoryNetwork,
  address = "127.0.0.1",
  port = 0,
  backlog = 16,
  options: TcpOptions = OPTIONS,
): Server {
  const family = address.includes(":") ? "ipv6" : "ipv4";
  const binding = net.backend.bind({ local: { family, address, port }, ipv6Only: true });
  const accepted: MemoryConnection[] = [];
  const signal = new Signal();
  const listener = binding.listen({
    backlog,
    options,
    changed: NO_CHANGES,
    onConnection(c) {
      accepted.push(c as MemoryConnection);
      signal.notify();
    },
    onError() {},
  });
  return { binding, listener, accepted, signal, port: listener.localAddress.port };
}

function connect(
  net: MemoryNetwork,
  port: number,
  address = "127.0.0.1",
  binding?: MemoryBinding,
): Promise<MemoryConnection> {
  const family = address.includes(":") ? "ipv6" : "ipv4";
  return net.backend.connect({
    remote: { family, address, port },
    binding,
    options: OPTIONS,
    changed: NO_CHANGES,
  });
}

interface Pair {
  server: Server;
  client: MemoryConnection;
  peer: MemoryConnection;
  c: Recorder;
  s: Recorder;
  close(): void;
}

// A listener, one connection, both ends started with recorders.
async function pair(net: MemoryNetwork, address = "127.0.0.1"): Promise<Pair> {
  const server = listen(net, address);
  const client = await within(connect(net, server.port, address), "connect");
  await server.signal.until(() => server.accepted.length === 1, "the accepted connection");
  const peer = server.accepted[0];
  const c = new Recorder();
  const s = new Recorder();
  client.start(c);
  peer.start(s);
  return {
    server,
    client,
    peer,
    c,
    s,
    close() {
      client.close();
      peer.close();
      server.listener.close();
    },
  };
}

function assertNoLeaks(net: MemoryNetwork): void {
  assert.deepEqual(net.stats, { connections: 0, bindings: 0, listeners: 0 });
}

describe("MemoryNetwork", () => {
  it("new MemoryNetwork() rejects bad local addresses and window sizes", () => {
    assert.throws(() => new MemoryNetwork({ localAddresses: ["localhost"] }), TypeError);
    assert.throws(() => new MemoryNetwork({ windowSize: -1 }), TypeError);
    assert.throws(() => new MemoryNetwork({ windowSize: 1.5 }), TypeError);
    const net = new MemoryNetwork();
    assert.equal(net.backend.name, "memory");
    assertNoLeaks(net);
  });

  it("MemoryNetwork.backend.realOptions lists all seven options and setOption() stores them", async () => {
    const net = new MemoryNetwork();
    assert.deepEqual(
      [...net.backend.realOptions].sort(),
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
    const p = await pair(net);
    try {
      assert.equal(p.client.setOption("hopLimit", 7), true);
      assert.equal(p.client.getOption("hopLimit"), 7);
      assert.equal(p.peer.getOption("hopLimit"), 64);
      assert.equal(p.server.listener.setOption("keepAliveEnabled", true), true);
      assert.equal(p.server.listener.getOption("keepAliveEnabled"), true);
      assert.throws(() => p.client.setOption("nope" as "hopLimit", 1), TypeError);
    } finally {
      p.close();
    }
    assertNoLeaks(net);
  });

  describe("bind", () => {
    it("MemoryNetwork.backend.bind() binds loopback and unspecified addresses of both families synchronously", () => {
      const net = new MemoryNetwork();
      const made: MemoryBinding[] = [];
      try {
        for (const address of ["127.0.0.1", "0.0.0.0", "::1", "::"]) {
          const family = address.includes(":") ? "ipv6" : "ipv4";
          const b = net.backend.bind({ local: { family, address, port: 0 }, ipv6Only: true });
          assert.ok(!(b instanceof Promise));
          made.push(b);
          assert.equal(b.localAddress.family, family);
          assert.equal(b.localAddress.address, address);
          assert.ok(b.localAddress.port >= 49152);
        }
        assert.equal(net.stats.bindings, 4);
      } finally {
        for (const b of made) b.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.bind() reports address-not-bindable for an address that is not local", () => {
      const net = new MemoryNetwork();
      for (
        const [family, address] of [
          ["ipv4", "10.0.0.1"],
          ["ipv6", "fe80::1"],
          ["ipv6", "::ffff:127.0.0.1"],
        ] as const
      ) {
        assert.throws(
          () => net.backend.bind({ local: { family, address, port: 0 }, ipv6Only: true }),
          isCode("address-not-bindable"),
        );
      }
      const custom = new MemoryNetwork({ localAddresses: ["10.0.0.2"] });
      const b = custom.backend.bind({
        local: { family: "ipv4", address: "10.0.0.2", port: 80 },
        ipv6Only: true,
      });
      b.close();
      assert.throws(
        () =>
          custom.backend.bind({ local: { family: "ipv4", address: "127.0.0.1", port: 0 }, ipv6Only: true }),
        isCode("address-not-bindable"),
      );
      assertNoLeaks(net);
      assertNoLeaks(custom);
    });

    it("MemoryNetwork.backend.bind() reports address-in-use for an overlapping address of the same family and port", () => {
      const net = new MemoryNetwork({ localAddresses: ["127.0.0.1", "127.0.0.2", "::1"] });
      const bind = (address: string, port: number): MemoryBinding =>
        net.backend.bind({
          local: { family: address.includes(":") ? "ipv6" : "ipv4", address, port },
          ipv6Only: true,
        });
      const a = bind("127.0.0.1", 4000);
      const held: MemoryBinding[] = [a];
      try {
        assert.throws(() => bind("127.0.0.1", 4000), isCode("address-in-use"));
        assert.throws(() => bind("0.0.0.0", 4000), isCode("address-in-use"));
        // A different specific address, or the other family, does not overlap.
        held.push(bind("127.0.0.2", 4000));
        held.push(bind("::1", 4000));
        held.push(bind("::", 4001));
        assert.throws(() => bind("::1", 4001), isCode("address-in-use"));
        // A listener holds its port just like a binding.
        const server = listen(net, "127.0.0.1", 4002);
        try {
          assert.throws(() => bind("127.0.0.1", 4002), isCode("address-in-use"));
        } finally {
          server.listener.close();
        }
        held.push(bind("127.0.0.1", 4002));
      } finally {
        for (const b of held) b.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.bind() picks ephemeral ports from 49152 and skips used ones", () => {
      const net = new MemoryNetwork();
      const bind = (port: number): MemoryBinding =>
        net.backend.bind({ local: { family: "ipv4", address: "127.0.0.1", port }, ipv6Only: true });
      const held = [bind(0)];
      try {
        assert.equal(held[0].localAddress.port, 49152);
        held.push(bind(49153));
        held.push(bind(0));
        assert.equal(held[2].localAddress.port, 49154);
      } finally {
        for (const b of held) b.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.bind() releases the port on close(), which is idempotent", () => {
      const net = new MemoryNetwork();
      const local = { family: "ipv6", address: "0:0:0:0:0:0:0:1", port: 5000 } as const;
      const b = net.backend.bind({ local, ipv6Only: true });
      assert.equal(b.localAddress.address, "::1");
      assert.equal(net.stats.bindings, 1);
      b.close();
      b.close();
      assert.equal(net.stats.bindings, 0);
      const again = net.backend.bind({ local, ipv6Only: true });
      again.close();
      assertNoLeaks(net);
    });
  });

  describe("listen", () => {
    it("MemoryNetwork.backend.bind().listen() hands each connection over asynchronously, never inside connect()", async () => {
      const net = new MemoryNetwork();
      const server = listen(net, "::1");
      let client: MemoryConnection | undefined;
      try {
        assert.equal(net.stats.listeners, 1);
        assert.equal(net.stats.bindings, 0);
        const pending = connect(net, server.port, "::1");
        assert.equal(server.accepted.length, 0);
        client = await within(pending, "connect");
        await server.signal.until(() => server.accepted.length === 1, "the accepted connection");
        const peer = server.accepted[0];
        assert.deepEqual(peer.localAddress, client.remoteAddress);
        assert.deepEqual(peer.remoteAddress, client.localAddress);
        assert.equal(peer.localAddress.port, server.port);
        peer.close();
      } finally {
        client?.close();
        server.listener.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.bind().listen() queues at most backlog connections while paused and refuses the rest", async () => {
      const net = new MemoryNetwork();
      const server = listen(net, "127.0.0.1", 0, 2);
      const clients: MemoryConnection[] = [];
      try {
        assert.equal(server.listener.backlog, 2);
        server.listener.pause();
        clients.push(await within(connect(net, server.port), "connect 1"));
        clients.push(await within(connect(net, server.port), "connect 2"));
        await assert.rejects(within(connect(net, server.port), "connect 3"), isCode("connection-refused"));
        await macrotasks(3);
        assert.equal(server.accepted.length, 0);
        assert.equal(net.stats.connections, 4);
        server.listener.resume();
        await server.signal.until(() => server.accepted.length === 2, "two accepted connections");
        // Handed over: the backlog has room again.
        clients.push(await within(connect(net, server.port), "connect 4"));
        await server.signal.until(() => server.accepted.length === 3, "three accepted connections");
      } finally {
        for (const c of [...clients, ...server.accepted]) c.close();
        server.listener.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.bind().listen() inherits the listener's options on accepted connections", async () => {
      const net = new MemoryNetwork();
      const server = listen(net, "127.0.0.1", 0, 4, { ...OPTIONS, keepAliveCount: 3 });
      server.listener.setOption("hopLimit", 9);
      const client = await within(connect(net, server.port), "connect");
      try {
        await server.signal.until(() => server.accepted.length === 1, "the accepted connection");
        assert.equal(server.accepted[0].getOption("keepAliveCount"), 3);
        assert.equal(server.accepted[0].getOption("hopLimit"), 9);
        assert.equal(client.getOption("keepAliveCount"), 9);
      } finally {
        client.close();
        for (const c of server.accepted) c.close();
        server.listener.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.bind().listen() close() resets connections not yet handed over and frees the port", async () => {
      const net = new MemoryNetwork();
      const server = listen(net);
      server.listener.pause();
      const client = await within(connect(net, server.port), "connect");
      const c = new Recorder();
      client.start(c);
      try {
        server.listener.close();
        server.listener.close();
        await c.until(() => c.errors.length === 1, "the reset");
        assert.equal(c.errors[0].payload, "connection-reset");
        assert.equal(server.accepted.length, 0);
        assert.equal(net.stats.listeners, 0);
        await assert.rejects(within(connect(net, server.port), "connect"), isCode("connection-refused"));
        const again = net.backend.bind({
          local: { family: "ipv4", address: "127.0.0.1", port: server.port },
          ipv6Only: true,
        });
        again.close();
      } finally {
        client.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.bind().listen() throws invalid-state on a closed or already listening binding", () => {
      const net = new MemoryNetwork();
      const server = listen(net);
      const request = {
        backlog: 1,
        options: OPTIONS,
        changed: NO_CHANGES,
        onConnection() {},
        onError() {},
      };
      try {
        assert.throws(() => server.binding.listen(request), isCode("invalid-state"));
        // The listener owns the binding now: closing the binding changes nothing.
        server.binding.close();
        assert.equal(net.stats.listeners, 1);
      } finally {
        server.listener.close();
      }
      const b = net.backend.bind({
        local: { family: "ipv4", address: "127.0.0.1", port: 0 },
        ipv6Only: true,
      });
      b.close();
      assert.throws(() => b.listen(request), isCode("invalid-state"));
      assertNoLeaks(net);
    });
  });

  describe("connect", () => {
    it("MemoryNetwork.backend.connect() reports connection-refused when nothing listens", async () => {
      const net = new MemoryNetwork();
      await assert.rejects(within(connect(net, 7), "connect"), isCode("connection-refused"));
      await assert.rejects(within(connect(net, 7, "10.1.2.3"), "connect"), isCode("connection-refused"));
      const b = net.backend.bind({
        local: { family: "ipv4", address: "127.0.0.1", port: 7 },
        ipv6Only: true,
      });
      try {
        await assert.rejects(within(connect(net, 7), "connect"), isCode("connection-refused"));
      } finally {
        b.close();
      }
      // An IPv6 listener does not take IPv4 connections (v6-only).
      const v6 = listen(net, "::", 8);
      try {
        await assert.rejects(within(connect(net, 8), "connect"), isCode("connection-refused"));
      } finally {
        v6.listener.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.connect() resolves on a later macrotask from the loopback and an ephemeral port", async () => {
      const net = new MemoryNetwork();
      const v4 = listen(net, "0.0.0.0", 80);
      const v6 = listen(net, "::", 80);
      const ends: MemoryConnection[] = [];
      try {
        let settled = false;
        const pending = connect(net, 80).then((c) => {
          settled = true;
          return c;
        });
        for (let i = 0; i < 10; i++) await Promise.resolve();
        assert.equal(settled, false);
        const a = await within(pending, "connect");
        const b = await within(connect(net, 80, "::1"), "connect");
        ends.push(a, b);
        assert.deepEqual(a.remoteAddress, { family: "ipv4", address: "127.0.0.1", port: 80 });
        assert.equal(a.localAddress.address, "127.0.0.1");
        assert.ok(a.localAddress.port >= 49152);
        assert.equal(b.localAddress.address, "::1");
        assert.ok(b.localAddress.port >= 49152);
        assert.notEqual(a.localAddress.port, b.localAddress.port);
        // The ephemeral port is taken while the connection is open.
        assert.throws(
          () =>
            net.backend.bind({
              local: { family: "ipv4", address: "127.0.0.1", port: a.localAddress.port },
              ipv6Only: true,
            }),
          isCode("address-in-use"),
        );
      } finally {
        for (const c of [...ends, ...v4.accepted, ...v6.accepted]) c.close();
        v4.listener.close();
        v6.listener.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.connect() with a binding originates from its address and port and takes it over", async () => {
      const net = new MemoryNetwork();
      const server = listen(net);
      const binding = net.backend.bind({
        local: { family: "ipv4", address: "127.0.0.1", port: 6000 },
        ipv6Only: true,
      });
      let client: MemoryConnection | undefined;
      try {
        client = await within(connect(net, server.port, "127.0.0.1", binding), "connect");
        assert.deepEqual(client.localAddress, { family: "ipv4", address: "127.0.0.1", port: 6000 });
        assert.equal(net.stats.bindings, 0);
        binding.close(); // owned by the connection: no effect
        await server.signal.until(() => server.accepted.length === 1, "the accepted connection");
        assert.equal(server.accepted[0].remoteAddress.port, 6000);
        assert.throws(
          () =>
            net.backend.bind({ local: { family: "ipv4", address: "127.0.0.1", port: 6000 }, ipv6Only: true }),
          isCode("address-in-use"),
        );
        client.close();
        const again = net.backend.bind({
          local: { family: "ipv4", address: "127.0.0.1", port: 6000 },
          ipv6Only: true,
        });
        again.close();
      } finally {
        client?.close();
        for (const c of server.accepted) c.close();
        server.listener.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.connect() releases a given binding's port when the connect fails", async () => {
      const net = new MemoryNetwork();
      const binding = net.backend.bind({
        local: { family: "ipv6", address: "::", port: 6001 },
        ipv6Only: true,
      });
      await assert.rejects(within(connect(net, 9, "::1", binding), "connect"), isCode("connection-refused"));
      assertNoLeaks(net);
      const again = net.backend.bind({
        local: { family: "ipv6", address: "::1", port: 6001 },
        ipv6Only: true,
      });
      again.close();
      await assert.rejects(connect(net, 9, "::1", binding), isCode("invalid-state"));
      assertNoLeaks(net);
    });

    it("MemoryNetwork.backend.connect() applies the request's options to the new connection", async () => {
      const net = new MemoryNetwork();
      const server = listen(net);
      const client = await within(
        net.backend.connect({
          remote: { family: "ipv4", address: "127.0.0.1", port: server.port },
          options: { ...OPTIONS, keepAliveEnabled: true, sendBufferSize: 4096n },
          changed: new Set(["keepAliveEnabled", "sendBufferSize"]),
        }),
        "connect",
      );
      try {
        assert.equal(client.getOption("keepAliveEnabled"), true);
        assert.equal(client.getOption("sendBufferSize"), 4096n);
      } finally {
        client.close();
        await server.signal.until(() => server.accepted.length === 1, "the accepted connection");
        for (const c of server.accepted) c.close();
        server.listener.close();
      }
      assertNoLeaks(net);
    });
  });

  describe("faults", () => {
    it("MemoryNetwork.failConnect() fails every later matching connect with the code until clearFaults()", async () => {
      const net = new MemoryNetwork();
      const a = listen(net, "127.0.0.1", 7001);
      const b = listen(net, "::1", 7002);
      const ends: MemoryConnection[] = [];
      try {
        net.failConnect("timeout", { port: 7001 });
        net.failConnect("remote-unreachable", { address: "0:0::1" });
        await assert.rejects(within(connect(net, 7001), "connect"), isCode("timeout"));
        await assert.rejects(within(connect(net, 7001), "connect"), isCode("timeout"));
        await assert.rejects(within(connect(net, 7002, "::1"), "connect"), isCode("remote-unreachable"));
        net.clearFaults();
        ends.push(await within(connect(net, 7001), "connect"));
        ends.push(await within(connect(net, 7002, "::1"), "connect"));
        net.failConnect("access-denied");
        await assert.rejects(within(connect(net, 7001), "connect"), isCode("access-denied"));
        net.clearFaults();
        await a.signal.until(() => a.accepted.length === 1, "the accepted connection");
        await b.signal.until(() => b.accepted.length === 1, "the accepted connection");
      } finally {
        for (const c of [...ends, ...a.accepted, ...b.accepted]) c.close();
        a.listener.close();
        b.listener.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.failConnect() rejects an unknown code or a bad match", () => {
      const net = new MemoryNetwork();
      assert.throws(() => net.failConnect("nope" as "timeout"), TypeError);
      assert.throws(() => net.failConnect("timeout", { address: "example.com" }), TypeError);
      assert.throws(() => net.failConnect("timeout", { port: 70000 }), TypeError);
    });

    it("MemoryNetwork.setConnectDelay() holds connects and injected failures back by the delay", async () => {
      const net = new MemoryNetwork();
      const server = listen(net);
      // Long enough that no pause of a busy machine lets it pass before the check below.
      net.setConnectDelay(400);
      let client: MemoryConnection | undefined;
      try {
        let settled = false;
        const t0 = performance.now();
        const pending = connect(net, server.port).then((c) => {
          settled = true;
          return c;
        });
        await macrotasks(2);
        assert.equal(settled, false);
        client = await within(pending, "the delayed connect");
        assert.ok(performance.now() - t0 >= 395, "resolved before the delay");
        net.failConnect("timeout");
        const t1 = performance.now();
        await assert.rejects(within(connect(net, server.port), "connect"), isCode("timeout"));
        assert.ok(performance.now() - t1 >= 395, "rejected before the delay");
        assert.throws(() => net.setConnectDelay(-1), TypeError);
      } finally {
        net.clearFaults();
        client?.close();
        await server.signal.until(() => server.accepted.length === 1, "the accepted connection");
        for (const c of server.accepted) c.close();
        server.listener.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.setMaxWriteChunk() splits writes into pieces, one per macrotask, and drains after the last", async () => {
      const net = new MemoryNetwork();
      const p = await pair(net);
      try {
        net.setMaxWriteChunk(3);
        const data = bytes("abcdefgh");
        assert.equal(p.client.write(data), false);
        await macrotasks(1);
        assert.ok(p.s.chunks.length < 3, "all pieces arrived in one macrotask");
        await p.c.until(() => p.c.drains === 1, "the drain");
        assert.deepEqual(p.s.chunks.map((c) => c.length), [3, 3, 2]);
        assert.ok(p.s.chunks.every((c) => c.buffer === data.buffer), "a piece was copied");
        assert.equal(p.s.text(), "abcdefgh");
        net.setMaxWriteChunk(undefined);
        assert.equal(p.client.write(bytes("ij")), true);
        await p.s.until(() => p.s.bytes === 10, "the unsplit write");
        assert.equal(p.s.chunks.length, 4);
        assert.throws(() => net.setMaxWriteChunk(0), TypeError);
      } finally {
        net.clearFaults();
        p.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.reset() resets both ends of the connections on a port only", async () => {
      const net = new MemoryNetwork();
      const one = await pair(net);
      const two = await pair(net);
      try {
        net.reset(one.server.port);
        await one.c.until(() => one.c.errors.length === 1, "the client's reset");
        await one.s.until(() => one.s.errors.length === 1, "the server's reset");
        assert.equal(one.c.errors[0].payload, "connection-reset");
        assert.equal(one.s.errors[0].payload, "connection-reset");
        // Nothing flows on a reset connection, and nothing is thrown at the writer.
        assert.doesNotThrow(() => one.client.write(bytes("x")));
        two.client.write(bytes("still"));
        await two.s.until(() => two.s.text() === "still", "data on the other connection");
        assert.equal(two.c.errors.length + two.s.errors.length, 0);
        await macrotasks(2);
        assert.equal(one.s.bytes, 0);
        assert.deepEqual(one.c.events, ["error"]);
        net.reset();
        await two.c.until(() => two.c.errors.length === 1, "the reset of all");
        assert.throws(() => net.reset(-1), TypeError);
      } finally {
        one.close();
        two.close();
      }
      assertNoLeaks(net);
    });

    it("MemoryNetwork.reset() reaches an end that is not started yet when it starts", async () => {
      const net = new MemoryNetwork();
      const server = listen(net);
      const client = await within(connect(net, server.port), "connect");
      try {
        await server.signal.until(() => server.accepted.length === 1, "the accepted connection");
        net.reset(server.port);
        await macrotasks(2);
        const s = new Recorder();
        server.accepted[0].start(s);
        await s.until(() => s.errors.length === 1, "the reset");
        assert.equal(s.errors[0].payload, "connection-reset");
      } finally {
        client.close();
        for (const c of server.accepted) c.close();
        server.listener.close();
      }
      assertNoLeaks(net);
    });
  });

  describe("connection", () => {
    it("BackendConnection.write() delivers data in order, asynchronously, without copying", async () => {
      const net = new MemoryNetwork();
      const p = await pair(net);
      try {
        let inWrite = false;
        p.s.onData = () => assert.equal(inWrite, false, "data delivered inside write()");
        const chunks = ["one", "two", "three"].map(bytes);
        inWrite = true;
        for (const c of chunks) assert.equal(p.client.write(c), true);
        inWrite = false;
        assert.equal(p.s.chunks.length, 0);
        await p.s.until(() => p.s.chunks.length === 3, "three chunks");
        for (let i = 0; i < 3; i++) assert.equal(p.s.chunks[i], chunks[i]);
        p.peer.write(bytes("back"));
        await p.c.until(() => p.c.text() === "back", "the reply");
        assert.equal(p.c.drains + p.s.drains, 0, "drain without a false write()");
      } finally {
        p.close();
      }
      assertNoLeaks(net);
    });

    it("BackendConnection.start() begins delivery: nothing arrives before it", async () => {
      const net = new MemoryNetwork();
      const server = listen(net);
      const client = await within(connect(net, server.port), "connect");
      try {
        client.start(new Recorder());
        client.write(bytes("early"));
        client.shutdown("send");
        await server.signal.until(() => server.accepted.length === 1, "the accepted connection");
        await macrotasks(2);
        const s = new Recorder();
        server.accepted[0].start(s);
        await s.until(() => s.ends === 1, "the end");
        assert.deepEqual(s.events, ["data", "end"]);
        assert.equal(s.text(), "early");
        assert.throws(() => server.accepted[0].start(s), isCode("invalid-state"));
      } finally {
        client.close();
        for (const c of server.accepted) c.close();
        server.listener.close();
      }
      assertNoLeaks(net);
    });

    it("BackendConnection.write() returns false past the window while the reader is paused, and drains once all is taken", async () => {
      const net = new MemoryNetwork({ windowSize: 10 });
      const p = await pair(net);
      try {
        p.peer.pause();
        assert.equal(p.client.write(new Uint8Array(8)), true);
        assert.equal(p.client.write(new Uint8Array(8)), false);
        await macrotasks(3);
        assert.equal(p.s.bytes, 0);
        assert.equal(p.c.drains, 0);
        p.peer.resume();
        await p.c.until(() => p.c.drains === 1, "the drain");
        assert.equal(p.s.bytes, 16);
        // One drain per false write(), not one per emptied queue.
        assert.equal(p.client.write(new Uint8Array(2)), true);
        await p.s.until(() => p.s.bytes === 18, "the small write");
        await macrotasks(2);
        assert.equal(p.c.drains, 1);
        // A slow reader that pauses after each chunk holds the drain back until it has taken everything.
        p.s.onData = () => p.peer.pause();
        assert.equal(p.client.write(new Uint8Array(6)), true);
        assert.equal(p.client.write(new Uint8Array(6)), false);
        await p.s.until(() => p.s.bytes === 24, "the first chunk");
        await macrotasks(2);
        assert.equal(p.c.drains, 1);
        p.peer.resume();
        await p.c.until(() => p.c.drains === 2, "the second drain");
        assert.equal(p.s.bytes, 30);
      } finally {
        p.close();
      }
      assertNoLeaks(net);
    });

    it("BackendConnection.pause() stops delivery, including the end, until resume()", async () => {
      const net = new MemoryNetwork();
      const p = await pair(net);
      try {
        p.peer.pause();
        p.client.write(bytes("held"));
        p.client.shutdown("send");
        await macrotasks(3);
        assert.deepEqual(p.s.events, []);
        p.peer.resume();
        await p.s.until(() => p.s.ends === 1, "the end");
        assert.deepEqual(p.s.events, ["data", "end"]);
      } finally {
        p.close();
      }
      assertNoLeaks(net);
    });

    it("BackendConnection.shutdown('send') ends the peer's stream after earlier data and keeps the other direction", async () => {
      const net = new MemoryNetwork();
      const p = await pair(net);
      try {
        p.client.write(bytes("request"));
        p.client.shutdown("send");
        p.client.shutdown("send");
        await p.s.until(() => p.s.ends === 1, "the end");
        assert.deepEqual(p.s.events, ["data", "end"]);
        assert.equal(p.s.text(), "request");
        p.peer.write(bytes("response"));
        p.peer.shutdown("send");
        await p.c.until(() => p.c.ends === 1, "the reply's end");
        assert.equal(p.c.text(), "response");
        await macrotasks(2);
        assert.equal(p.s.ends, 1);
        assert.throws(() => p.client.shutdown("both" as "send"), TypeError);
      } finally {
        p.close();
      }
      assertNoLeaks(net);
    });

    it("BackendConnection.shutdown('receive') drops incoming data and unblocks the writer", async () => {
      const net = new MemoryNetwork({ windowSize: 4 });
      const p = await pair(net);
      try {
        p.peer.pause();
        assert.equal(p.client.write(bytes("0123456789")), false);
        p.peer.shutdown("receive");
        await p.c.until(() => p.c.drains === 1, "the drain");
        assert.equal(p.client.write(bytes("more")), true);
        p.peer.resume();
        await macrotasks(3);
        assert.equal(p.s.bytes, 0);
        // The other direction still works.
        p.peer.write(bytes("ok"));
        await p.c.until(() => p.c.text() === "ok", "data the other way");
        // Shutting down inside a data callback stops the rest of the batch.
        p.c.onData = () => p.client.shutdown("receive");
        p.peer.write(bytes("a"));
        p.peer.write(bytes("b"));
        await p.c.until(() => p.c.chunks.length === 2, "the first chunk");
        await macrotasks(3);
        assert.equal(p.c.text(), "oka");
      } finally {
        p.close();
      }
      assertNoLeaks(net);
    });

    it("BackendConnection.close() ends the peer's stream after earlier data and sends nothing to the closed end", async () => {
      const net = new MemoryNetwork();
      const p = await pair(net);
      try {
        p.client.write(bytes("last words"));
        p.client.close();
        p.client.close();
        assert.equal(net.stats.connections, 1);
        await p.s.until(() => p.s.ends === 1, "the end");
        assert.equal(p.s.text(), "last words");
        // The peer may still write; the bytes are dropped and it is not blocked.
        assert.equal(p.peer.write(bytes("into the void")), true);
        p.peer.shutdown("send");
        await macrotasks(3);
        assert.deepEqual(p.c.events, []);
        p.peer.close();
        assert.equal(net.stats.connections, 0);
      } finally {
        p.close();
      }
      assertNoLeaks(net);
    });

    it("BackendConnection.close() hands over data still split by setMaxWriteChunk() at once", async () => {
      const net = new MemoryNetwork();
      const p = await pair(net);
      try {
        net.setMaxWriteChunk(2);
        p.client.write(bytes("abcdefghij"));
        p.client.close();
        net.clearFaults();
        for (let i = 0; i < 10; i++) await Promise.resolve();
        assert.equal(p.s.text(), "abcdefghij");
        assert.equal(p.s.ends, 1);
      } finally {
        p.close();
      }
      assertNoLeaks(net);
    });
  });

  it("MemoryNetwork leaves no timer running once everything is closed", async () => {
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    const live = new Set<unknown>();
    // Counts the timers started while `tracking` runs; the test's own helpers
    // run outside it and keep the real functions.
    const tracked = ((fn: () => void, ms?: number) => {
      const handle = realSet(() => {
        live.delete(handle);
        fn();
      }, ms);
      live.add(handle);
      return handle;
    }) as typeof setTimeout;
    const untracked = ((handle: Parameters<typeof clearTimeout>[0]) => {
      live.delete(handle);
      realClear(handle);
    }) as typeof clearTimeout;
    const tracking = <T>(fn: () => T): T => {
      globalThis.setTimeout = tracked;
      globalThis.clearTimeout = untracked;
      try {
        return fn();
      } finally {
        globalThis.setTimeout = realSet;
        globalThis.clearTimeout = realClear;
      }
    };
    const net = new MemoryNetwork();
    const server = listen(net);
    net.setMaxWriteChunk(1);
    net.setConnectDelay(5);
    const pending = tracking(() => connect(net, server.port));
    assert.equal(live.size, 1);
    const client = await within(pending, "connect");
    await server.signal.until(() => server.accepted.length === 1, "the accepted connection");
    const peer = server.accepted[0];
    try {
      client.start(new Recorder());
      const s = new Recorder();
      peer.start(s);
      tracking(() => {
        client.write(new Uint8Array(1000));
        assert.ok(live.size > 0);
        // The writer's close hands the split data over at once, even with the reader still open.
        client.close();
      });
      assert.equal(live.size, 0, "a timer is still running after the writer closed");
      await s.until(() => s.ends === 1, "the end");
      assert.equal(s.bytes, 1000);
      tracking(() => {
        peer.write(new Uint8Array(1000));
        server.listener.close();
        peer.close();
      });
      assert.equal(live.size, 0, "a timer is still running");
    } finally {
      client.close();
      peer.close();
      server.listener.close();
      net.clearFaults();
    }
    assertNoLeaks(net);
  });
});
