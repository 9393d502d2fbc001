// The synchronous mode (sync/mod.ts) on loopback, in each runtime: both ends
// of every connection are driven from this thread, which blocks only in the
// WIT's blocking calls while the sockets worker does the I/O.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  createSyncWasiSockets,
  type InputStream,
  type IpSocketAddress,
  type OutputStream,
  type Pollable,
  type SyncWasiSockets,
  type TcpSocket,
} from "../sync/mod.ts";
import { Channel } from "../sync/_channel.ts";
import { tcpTable } from "./_backend_suite.ts";
import { ENDED, Ring, SHUTDOWN_SEND } from "../sync/_ring.ts";
import { OutputPump } from "../sync/_worker.ts";
import { WRITE_LENT } from "../core/streams.ts";
import { LOCALHOST4, LOCALHOST6, pattern, withPort } from "./_wasi_helpers.ts";

/** The error code, or stream error tag, that `fn` throws; undefined when it does not throw. */
function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    const payload = (e as { payload?: string | { tag: string } }).payload;
    return typeof payload === "object" ? payload.tag : payload;
  }
  return undefined;
}

const DEADLINE_NS = 10_000_000_000n;
const hasV6 = (() => {
  const wasi = createSyncWasiSockets();
  const s = wasi.tcpCreateSocket.createTcpSocket("ipv6");
  try {
    s.startBind(wasi.instanceNetwork.instanceNetwork(), LOCALHOST6);
    s.finishBind();
    return true;
  } catch {
    return false;
  } finally {
    s[Symbol.dispose]();
    wasi.close();
  }
})();

/** Blocks until `pollable` is ready, or throws after the deadline. */
function await_(wasi: SyncWasiSockets, pollable: Pollable, what: string): void {
  const deadline = wasi.monotonicClock.subscribeDuration(DEADLINE_NS);
  const ready = wasi.poll.poll([pollable, deadline]);
  if (ready[0] !== 0) throw new Error(`Timed out: ${what}`);
}

/** Runs a finish-call, polling the socket while it would block. */
function finish<T>(wasi: SyncWasiSockets, socket: TcpSocket, call: () => T, what: string): T {
  const pollable = socket.subscribe();
  try {
    for (;;) {
      try {
        return call();
      } catch (e) {
        if ((e as { payload?: unknown }).payload !== "would-block") throw e;
      }
      await_(wasi, pollable, what);
    }
  } finally {
    pollable[Symbol.dispose]();
  }
}

interface Pair {
  listener: TcpSocket;
  client: TcpSocket;
  server: TcpSocket;
  clientIn: InputStream;
  clientOut: OutputStream;
  serverIn: InputStream;
  serverOut: OutputStream;
  close(): void;
}

function listen(wasi: SyncWasiSockets, addr: IpSocketAddress): TcpSocket {
  const net = wasi.instanceNetwork.instanceNetwork();
  const listener = wasi.tcpCreateSocket.createTcpSocket(addr.tag);
  listener.startBind(net, addr);
  listener.finishBind();
  listener.startListen();
  listener.finishListen();
  return listener;
}

/** A listener on 127.0.0.1 with a connection waiting to be accepted, and the client's end. */
function pendingConnection(wasi: SyncWasiSockets): { listener: TcpSocket; c1: TcpSocket; in1: InputStream } {
  const listener = listen(wasi, LOCALHOST4);
  const c1 = wasi.tcpCreateSocket.createTcpSocket("ipv4");
  try {
    c1.startConnect(wasi.instanceNetwork.instanceNetwork(), listener.localAddress());
    const [in1] = finish(wasi, c1, () => c1.finishConnect(), "connect");
    await_(wasi, listener.subscribe(), "a pending connection");
    return { listener, c1, in1 };
  } catch (e) {
    c1[Symbol.dispose]();
    listener[Symbol.dispose]();
    throw e;
  }
}

function pair(wasi: SyncWasiSockets, addr: IpSocketAddress = LOCALHOST4): Pair {
  const net = wasi.instanceNetwork.instanceNetwork();
  const listener = listen(wasi, addr);
  const client = wasi.tcpCreateSocket.createTcpSocket(addr.tag);
  client.startConnect(net, listener.localAddress());
  const [clientIn, clientOut] = finish(wasi, client, () => client.finishConnect(), "connect");
  const [server, serverIn, serverOut] = finish(wasi, listener, () => listener.accept(), "accept");
  return {
    listener,
    client,
    server,
    clientIn,
    clientOut,
    serverIn,
    serverOut,
    close() {
      for (const r of [clientIn, clientOut, serverIn, serverOut, client, server, listener]) r[Symbol.dispose]();
    },
  };
}

/** Writes everything as check-write allows, blocking on the stream's pollable. */
function writeAll(wasi: SyncWasiSockets, output: OutputStream, bytes: Uint8Array): void {
  const room = output.subscribe();
  for (let at = 0; at < bytes.length;) {
    const n = Number(output.checkWrite());
    if (n === 0) {
      await_(wasi, room, "room to write");
      continue;
    }
    const k = Math.min(n, bytes.length - at);
    output.write(bytes.slice(at, at + k));
    at += k;
  }
}

