// Guest of world `conformance` (tests/guests/guests.wit), built with
// componentize-qjs. Runs, inside wasm, the checks the core tests make, against
// whatever host it is given (ours in JSPI or synchronous mode, or
// preview2-shim), and returns one result per check so that a host can print a
// pass table. Self-contained: it is its own server and client on loopback,
// and every wait is bounded by a monotonic-clock deadline.

import { instanceNetwork } from "wasi:sockets/instance-network@0.2.6";
import { createTcpSocket } from "wasi:sockets/tcp-create-socket@0.2.6";
import { poll } from "wasi:io/poll@0.2.6";
import { now, subscribeDuration } from "wasi:clocks/monotonic-clock@0.2.6";
import { getStdout } from "wasi:cli/stdout@0.2.6";
import { getStderr } from "wasi:cli/stderr@0.2.6";

const SECOND = 1_000_000_000;
const WAIT = 5 * SECOND;

function describe(e) {
  if (typeof e === "string") return e;
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}

// The error code (or stream error tag) a thrown value carries.
function codeOf(e) {
  if (typeof e === "string") return e;
  if (e && typeof e.tag === "string") return e.tag;
  if (e && e.payload !== undefined) return codeOf(e.payload);
  return describe(e);
}

// The code `fn` throws, or "ok".
function outcome(fn) {
  try {
    fn();
    return "ok";
  } catch (e) {
    return codeOf(e);
  }
}

class CheckFailed {
  constructor(detail) {
    this.detail = detail;
  }
}

function expect(what, got, want) {
  if (got !== want) throw new CheckFailed(`${what}: expected ${want}, got ${got}`);
}

function expectTrue(what, value) {
  if (!value) throw new CheckFailed(what);
}

class Env {
  constructor(ipv6) {
    this.ipv6 = ipv6;
    this.family = ipv6 ? "ipv6" : "ipv4";
    this.net = instanceNetwork();
    this.owned = [];
  }

  own(...resources) {
    this.owned.push(...resources);
    return resources[0];
  }

  address(port) {
    return this.ipv6
      ? { tag: "ipv6", val: { port, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 1], scopeId: 0 } }
      : { tag: "ipv4", val: { port, address: [127, 0, 0, 1] } };
  }

  // Polls a pollable until ready or the deadline; drops it.
  wait(pollable, what) {
    const deadline = subscribeDuration(WAIT);
    const ready = poll([pollable, deadline]);
    deadline[Symbol.dispose]();
    pollable[Symbol.dispose]();
    if (!ready.includes(0)) throw new CheckFailed(`timed out waiting for ${what}`);
  }

  // Repeats a finish-call while it would block.
  finish(socket, call, what) {
    const until = now() + WAIT;
    for (;;) {
      try {
        return call();
      } catch (e) {
        if (codeOf(e) !== "would-block") throw e;
      }
      if (now() > until) throw new CheckFailed(`timed out: ${what}`);
      this.wait(socket.subscribe(), what);
    }
  }

  socket() {
    return this.own(createTcpSocket(this.family));
  }

  bound(port = 0) {
    const s = this.socket();
    s.startBind(this.net, this.address(port));
    this.finish(s, () => s.finishBind(), "bind");
    return s;
  }

  listener() {
    const s = this.bound();
    s.startListen();
    this.finish(s, () => s.finishListen(), "listen");
    return s;
  }

  connect(port) {
    const s = this.socket();
    s.startConnect(this.net, this.address(port));
    const [input, output] = this.finish(s, () => s.finishConnect(), "connect");
    this.own(input, output);
    return { socket: s, input, output };
  }

  accept(listener) {
    const [socket, input, output] = this.finish(listener, () => listener.accept(), "accept");
    this.own(input, output, socket);
    return { socket, input, output };
  }

  pair() {
    const listener = this.listener();
    const port = listener.localAddress().val.port;
    const client = this.connect(port);
    const server = this.accept(listener);
    return { listener, client, server };
  }

  // Reads until `closed` or `limit` bytes; returns the count.
  drain(input, limit = Infinity) {
    let total = 0;
    const until = now() + WAIT;
    while (total < limit) {
      let chunk;
      try {
        chunk = input.read(65536);
      } catch (e) {
        if (codeOf(e) === "closed") return total;
        throw e;
      }
      if (chunk.length === 0) {
        if (now() > until) throw new CheckFailed(`timed out reading after ${total} bytes`);
        this.wait(input.subscribe(), "data");
        continue;
      }
      total += chunk.length;
    }
    return total;
  }

  // Writes `bytes` as check-write allows, then flushes.
  send(output, bytes) {
    let at = 0;
    const until = now() + WAIT;
    while (at < bytes.length) {
      const n = Math.min(Number(output.checkWrite()), bytes.length - at);
      if (n === 0) {
        if (now() > until) throw new CheckFailed("timed out writing");
        this.wait(output.subscribe(), "room to write");
        continue;
      }
      output.write(bytes.subarray(at, at + n));
      at += n;
    }
    output.blockingFlush();
  }

  close() {
    // Children before parents: streams were owned after their sockets.
    for (const r of this.owned.reverse()) {
      try {
        r[Symbol.dispose]();
      } catch {
        // Already gone.
      }
    }
    this.owned = [];
  }
}

