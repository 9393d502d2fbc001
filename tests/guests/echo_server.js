// Guest of world `echo-server` (tests/guests/guests.wit), built with
// componentize-qjs. Serves several connections at once from one poll loop.

import { instanceNetwork } from "wasi:sockets/instance-network@0.2.6";
import { createTcpSocket } from "wasi:sockets/tcp-create-socket@0.2.6";
import { poll } from "wasi:io/poll@0.2.6";
import { now, subscribeInstant } from "wasi:clocks/monotonic-clock@0.2.6";

const CHUNK = 65536;
// Stop reading a connection whose echo is this far behind, so a client that
// does not read cannot make the server buffer without bound.
const MAX_PENDING = 1 << 20;

let listener;

function loopback(ipv6, port) {
  return ipv6
    ? { tag: "ipv6", val: { port, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 1], scopeId: 0 } }
    : { tag: "ipv4", val: { port, address: [127, 0, 0, 1] } };
}

function isClosed(e) {
  return e === "closed" || e?.tag === "closed" || e?.payload?.tag === "closed";
}

function describe(e) {
  if (typeof e === "string") return e;
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}

function waitFor(pollable) {
  poll([pollable]);
  pollable[Symbol.dispose]();
}

export function listen(ipv6) {
  try {
    listener?.[Symbol.dispose]();
    listener = createTcpSocket(ipv6 ? "ipv6" : "ipv4");
    listener.startBind(instanceNetwork(), loopback(ipv6, 0));
    waitFor(listener.subscribe());
    listener.finishBind();
    listener.startListen();
    waitFor(listener.subscribe());
    listener.finishListen();
    return listener.localAddress().val.port;
  } catch (e) {
    throw `listen failed: ${describe(e)}`;
  }
}

class Connection {
  constructor([socket, input, output]) {
    this.socket = socket;
    this.input = input;
    this.output = output;
    this.queue = [];
    this.head = 0;
    this.pending = 0;
    this.eof = false;
    this.flushing = false;
    this.done = false;
    this.echoed = 0;
  }

  wantsRead() {
    return !this.eof && this.pending < MAX_PENDING;
  }

  wantsWrite() {
    return this.pending > 0 || this.eof;
  }

  pump() {
    try {
      this.step();
    } catch (e) {
      // After the peer's end of stream, a failing write side means the peer
      // closed without waiting for a half-close (echo-client's `echo`, or a
      // host without half-close): the connection is over. The bytes counted
      // tell the host whether anything was lost.
      if (!this.eof) throw e;
      this.close();
    }
  }

  step() {
    for (let turn = 0; this.wantsRead() && turn < 16; turn++) {
      let chunk;
      try {
        chunk = this.input.read(CHUNK);
      } catch (e) {
        if (!isClosed(e)) throw e;
        this.eof = true;
        break;
      }
      if (chunk.length === 0) break;
      this.queue.push(chunk);
      this.pending += chunk.length;
    }
    let budget = this.output.checkWrite();
    while (budget > 0 && this.queue.length > 0) {
      const chunk = this.queue[0];
      const n = Math.min(budget, chunk.length - this.head);
      this.output.write(chunk.subarray(this.head, this.head + n));
      budget -= n;
      this.pending -= n;
      this.echoed += n;
      this.head += n;
      if (this.head === chunk.length) {
        this.queue.shift();
        this.head = 0;
      }
    }
    if (this.eof && this.pending === 0) {
      try {
        if (!this.flushing) {
          this.output.flush();
          this.flushing = true;
        } else if (budget > 0) {
          this.socket.shutdown("send");
          this.close();
        }
      } catch (e) {
        if (!isClosed(e)) throw e;
        this.close();
      }
    }
  }

  close() {
    if (this.done) return;
    this.done = true;
    this.input[Symbol.dispose]();
    this.output[Symbol.dispose]();
    this.socket[Symbol.dispose]();
  }
}

export function serve(clients, timeoutNs) {
  if (listener === undefined) throw "serve failed: call listen first";
  const deadline = subscribeInstant(now() + timeoutNs);
  const open = [];
  let accepted = 0;
  let echoed = 0;
  try {
    while (accepted < clients || open.length > 0) {
      const pollables = [deadline];
      const acceptAt = accepted < clients ? pollables.push(listener.subscribe()) - 1 : -1;
      for (const c of open) {
        if (c.wantsRead()) pollables.push(c.input.subscribe());
        if (c.wantsWrite()) pollables.push(c.output.subscribe());
      }
      const ready = poll(pollables);
      for (let i = 1; i < pollables.length; i++) pollables[i][Symbol.dispose]();
      if (ready.includes(0)) throw "timed out";

      if (acceptAt > 0 && ready.includes(acceptAt)) {
        open.push(new Connection(listener.accept()));
        accepted++;
      }
      for (const c of open) c.pump();
      for (let i = open.length - 1; i >= 0; i--) {
        if (open[i].done) {
          echoed += open[i].echoed;
          open.splice(i, 1);
        }
      }
    }
    return echoed;
  } catch (e) {
    throw `serve failed: ${describe(e)}`;
  } finally {
    for (const c of open) c.close();
    deadline[Symbol.dispose]();
    listener[Symbol.dispose]();
    listener = undefined;
  }
}