/** Reads until end of stream (or `limit` bytes), blocking with a deadline. */
function readAll(wasi: SyncWasiSockets, input: InputStream, limit = Infinity): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  const ready = input.subscribe();
  while (total < limit) {
    let bytes: Uint8Array;
    try {
      bytes = input.read(BigInt(Math.min(limit - total, 1 << 20)));
    } catch (e) {
      if ((e as { payload?: { tag?: string } }).payload?.tag === "closed") break;
      throw e;
    }
    if (bytes.length === 0) {
      await_(wasi, ready, "data");
      continue;
    }
    parts.push(bytes.slice());
    total += bytes.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe("createSyncWasiSockets()", () => {
  const wasi = createSyncWasiSockets();
  after(() => wasi.close());

  for (const [family, addr] of [["127.0.0.1", LOCALHOST4], ["::1", LOCALHOST6]] as const) {
    it(`a connection over ${family} carries 4 MiB each way intact, then a half-close`, {
      skip: addr === LOCALHOST6 && !hasV6 ? "no IPv6 loopback on this machine" : false,
    }, () => {
      const p = pair(wasi, addr);
      try {
        const up = pattern(4 << 20, 3);
        const down = pattern(4 << 20, 4);
        // Both directions at once, from one loop, as a guest would.
        const upIn: Uint8Array[] = [];
        const downIn: Uint8Array[] = [];
        let sentUp = 0, sentDown = 0, gotUp = 0, gotDown = 0;
        const deadline = wasi.monotonicClock.subscribeDuration(DEADLINE_NS);
        const waits = [p.serverIn.subscribe(), p.clientIn.subscribe(), p.clientOut.subscribe(), p.serverOut.subscribe()];
        while (gotUp < up.length || gotDown < down.length) {
          const nUp = Math.min(Number(p.clientOut.checkWrite()), up.length - sentUp);
          if (nUp > 0) p.clientOut.write(up.slice(sentUp, sentUp += nUp));
          const nDown = Math.min(Number(p.serverOut.checkWrite()), down.length - sentDown);
          if (nDown > 0) p.serverOut.write(down.slice(sentDown, sentDown += nDown));
          const a = p.serverIn.read(1n << 20n);
          if (a.length > 0) upIn.push(a.slice()), gotUp += a.length;
          const b = p.clientIn.read(1n << 20n);
          if (b.length > 0) downIn.push(b.slice()), gotDown += b.length;
          if (nUp + nDown + a.length + b.length === 0) {
            const ready = wasi.poll.poll([...waits, deadline]);
            assert.ok(!ready.includes(4), `stalled at ${gotUp}/${gotDown} bytes`);
          }
        }
        assert.deepEqual(Buffer.concat(upIn), Buffer.from(up));
        assert.deepEqual(Buffer.concat(downIn), Buffer.from(down));

        p.client.shutdown("send");
        assert.equal(readAll(wasi, p.serverIn).length, 0, "the server reads end of stream");
        assert.equal(errorCode(() => p.clientOut.checkWrite()), "closed");
        writeAll(wasi, p.serverOut, pattern(1000, 5));
        p.server.shutdown("send");
        assert.deepEqual(readAll(wasi, p.clientIn), pattern(1000, 5), "the other direction still works");
      } finally {
        p.close();
      }
    });
  }

  it("TcpSocket.shutdown(send) right after a large buffered write loses no byte", () => {
    const p = pair(wasi);
    try {
      const data = pattern(3 << 20, 7);
      let at = 0;
      // Fill the ring without waiting, then shut down at once.
      const room = p.clientOut.subscribe();
      while (at < data.length) {
        const n = Number(p.clientOut.checkWrite());
        if (n === 0) {
          // Only reading makes room; read on the server side meanwhile.
          await_(wasi, room, "room");
          continue;
        }
        p.clientOut.write(data.slice(at, at += Math.min(n, data.length - at)));
        if (at >= 1 << 20) break;
      }
      p.client.shutdown("send");
      const got = readAll(wasi, p.serverIn);
      assert.equal(got.length, at);
      assert.deepEqual(got, data.subarray(0, at));
    } finally {
      p.close();
    }
  });

  it("OutputStream.write() copies before it returns, as its copiesListArguments mark promises: a caller reusing the array at once loses nothing", () => {
    const p = pair(wasi);
    try {
      // scripts/transpile.ts lends guest memory to methods with this mark.
      assert.equal((p.clientOut as unknown as Record<symbol, unknown>)[Symbol.for("wasi-tcp.copiesListArguments")], true);
      const data = pattern(1 << 20, 11);
      const scratch = new Uint8Array(65536);
      const room = p.clientOut.subscribe();
      for (let at = 0; at < data.length;) {
        const n = Math.min(Number(p.clientOut.checkWrite()), scratch.length, data.length - at);
        if (n === 0) {
          await_(wasi, room, "room to write");
          continue;
        }
        scratch.set(data.subarray(at, at + n));
        p.clientOut.write(scratch.subarray(0, n));
        // What a guest does with its buffer next.
        scratch.fill(0xee);
        at += n;
      }
      p.client.shutdown("send");
      assert.deepEqual(readAll(wasi, p.serverIn), data);
    } finally {
      p.close();
    }
  });

  it("OutputStream.flush() completes only once every byte is with the OS, so a drop right after loses none", () => {
    const p = pair(wasi);
    let dropped = false;
    try {
      const data = pattern(1_500_000, 13);
      const room = p.clientOut.subscribe();
      for (let at = 0; at < data.length;) {
        const n = Number(p.clientOut.checkWrite());
        if (n === 0) {
          await_(wasi, room, "room");
          continue;
        }
        const k = Math.min(n, 7000, data.length - at);
        p.clientOut.write(data.slice(at, at += k));
      }
      p.clientOut.flush();
      // The worker may have finished the flush already: then the ring is empty.
      const during = p.clientOut.checkWrite();
      await_(wasi, room, "the flush");
      const afterFlush = p.clientOut.checkWrite();
      assert.ok(during === 0n || during === afterFlush, `check-write gave ${during} during the flush`);
      for (const r of [p.clientIn, p.clientOut, p.client]) r[Symbol.dispose]();
      dropped = true;
      const got = readAll(wasi, p.serverIn);
      assert.equal(got.length, data.length);
      assert.deepEqual(got, data);
    } finally {
      if (!dropped) p.close();
      else for (const r of [p.serverIn, p.serverOut, p.server, p.listener]) r[Symbol.dispose]();
    }
  });

  it("TcpSocket.shutdown(send) on a connected socket reaches the worker through the output's ring, without a call, after every byte written", () => {
    const p = pair(wasi);
    const call = Channel.prototype.call;
    let calls = 0;
    try {
      const data = pattern(300_000, 17);
      writeAll(wasi, p.clientOut, data);
      Channel.prototype.call = function (this: Channel, ...args: Parameters<Channel["call"]>): unknown {
        calls++;
        return call.apply(this, args);
      };
      try {
        p.client.shutdown("send");
      } finally {
        Channel.prototype.call = call;
      }
      assert.equal(calls, 0, "no call to the worker");
      assert.equal(errorCode(() => p.clientOut.checkWrite()), "closed");
      const got = readAll(wasi, p.serverIn);
      assert.deepEqual(got, data, "every byte, then end of stream");
      writeAll(wasi, p.serverOut, new Uint8Array([1, 2, 3]));
      p.server.shutdown("send");
      assert.deepEqual([...readAll(wasi, p.clientIn)], [1, 2, 3], "the other direction still works");
    } finally {
      Channel.prototype.call = call;
      p.close();
    }
  });

  it("InputStream.read() returns an empty list while nothing has arrived, and closed after shutdown(receive)", () => {
    const p = pair(wasi);
    try {
      assert.equal(p.serverIn.read(100n).length, 0);
      p.clientOut.blockingWriteAndFlush(new Uint8Array([1, 2, 3]));
      assert.deepEqual([...p.serverIn.blockingRead(100n)], [1, 2, 3]);
      p.server.shutdown("receive");
      assert.equal(errorCode(() => p.serverIn.read(1n)), "closed");
    } finally {
      p.close();
    }
  });

  it("OutputStream.write() past check-write traps without a payload, and the stream stays usable", () => {
    const p = pair(wasi);
    try {
      const budget = Number(p.clientOut.checkWrite());
      assert.ok(budget > 0);
      let caught: unknown;
      try {
        p.clientOut.write(new Uint8Array(budget + 1));
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof Error && !("payload" in caught), `expected a trap, got ${caught}`);
      p.clientOut.blockingWriteAndFlush(new Uint8Array([9]));
      assert.deepEqual([...p.serverIn.blockingRead(10n)], [9]);
      assert.throws(() => p.clientOut.blockingWriteAndFlush(new Uint8Array(4097)), (e: Error) => !("payload" in e));
    } finally {
      p.close();
    }
  });

  it("OutputStream.checkWrite() answers 0 while a flush is in progress or the flush has already completed", () => {
    const p = pair(wasi);
    try {
      p.clientOut.write(new Uint8Array(1000));
      p.clientOut.flush();
      const during = p.clientOut.checkWrite();
      p.clientOut.blockingFlush();
      const afterFlush = p.clientOut.checkWrite();
      assert.ok(afterFlush > 0n, "room again after the flush");
      assert.ok(during === 0n || during === afterFlush, `check-write gave ${during} during the flush`);
    } finally {
      p.close();
    }
  });

  it("OutputStream.checkWrite() answers a fresh connection's whole ring, 1 MiB, and the room left after a write", () => {
    const p = pair(wasi);
    try {
      // One batch of up to 1 MiB per hand-over to the worker (see RING_CAPACITY).
      assert.equal(p.clientOut.checkWrite(), 1n << 20n);
      p.clientOut.write(new Uint8Array(1000));
      const left = p.clientOut.checkWrite();
      // The worker may already have taken the 1000 bytes.
      assert.ok(left === (1n << 20n) - 1000n || left === 1n << 20n, `check-write gave ${left} after a write`);
    } finally {
      p.close();
    }
  });

  it("TcpSocket.finishConnect() gives connection-refused for a port bound but not listening", () => {
    const net = wasi.instanceNetwork.instanceNetwork();
    const bound = wasi.tcpCreateSocket.createTcpSocket("ipv4");
    const client = wasi.tcpCreateSocket.createTcpSocket("ipv4");
    try {
      bound.startBind(net, LOCALHOST4);
      bound.finishBind();
      client.startConnect(net, bound.localAddress());
      assert.equal(errorCode(() => finish(wasi, client, () => client.finishConnect(), "connect")), "connection-refused");
    } finally {
      client[Symbol.dispose]();
      bound[Symbol.dispose]();
    }
  });

  it("TcpSocket methods give the spec's error codes across the worker: not-in-progress, invalid-state, invalid-argument", () => {
    const net = wasi.instanceNetwork.instanceNetwork();
    const s = wasi.tcpCreateSocket.createTcpSocket("ipv4");
    try {
      assert.equal(errorCode(() => s.finishBind()), "not-in-progress");
      assert.equal(errorCode(() => s.startListen()), "invalid-state");
      assert.equal(errorCode(() => s.startConnect(net, withPort(LOCALHOST4, 0))), "invalid-argument");
      assert.equal(errorCode(() => s.setHopLimit(0)), "invalid-argument");
      s.setKeepAliveIdleTime(5_000_000_000n);
      assert.equal(s.keepAliveIdleTime(), 5_000_000_000n);
      assert.equal(s.addressFamily(), "ipv4");
      assert.throws(() => s.startBind({} as never, LOCALHOST4), TypeError);
      // Still usable after the failures.
      s.startBind(net, LOCALHOST4);
      s.finishBind();
      assert.equal(s.localAddress().tag, "ipv4");
    } finally {
      s[Symbol.dispose]();
    }
  });

  it("TcpSocket.accept() returns sockets that inherit the listener's options", () => {
    const net = wasi.instanceNetwork.instanceNetwork();
    const listener = wasi.tcpCreateSocket.createTcpSocket("ipv4");
    listener.setKeepAliveEnabled(true);
    listener.setHopLimit(42);
    listener.startBind(net, LOCALHOST4);
    listener.finishBind();
    listener.startListen();
    listener.finishListen();
    const client = wasi.tcpCreateSocket.createTcpSocket("ipv4");
    try {
      client.startConnect(net, listener.localAddress());
      finish(wasi, client, () => client.finishConnect(), "connect");
      const [server] = finish(wasi, listener, () => listener.accept(), "accept");
      assert.equal(server.keepAliveEnabled(), true);
      assert.equal(server.hopLimit(), 42);
      server[Symbol.dispose]();
    } finally {
      client[Symbol.dispose]();
      listener[Symbol.dispose]();
    }
  });

  it("poll() returns the clock's index at its deadline while a socket stays silent, and traps on an empty list", () => {
    const p = pair(wasi);
    try {
      const started = performance.now();
      const ready = wasi.poll.poll([p.serverIn.subscribe(), wasi.monotonicClock.subscribeDuration(50_000_000n)]);
      const ms = performance.now() - started;
      assert.deepEqual([...ready], [1]);
      assert.ok(ms >= 49, `poll returned after ${ms} ms`);
      assert.throws(() => wasi.poll.poll([]), (e: Error) => !("payload" in e));
    } finally {
      p.close();
    }
  });

  it("poll() with subscribe-duration(0) in a busy loop lets the worker's I/O progress", () => {
    const p = pair(wasi);
    try {
      p.clientOut.write(new Uint8Array(100).fill(1));
      p.clientOut.flush();
      let got = 0;
      const until = performance.now() + 10_000;
      while (got < 100 && performance.now() < until) {
        const ready = wasi.poll.poll([wasi.monotonicClock.subscribeDuration(0n)]);
        assert.deepEqual([...ready], [0]);
        got += p.serverIn.read(1000n).length;
      }
      assert.equal(got, 100);
    } finally {
      p.close();
    }
  });

  it("dropping a socket and then sleeping on a clock closes the socket during the sleep, not at the next call", { skip: tcpTable() === undefined ? "needs Linux's /proc/net/tcp" : false }, () => {
    const p = pair(wasi);
    const port = p.client.localAddress().val.port;
    const established = (): boolean =>
      tcpTable()!.some((row) => row.localPort === port && row.state === "01");
    try {
      assert.ok(established(), "the client is connected");
      for (const r of [p.clientIn, p.clientOut, p.client]) r[Symbol.dispose]();
      // Only clocks from here on: nothing else tells the worker of the drop.
      const until = performance.now() + 10_000;
      while (established()) {
        assert.ok(performance.now() < until, "the dropped socket is still established after 10 s of sleeping");
        const tick = wasi.monotonicClock.subscribeDuration(10n * 1_000_000n);
        wasi.poll.poll([tick]);
        tick[Symbol.dispose]();
      }
    } finally {
      for (const r of [p.serverIn, p.serverOut, p.server, p.listener]) r[Symbol.dispose]();
    }
  });

  it("dropping a connected socket ends the peer's input stream", () => {
    const p = pair(wasi);
    try {
      p.clientIn[Symbol.dispose]();
      p.clientOut[Symbol.dispose]();
      p.client[Symbol.dispose]();
      assert.equal(readAll(wasi, p.serverIn).length, 0);
    } finally {
      p.close();
    }
  });
});

describe("createSyncWasiSockets({ permission })", () => {
  it("TcpSocket.startBind() and startConnect() give access-denied when the hook refuses, before any OS call", () => {
    const wasi = createSyncWasiSockets({ permission: (addr, use) => use !== "connect" && addr.tag === "ipv4" });
    const net = wasi.instanceNetwork.instanceNetwork();
    const a = wasi.tcpCreateSocket.createTcpSocket("ipv6");
    const b = wasi.tcpCreateSocket.createTcpSocket("ipv4");
    try {
      assert.equal(errorCode(() => a.startBind(net, LOCALHOST6)), "access-denied");
      assert.equal(errorCode(() => b.startConnect(net, withPort(LOCALHOST4, 9))), "access-denied");
      // The state check still comes first, as in the core.
      b.startBind(net, LOCALHOST4);
      b.finishBind();
      assert.equal(errorCode(() => b.startBind(net, LOCALHOST4)), "invalid-state");
    } finally {
      a[Symbol.dispose]();
      b[Symbol.dispose]();
      wasi.close();
    }
  });

  it("TcpSocket.accept() skips connections the hook refuses", () => {
    let refuse = true;
    const wasi = createSyncWasiSockets({ permission: (_addr, use) => use !== "accept" || !refuse });
    const { listener, c1, in1 } = pendingConnection(wasi);
    try {
      assert.equal(errorCode(() => listener.accept()), "would-block");
      assert.equal(readAll(wasi, in1).length, 0, "the refused client sees its connection end");
      refuse = false;
    } finally {
      c1[Symbol.dispose]();
      listener[Symbol.dispose]();
      wasi.close();
    }
  });

  it("TcpSocket.accept() whose hook throws passes the error on and drops the connection", () => {
    const wasi = createSyncWasiSockets({
      permission: (_addr, use) => {
        if (use === "accept") throw new RangeError("The hook fails");
        return true;
      },
    });
    const { listener, c1, in1 } = pendingConnection(wasi);
    try {
      assert.throws(() => listener.accept(), RangeError);
      assert.equal(readAll(wasi, in1).length, 0, "the client sees its connection end");
    } finally {
      c1[Symbol.dispose]();
      listener[Symbol.dispose]();
      wasi.close();
    }
  });

  it("a hook answering with any thenable gives a TypeError, so a refusal from a promise of another realm cannot pass", () => {
    const thenable = { then: (resolve: (ok: boolean) => void) => resolve(false) };
    const wasi = createSyncWasiSockets({ permission: (() => thenable) as never });
    const s = wasi.tcpCreateSocket.createTcpSocket("ipv4");
    try {
      assert.throws(() => s.startBind(wasi.instanceNetwork.instanceNetwork(), LOCALHOST4), TypeError);
    } finally {
      s[Symbol.dispose]();
      wasi.close();
    }
  });

  it("an asynchronous hook gives a TypeError", () => {
    const wasi = createSyncWasiSockets({ permission: (() => Promise.resolve(true)) as never });
    const s = wasi.tcpCreateSocket.createTcpSocket("ipv4");
    try {
      assert.throws(() => s.startBind(wasi.instanceNetwork.instanceNetwork(), LOCALHOST4), TypeError);
    } finally {
      s[Symbol.dispose]();
      wasi.close();
    }
  });
});

describe("poll() across instances", () => {
  it("poll() traps for pollables of two instances instead of asking one worker about the other's handles", () => {
    const a = createSyncWasiSockets();
    const b = createSyncWasiSockets();
    try {
      const sa = a.tcpCreateSocket.createTcpSocket("ipv4");
      const sb = b.tcpCreateSocket.createTcpSocket("ipv4");
      const pa = sa.subscribe();
      const pb = sb.subscribe();
      assert.throws(() => a.poll.poll([pa, pb]), (e: Error) => !("payload" in e) && /two instances/.test(e.message));
      assert.deepEqual([...a.poll.poll([pa])], [0]);
      for (const r of [pa, pb, sa, sb]) r[Symbol.dispose]();
    } finally {
      a.close();
      b.close();
    }
  });
});

describe("createSyncWasiSockets() options", () => {
  it("createSyncWasiSockets() throws TypeError for a receiveWindow or maxAcceptQueue that is not a positive integer, before starting a worker", () => {
    for (const bad of [0, -1, 1.5]) {
      assert.throws(() => createSyncWasiSockets({ receiveWindow: bad }), TypeError, `receiveWindow ${bad}`);
      assert.throws(() => createSyncWasiSockets({ maxAcceptQueue: bad }), TypeError, `maxAcceptQueue ${bad}`);
    }
  });
});

describe("Channel (the sockets worker's liveness)", () => {
  const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).href;
  const options = { permission: false };

  it("call() traps with the reason when the worker module fails to load", () => {
    const channel = new Channel(options, { url: fixture("worker_throws.ts"), startMs: 20_000 });
    try {
      assert.throws(() => channel.call("noop", 0), (e: Error) => !("payload" in e) && /fixture worker refuses/.test(e.message));
      assert.throws(() => channel.call("noop", 0), (e: Error) => /fixture worker refuses/.test(e.message), "and keeps failing");
    } finally {
      channel.close();
    }
  });

  it("call() traps when the worker stops responding instead of hanging", () => {
    const channel = new Channel(options, { url: fixture("worker_stalls.ts"), startMs: 20_000, stallMs: 1_000 });
    try {
      const started = performance.now();
      assert.throws(() => channel.call("noop", 0), (e: Error) => !("payload" in e) && /stopped responding/.test(e.message));
      assert.ok(performance.now() - started < 10_000);
    } finally {
      channel.close();
    }
  });

  it("call() traps with the reason when the worker fails after starting, although it goes on answering", () => {
    const channel = new Channel(options, { url: fixture("worker_fails_later.ts"), startMs: 20_000 });
    try {
      const socket = channel.create("ipv4");
      assert.equal(channel.call("call", socket, ["addressFamily"]), "ipv4");
      const until = performance.now() + 10_000;
      const pause = new Int32Array(new SharedArrayBuffer(4));
      let failure: Error | undefined;
      while (!failure) {
        assert.ok(performance.now() < until, "no call trapped within 10 s");
        Atomics.wait(pause, 0, 0, 50);
        try {
          channel.call("call", socket, ["addressFamily"]);
        } catch (e) {
          failure = e as Error;
        }
      }
      assert.ok(!("payload" in failure), "a trap");
      assert.match(failure.message, /fails after starting/);
      assert.throws(() => channel.call("call", socket, ["addressFamily"]), /fails after starting/, "and keeps failing");
    } finally {
      channel.close();
    }
  });

  it("close() makes later calls trap at once, without a request to the worker", () => {
    const wasi = createSyncWasiSockets();
    wasi.tcpCreateSocket.createTcpSocket("ipv4")[Symbol.dispose]();
    wasi.close();
    assert.throws(() => wasi.tcpCreateSocket.createTcpSocket("ipv4"), (e: Error) => /closed/.test(e.message));
    const channel = new Channel(options);
    try {
      const socket = channel.create("ipv4");
      channel.call("call", socket, ["addressFamily"]);
      channel.close();
      const requests = channel.requests;
      assert.throws(() => channel.call("call", socket, ["addressFamily"]), /closed/);
      assert.throws(() => channel.ready([socket], false), /closed/);
      assert.equal(channel.requests, requests, "nothing was sent");
    } finally {
      channel.close();
    }
  });

  it("Channel sends any number of creates and drops made between two calls", () => {
    const channel = new Channel(options);
    try {
      const sockets: number[] = [];
      for (let i = 0; i < 5000; i++) sockets.push(channel.create("ipv4"));
      assert.equal(channel.call("call", sockets[0], ["addressFamily"]), "ipv4");
      assert.equal(channel.call("call", sockets[4999], ["addressFamily"]), "ipv4");
      for (const socket of sockets) channel.drop(socket);
      const kept = channel.create("ipv6");
      assert.equal(channel.call("call", kept, ["addressFamily"]), "ipv6");
      assert.throws(() => channel.call("call", sockets[4999], ["addressFamily"]), /No socket/, "the last drop reached the worker");
    } finally {
      channel.close();
    }
  });
});