const CHECKS = [
  ["states: finish-bind without start-bind gives not-in-progress", (env) => {
    const s = env.socket();
    expect("finish-bind", outcome(() => s.finishBind()), "not-in-progress");
    expect("finish-connect", outcome(() => s.finishConnect()), "not-in-progress");
    expect("finish-listen", outcome(() => s.finishListen()), "not-in-progress");
  }],
  ["states: unbound -> bind-in-progress -> bound; start-bind gives concurrency-conflict, then invalid-state", (env) => {
    const s = env.socket();
    expect("local-address while unbound", outcome(() => s.localAddress()), "invalid-state");
    s.startBind(env.net, env.address(0));
    const second = outcome(() => s.startBind(env.net, env.address(0)));
    expect("start-bind while bind-in-progress", second, "concurrency-conflict");
    env.finish(s, () => s.finishBind(), "bind");
    expectTrue("bound to a real port", s.localAddress().val.port > 0);
    expect("start-bind when bound", outcome(() => s.startBind(env.net, env.address(0))), "invalid-state");
  }],
  ["states: start-listen on an unbound socket gives invalid-state", (env) => {
    const s = env.socket();
    expect("start-listen", outcome(() => s.startListen()), "invalid-state");
  }],
  ["states: bound -> listen-in-progress -> listening; accept would-block without a client", (env) => {
    const s = env.bound();
    expect("accept while bound", outcome(() => s.accept()), "invalid-state");
    s.startListen();
    env.finish(s, () => s.finishListen(), "listen");
    expectTrue("is-listening", s.isListening());
    expect("accept with nobody connecting", outcome(() => s.accept()), "would-block");
    expect("start-connect on a listener", outcome(() => s.startConnect(env.net, env.address(9))), "invalid-state");
  }],
  ["states: connect-in-progress -> connected; remote-address and invalid-state after", (env) => {
    const { client, listener } = env.pair();
    const remote = client.socket.remoteAddress();
    expect("remote port", remote.val.port, listener.localAddress().val.port);
    expect("listen on a connected socket", outcome(() => client.socket.startListen()), "invalid-state");
    expect("bind on a connected socket", outcome(() => client.socket.startBind(env.net, env.address(0))), "invalid-state");
  }],
  ["states: the socket stays usable after a failed start-bind and after invalid-argument from start-connect", (env) => {
    const taken = env.listener();
    const s = env.socket();
    const first = outcome(() => {
      s.startBind(env.net, env.address(taken.localAddress().val.port));
      s.finishBind();
    });
    expect("bind to a taken port", first, "address-in-use");
    s.startBind(env.net, env.address(0));
    env.finish(s, () => s.finishBind(), "bind after the failure");
    const c = env.socket();
    expect("connect to port 0", outcome(() => c.startConnect(env.net, env.address(0))), "invalid-argument");
    c.startConnect(env.net, env.address(taken.localAddress().val.port));
    const [input, output] = env.finish(c, () => c.finishConnect(), "connect after the failure");
    env.own(input, output);
  }],
  ["bind: address-in-use for a port another socket listens on", (env) => {
    const taken = env.listener();
    const s = env.socket();
    const got = outcome(() => {
      s.startBind(env.net, env.address(taken.localAddress().val.port));
      s.finishBind();
    });
    expect("bind", got, "address-in-use");
  }],
  ["addresses: wrong family, multicast and unspecified or port-0 connects give invalid-argument", (env) => {
    const s = env.socket();
    const other = env.ipv6
      ? { tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } }
      : { tag: "ipv6", val: { port: 0, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 1], scopeId: 0 } };
    expect("bind to the other family", outcome(() => s.startBind(env.net, other)), "invalid-argument");
    const multicast = env.ipv6
      ? { tag: "ipv6", val: { port: 0, flowInfo: 0, address: [0xff02, 0, 0, 0, 0, 0, 0, 1], scopeId: 0 } }
      : { tag: "ipv4", val: { port: 0, address: [224, 0, 0, 1] } };
    expect("bind to multicast", outcome(() => s.startBind(env.net, multicast)), "invalid-argument");
    const unspecified = env.ipv6
      ? { tag: "ipv6", val: { port: 80, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 0], scopeId: 0 } }
      : { tag: "ipv4", val: { port: 80, address: [0, 0, 0, 0] } };
    expect("connect to unspecified", outcome(() => s.startConnect(env.net, unspecified)), "invalid-argument");
    expect("connect to port 0", outcome(() => s.startConnect(env.net, env.address(0))), "invalid-argument");
    if (env.ipv6) {
      const mapped = { tag: "ipv6", val: { port: 80, flowInfo: 0, address: [0, 0, 0, 0, 0, 0xffff, 0x7f00, 1], scopeId: 0 } };
      expect("connect to IPv4-mapped", outcome(() => s.startConnect(env.net, mapped)), "invalid-argument");
    }
  }],
  ["connect: connection-refused for a port bound but not listening", (env) => {
    const bound = env.bound();
    const s = env.socket();
    s.startConnect(env.net, env.address(bound.localAddress().val.port));
    expect("finish-connect", outcome(() => env.finish(s, () => s.finishConnect(), "connect")), "connection-refused");
  }],
  ["options: 0 gives invalid-argument; values read back; maximum values are accepted", (env) => {
    const s = env.socket();
    expect("hop-limit 0", outcome(() => s.setHopLimit(0)), "invalid-argument");
    expect("keep-alive-count 0", outcome(() => s.setKeepAliveCount(0)), "invalid-argument");
    expect("keep-alive-idle-time 0", outcome(() => s.setKeepAliveIdleTime(0)), "invalid-argument");
    expect("receive-buffer-size 0", outcome(() => s.setReceiveBufferSize(0)), "invalid-argument");
    expect("listen-backlog-size 0", outcome(() => s.setListenBacklogSize(0)), "invalid-argument");
    s.setHopLimit(42);
    expect("hop-limit", s.hopLimit(), 42);
    s.setKeepAliveEnabled(true);
    expect("keep-alive-enabled", s.keepAliveEnabled(), true);
    s.setKeepAliveIdleTime(20 * SECOND);
    expect("keep-alive-idle-time", Number(s.keepAliveIdleTime()), 20 * SECOND);
    expect("hop-limit 255", outcome(() => s.setHopLimit(255)), "ok");
    expect("keep-alive-count u32 max", outcome(() => s.setKeepAliveCount(4294967295)), "ok");
  }],
  ["options: an accepted socket inherits the listener's options", (env) => {
    const listener = env.socket();
    listener.setKeepAliveEnabled(true);
    listener.setHopLimit(33);
    listener.setKeepAliveIdleTime(30 * SECOND);
    listener.startBind(env.net, env.address(0));
    env.finish(listener, () => listener.finishBind(), "bind");
    listener.startListen();
    env.finish(listener, () => listener.finishListen(), "listen");
    env.connect(listener.localAddress().val.port);
    const { socket } = env.accept(listener);
    expect("keep-alive-enabled", socket.keepAliveEnabled(), true);
    expect("hop-limit", socket.hopLimit(), 33);
    expect("keep-alive-idle-time", Number(socket.keepAliveIdleTime()), 30 * SECOND);
    expect("address-family", socket.addressFamily(), env.family);
  }],
  ["half-close: shutdown(send) ends the peer's input while the other direction still works", (env) => {
    const { client, server } = env.pair();
    env.send(client.output, new Uint8Array(1000).fill(7));
    client.socket.shutdown("send");
    expect("bytes before end of stream", env.drain(server.input), 1000);
    expect("check-write after shutdown(send)", outcome(() => client.output.checkWrite()), "closed");
    env.send(server.output, new Uint8Array(500).fill(9));
    server.socket.shutdown("send");
    expect("bytes the other way", env.drain(client.input), 500);
    expect("shutdown twice", outcome(() => client.socket.shutdown("send")), "ok");
  }],
  ["shutdown(receive): read gives closed", (env) => {
    const { server } = env.pair();
    server.socket.shutdown("receive");
    expect("read", outcome(() => server.input.read(10)), "closed");
  }],
  ["shutdown(send) right after a large buffered write: every byte arrives", (env) => {
    const { client, server } = env.pair();
    const chunk = new Uint8Array(65536).fill(1);
    const total = 2 * 1024 * 1024;
    let sent = 0;
    let received = 0;
    const until = now() + WAIT;
    // Write as fast as check-write allows; the peer reads only when there is
    // no room, so bytes are still buffered when the shutdown comes.
    while (sent < total) {
      const n = Math.min(Number(client.output.checkWrite()), total - sent, chunk.length);
      if (n > 0) {
        client.output.write(chunk.subarray(0, n));
        sent += n;
        continue;
      }
      if (now() > until) throw new CheckFailed(`timed out writing after ${sent} bytes`);
      const got = server.input.read(65536).length;
      received += got;
      if (got === 0) {
        const deadline = subscribeDuration(WAIT);
        const room = client.output.subscribe();
        const data = server.input.subscribe();
        poll([room, data, deadline]);
        for (const p of [room, data, deadline]) p[Symbol.dispose]();
      }
    }
    client.socket.shutdown("send");
    received += env.drain(server.input);
    expect("bytes received", received, total);
  }],
  ["busy poll with subscribe-duration(0): the host's I/O progresses", (env) => {
    const { client, server } = env.pair();
    client.output.write(new Uint8Array(100).fill(3));
    client.output.flush();
    let got = 0;
    const until = now() + WAIT;
    while (got < 100) {
      if (now() > until) throw new CheckFailed(`only ${got} of 100 bytes arrived`);
      const tick = subscribeDuration(0);
      const ready = poll([tick]);
      tick[Symbol.dispose]();
      expectTrue("the zero-duration pollable is ready", ready.length === 1 && ready[0] === 0);
      got += server.input.read(1000).length;
    }
  }],
  ["stdio: the guest prints through streams of another host (preview2-shim's wasi:cli)", () => {
    // jco checks the streams wasi:cli hands out against wasi:io's classes,
    // which are this package's: a trap here fails every check of the run.
    const ascii = (line) => Uint8Array.from(line, (c) => c.charCodeAt(0));
    const stdout = getStdout();
    stdout.blockingWriteAndFlush(ascii("conformance guest: stdout works\n"));
    stdout[Symbol.dispose]();
    const stderr = getStderr();
    stderr.blockingWriteAndFlush(ascii("conformance guest: stderr works\n"));
    stderr[Symbol.dispose]();
  }],
];

export function run(ipv6) {
  const results = [];
  for (const [name, check] of CHECKS) {
    const env = new Env(ipv6);
    try {
      check(env);
      results.push({ name, ok: true, detail: "" });
    } catch (e) {
      results.push({ name, ok: false, detail: e instanceof CheckFailed ? e.detail : `threw ${describe(e)}` });
    } finally {
      env.close();
    }
  }
  return results;
}
