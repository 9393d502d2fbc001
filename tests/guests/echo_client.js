// Guest of world `echo-client` (tests/guests/guests.wit), built with
// componentize-qjs. Sends a pseudo-random stream to an echo server and hashes
// what comes back, pumping both directions from one poll loop so neither side
// can stall the other. The hashing itself is a host import: SHA-256 in
// QuickJS runs at about 0.5 MB/s, which would dwarf the I/O under test.

import { instanceNetwork } from "wasi:sockets/instance-network@0.2.6";
import { createTcpSocket } from "wasi:sockets/tcp-create-socket@0.2.6";
import { poll } from "wasi:io/poll@0.2.6";
import { now, subscribeInstant } from "wasi:clocks/monotonic-clock@0.2.6";

import { Sha256 } from "wasi-tcp:guests/hashing";

const CHUNK = 65536;
const POOL_SPAN = 262144;

// The host regenerates the same stream (tests/_guests.ts), so its layout is
// part of the test's contract. Generating it byte by byte would cost QuickJS
// more than the whole exchange, so the stream is built from views: chunk i is
// the 64 KiB at offset (i * 40503) mod 256 KiB of a pool of little-endian
// xorshift32 words seeded with `seed`. The odd stride gives every chunk of a
// 16 MiB stream different content, so a lost, repeated or reordered chunk
// changes the digest like any corrupted byte does.
// Building a pool costs QuickJS tens of milliseconds, which would swamp a
// connection-rate measurement: each seed's pool is built once.
const pools = new Map();

function poolOf(seed) {
  let pool = pools.get(seed);
  if (pool === undefined) {
    const words = new Uint32Array((POOL_SPAN + CHUNK) / 4);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x;
    }
    pool = new Uint8Array(words.buffer);
    pools.set(seed, pool);
  }
  return pool;
}

class ChunkStream {
  constructor(seed) {
    this.pool = poolOf(seed);
    this.index = -1;
    this.base = 0;
    this.offset = CHUNK;
  }

  // Up to `max` bytes of the stream, as a view of the pool.
  take(max) {
    if (this.offset === CHUNK) {
      this.index++;
      this.base = (this.index * 40503) % POOL_SPAN;
      this.offset = 0;
    }
    const n = Math.min(max, CHUNK - this.offset);
    const start = this.base + this.offset;
    this.offset += n;
    return this.pool.subarray(start, start + n);
  }
}

function loopback(ipv6, port) {
  return ipv6
    ? { tag: "ipv6", val: { port, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 1], scopeId: 0 } }
    : { tag: "ipv4", val: { port, address: [127, 0, 0, 1] } };
}

// A stream error of kind `closed` (the peer's FIN); anything else rethrows.
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

// Polls `pollables` and the deadline, then drops `pollables` (before their
// parents, as WASI asks); throws once the deadline fires.
function pollUntil(deadline, pollables) {
  const ready = poll([deadline, ...pollables]);
  for (const p of pollables) p[Symbol.dispose]();
  if (ready.includes(0)) throw "timed out";
}

export function exchange(ipv6, port, size, seed, timeoutNs) {
  return run(ipv6, port, size, seed, timeoutNs, true);
}

export function echo(ipv6, port, size, seed, timeoutNs) {
  return run(ipv6, port, size, seed, timeoutNs, false);
}

// Sends the stream and hashes the echo; with `halfClose`, shuts down the send
// side after a flush and reads until end of stream, else reads `size` bytes.
function run(ipv6, port, size, seed, timeoutNs, halfClose) {
  const deadline = subscribeInstant(now() + timeoutNs);
  const socket = createTcpSocket(ipv6 ? "ipv6" : "ipv4");
  const hash = new Sha256();
  let input;
  let output;
  try {
    socket.startConnect(instanceNetwork(), loopback(ipv6, port));
    pollUntil(deadline, [socket.subscribe()]);
    [input, output] = socket.finishConnect();

    const source = new ChunkStream(seed);
    let sent = 0;
    let flushing = false;
    let shut = false;
    let eof = false;
    let received = 0;
    if (!halfClose) {
      shut = true;
      eof = size === 0;
    }
    while (!eof || !shut) {
      const waits = [];
      if (!eof) waits.push(input.subscribe());
      if (!shut || (!halfClose && sent < size)) waits.push(output.subscribe());
      pollUntil(deadline, waits);

      // Drain what has arrived, a bounded amount per turn so writes go on.
      for (let turn = 0; !eof && turn < 16; turn++) {
        let chunk;
        try {
          chunk = input.read(CHUNK);
        } catch (e) {
          if (!isClosed(e)) throw e;
          eof = true;
          break;
        }
        if (chunk.length === 0) break;
        hash.update(chunk);
        received += chunk.length;
        if (!halfClose && received >= size) eof = true;
      }

      if (!halfClose && sent < size) {
        let budget = output.checkWrite();
        while (budget > 0 && sent < size) {
          const view = source.take(Math.min(budget, size - sent));
          output.write(view);
          sent += view.length;
          budget -= view.length;
        }
        if (sent === size) output.flush();
      }
      if (!shut) {
        let budget = output.checkWrite();
        while (budget > 0 && sent < size) {
          const view = source.take(Math.min(budget, size - sent));
          output.write(view);
          sent += view.length;
          budget -= view.length;
        }
        // check-write stays 0 while a flush is under way, so a later non-zero
        // budget says every byte has left the stream: only then half-close.
        if (sent === size) {
          if (!flushing) {
            output.flush();
            flushing = true;
          } else if (budget > 0) {
            socket.shutdown("send");
            shut = true;
          }
        }
      }
    }
    return hash.digest();
  } catch (e) {
    throw `exchange failed: ${describe(e)}`;
  } finally {
    input?.[Symbol.dispose]();
    output?.[Symbol.dispose]();
    socket[Symbol.dispose]();
    hash[Symbol.dispose]();
    deadline[Symbol.dispose]();
  }
}