// A listener on 127.0.0.1 made through the channel's calls, and its address.
function channelListener(channel: Channel): [number, unknown] {
  const listener = channel.create("ipv4");
  channel.call("call", listener, ["startBind", withPort(LOCALHOST4, 0)]);
  channel.call("call", listener, ["finishBind"]);
  channel.call("call", listener, ["startListen"]);
  channel.call("call", listener, ["finishListen"]);
  return [listener, channel.call("call", listener, ["localAddress"])];
}

describe("Channel.ready() (socket readiness without a call per poll)", () => {
  it("Channel.ready() does not report a listener ready after accept took the connection whose arrival fired it", () => {
    const channel = new Channel({ permission: false });
    try {
      const [listener, local] = channelListener(channel);
      channel.ready([listener], true);
      let spurious = 0;
      const until = performance.now() + 20_000;
      for (let i = 0; i < 200; i++) {
        const client = channel.create("ipv4");
        channel.call("call", client, ["startConnect", local]);
        // Accept as a guest does, until it has the one connection: the
        // listener's fire may land while the accept is on its way.
        let accepted: [number, [number, number], [number, number]] | undefined;
        while (!accepted) {
          assert.ok(performance.now() < until, "the connections were accepted within 20 s");
          try {
            accepted = channel.call("accept", listener) as typeof accepted;
          } catch (e) {
            if ((e as { payload?: string }).payload !== "would-block") throw e;
          }
        }
        if (channel.ready([listener], false).size > 0) spurious++;
        channel.drop(accepted![1][0]);
        channel.drop(accepted![2][0]);
        channel.drop(accepted![0]);
        channel.drop(client);
      }
      assert.equal(spurious, 0, "times the listener was reported ready with nothing to accept");
    } finally {
      channel.close();
    }
  });

  it("Channel.ready() knows a listener's readiness from the last call's answer and the worker's fires, and asks only when it cannot tell", () => {
    const channel = new Channel({ permission: false });
    try {
      const [listener, local] = channelListener(channel);

      const listening = channel.requests;
      assert.equal(channel.ready([listener], true).size, 0);
      assert.equal(channel.ready([listener], true).size, 0);
      assert.equal(channel.requests, listening, "a listener armed by the last call's answer costs no call until it fires");

      const connect = (): number => {
        const client = channel.create("ipv4");
        channel.call("call", client, ["startConnect", local]);
        return client;
      };
      const awaitReady = (): void => {
        const until = performance.now() + 10_000;
        for (;;) {
          const seen = channel.events();
          if (channel.ready([listener], true).size > 0) return;
          assert.ok(performance.now() < until, "the listener became ready within 10 s");
          channel.wait(seen, performance.now() + 1_000);
        }
      };
      const first = connect();
      let before = channel.requests;
      awaitReady();
      assert.equal(channel.requests, before, "the listener's fire was taken as ready without a call");

      const [accepted] = channel.call("accept", listener) as [number];
      before = channel.requests;
      assert.equal(channel.ready([listener], true).size, 0, "nothing else waits to be accepted");
      assert.equal(channel.requests, before, "the accept's answer said so");

      const second = connect();
      before = channel.requests;
      awaitReady();
      assert.equal(channel.requests, before, "the listener fired again after the accept");
      for (const h of [accepted, first, second, listener]) channel.drop(h);
    } finally {
      channel.close();
    }
  });
});

describe("createSyncWasiSockets({ lendReadBuffers: true })", () => {
  const wasi = createSyncWasiSockets({ lendReadBuffers: true });
  after(() => wasi.close());

  it("InputStream.read() lends views of the ring in order, and the bytes of the last view do not make the stream ready", () => {
    const p = pair(wasi);
    try {
      p.clientOut.blockingWriteAndFlush(new Uint8Array([1, 2, 3, 4]));
      const first = p.serverIn.blockingRead(2n);
      assert.deepEqual([...first], [1, 2]);
      p.clientOut.blockingWriteAndFlush(new Uint8Array([5, 6, 7, 8]));
      const pollable = p.serverIn.subscribe();
      await_(wasi, pollable, "more bytes");
      const rest: number[] = [];
      while (rest.length < 6) rest.push(...p.serverIn.blockingRead(100n));
      assert.deepEqual(rest, [3, 4, 5, 6, 7, 8]);
      assert.equal(pollable.ready(), false, "the last read's lent bytes are not new data");
      pollable[Symbol.dispose]();
    } finally {
      p.close();
    }
  });
});

// Settles with `promise`, or rejects once `ms` pass without it.
async function within(promise: Promise<unknown>, ms: number, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      promise,
      new Promise((_, reject) => timer = setTimeout(() => reject(new Error(`${what} was never woken`)), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// A ring on which the other thread acts at the worst moment: right after this
// one has counted the bytes in it and found none.
class RacingRing extends Ring {
  #race: (() => void) | undefined;
  constructor(race: (ring: Ring) => void) {
    super(Ring.create(1024).buffer);
    this.#race = () => race(this);
  }
  override available(): number {
    const n = super.available();
    const race = this.#race;
    if (n === 0 && race) {
      this.#race = undefined;
      race();
    }
    return n;
  }
}

describe("Ring (the byte ring between the threads)", () => {
  it("Ring.changed() wakes its waiter on the next take or doorbell, and answers at once when the word already moved", async () => {
    const ring = Ring.create(1024);
    ring.put(new Uint8Array(8));
    const taken = ring.changed("taken", ring.taken());
    assert.ok(taken, "a wait on an unmoved word is pending");
    ring.discard(8);
    await within(taken, 2_000, "a wait for room");

    const bell = ring.changed("doorbell", ring.doorbell());
    assert.ok(bell);
    ring.ring();
    await within(bell, 2_000, "a wait for the doorbell");

    // Nobody waits now: the next moves notify nobody, and a wait that starts
    // after a move sees it without waiting.
    const seen = ring.doorbell();
    ring.ring();
    assert.equal(ring.changed("doorbell", seen), undefined);
    ring.put(new Uint8Array(8));
    const before = ring.taken();
    ring.discard(8);
    assert.equal(ring.changed("taken", before), undefined);
  });

  it("Ring.changed() is woken by the next change when a wake-up came between its flag and its wait", async () => {
    const worker = Ring.create(1024);
    const main = new Ring(worker.buffer);
    const waitAsync = Atomics.waitAsync;
    const atomics = Atomics as { waitAsync: typeof Atomics.waitAsync };
    // The main thread's ring() lands after the worker flagged its wait and
    // before the wait begins; the worker had read the doorbell after the move.
    atomics.waitAsync = ((typed: Int32Array, index: number, _seen: number, timeout?: number) => {
      atomics.waitAsync = waitAsync;
      main.ring();
      return waitAsync(typed, index, main.doorbell(), timeout);
    }) as typeof Atomics.waitAsync;
    let wait: Promise<unknown> | undefined;
    try {
      wait = worker.changed("doorbell", worker.doorbell());
    } finally {
      atomics.waitAsync = waitAsync;
    }
    assert.ok(wait, "the worker waits");
    main.put(new Uint8Array(3));
    main.ring();
    await within(wait, 2_000, "a wait that a wake-up missed before it began");
  });

  it("Ring.view() never lends every byte of the ring, so a full ring stays readable while a view is out", () => {
    const ring = Ring.create(1024);
    ring.put(new Uint8Array(1024));
    const view = ring.view(4096);
    assert.equal(view.length, 1023);
    assert.ok(ring.available() > view.length, "a byte no view holds makes the reader ready");
    ring.discard(view.length);
    assert.equal(ring.view(4096).length, 1);
  });

  it("Ring.readable() gives the end only once every byte put before it is read, however the threads interleave", () => {
    const ring = new RacingRing((r) => {
      r.put(new Uint8Array(300));
      r.setFlags(ENDED);
    });
    const first = ring.readable();
    assert.ok(first === 0 || first === 300, `the first count was ${first}: never the end while bytes remain`);
    assert.equal(ring.readable(), 300);
    ring.discard(300);
    assert.equal(ring.readable(), -1);
  });
});

describe("OutputPump (the worker's side of an output ring)", () => {
  it("OutputPump carries out a flush and a shutdown(send) after every byte put before them, however the threads interleave", async () => {
    let written = 0;
    let flushedAt: number | undefined;
    let shut!: (at: number) => void;
    const shutAt = new Promise<number>((resolve) => shut = resolve);
    const pollable = { block: () => Promise.resolve(), [Symbol.dispose]: () => {} };
    const stream = {
      checkWrite: () => 1n << 20n,
      [WRITE_LENT]: (bytes: Uint8Array) => void (written += bytes.length),
      subscribe: () => pollable,
      blockingFlush: () => Promise.resolve(void (flushedAt = written)),
      [Symbol.dispose]: () => {},
    };
    const socket = { shutdown: () => shut(written) };
    const ring = new RacingRing((r) => {
      r.put(new Uint8Array(300));
      r.requestFlush();
      r.setFlags(SHUTDOWN_SEND);
    });
    type Args = ConstructorParameters<typeof OutputPump>;
    const pump = new OutputPump(stream as unknown as Args[0], socket as unknown as Args[1], ring, () => {});
    try {
      await within(shutAt, 2_000, "the shutdown");
      assert.equal(await shutAt, 300, "the shutdown came after every byte put before it");
      assert.equal(flushedAt, 300, "the flush covered every byte put before it");
    } finally {
      await within(pump.drop(), 2_000, "the pump's end");
    }
  });

  it("OutputPump.shutdownSend() after the drop leaves the ring, which another stream may reuse, and the bytes still in it, alone", async () => {
    const shutdowns: string[] = [];
    let written = 0;
    let disposedAt: number | undefined;
    const pollable = { block: () => Promise.resolve(), [Symbol.dispose]: () => {} };
    const stream = {
      checkWrite: () => 1n << 20n,
      [WRITE_LENT]: (bytes: Uint8Array) => void (written += bytes.length),
      subscribe: () => pollable,
      blockingFlush: () => Promise.resolve(),
      // The drop's FIN, after the ring's last byte.
      [Symbol.dispose]: () => void (disposedAt = written),
    };
    const socket = { shutdown: (how: string) => void shutdowns.push(how) };
    const ring = Ring.create(1024);
    type Args = ConstructorParameters<typeof OutputPump>;
    const pump = new OutputPump(stream as unknown as Args[0], socket as unknown as Args[1], ring, () => {});
    // Bytes still in the ring when the guest drops the stream and then shuts the socket down.
    ring.put(new Uint8Array(700));
    const done = pump.drop();
    pump.shutdownSend();
    await within(done, 2_000, "the pump's end");
    assert.deepEqual(shutdowns, [], "no shutdown ahead of the ring's bytes");
    assert.equal(disposedAt, 700, "the stream ended after every byte");
    ring.reset();
    pump.shutdownSend();
    assert.equal(ring.flags() & SHUTDOWN_SEND, 0, "the reused ring has no shutdown request");
  });
});
