// The raw-socket counterpart of the echo guests, for scripts/bench_guests.ts:
// the same process layout (a server process, a client process) and the same
// work (the client sends the echo client's stream, hashes what comes back and
// half-closes; the server echoes and half-closes), on the runtime's own
// sockets: node:net under Node, Deno.listen/connect under Deno,
// Bun.listen/connect under Bun.
//
//   <runtime> scripts/_raw_echo.ts server CLIENTS
//   <runtime> scripts/_raw_echo.ts bench PORT SIZE COUNT [WARMUP] [WARMUP_CONNS]
//
// Prints the same JSON lines as tests/_guest_runner.ts's server and bench.

import { createHash } from "node:crypto";
import net from "node:net";
import process from "node:process";

const HOST = "127.0.0.1";
const CHUNK = 65536;
const POOL_SPAN = 262144;

// The echo client's stream (tests/guests/echo_client.js), chunk by chunk.
function* stream(size: number, seed: number): Generator<Uint8Array> {
  const words = new Uint32Array((POOL_SPAN + CHUNK) / 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  const pool = new Uint8Array(words.buffer);
  for (let i = 0, done = 0; done < size; i++, done += CHUNK) {
    const base = (i * 40503) % POOL_SPAN;
    yield pool.subarray(base, base + Math.min(CHUNK, size - done));
  }
}

function print(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + "\n");
}

interface Runtime {
  serve(clients: number): Promise<number>;
  exchange(port: number, size: number, seed: number): Promise<string>;
}

const node: Runtime = {
  serve(clients) {
    return new Promise((resolve) => {
      let left = clients;
      let served = 0;
      const server = net.createServer({ allowHalfOpen: true }, (s) => {
        s.on("data", (d: Uint8Array) => {
          served += d.length;
          if (!s.write(d)) s.pause();
        });
        s.on("drain", () => s.resume());
        s.on("end", () => s.end());
        s.on("close", () => {
          if (--left === 0) {
            server.close();
            resolve(served);
          }
        });
        s.on("error", () => {});
      });
      server.listen(0, HOST, () => print({ port: (server.address() as net.AddressInfo).port }));
    });
  },
  exchange(port, size, seed) {
    return new Promise((resolve, reject) => {
      const hash = createHash("sha256");
      const s = net.connect({ host: HOST, port, allowHalfOpen: true }, () => {
        const chunks = stream(size, seed);
        const pump = (): void => {
          for (let c = chunks.next(); !c.done; c = chunks.next()) {
            if (!s.write(c.value)) {
              s.once("drain", pump);
              return;
            }
          }
          s.end();
        };
        pump();
      });
      s.on("data", (d: Uint8Array) => hash.update(d));
      s.on("end", () => {
        s.destroy();
        resolve(hash.digest("hex"));
      });
      s.on("error", reject);
    });
  },
};

interface DenoConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}
interface DenoApi {
  listen(o: { hostname: string; port: number }): AsyncIterable<DenoConn> & { addr: { port: number }; close(): void };
  connect(o: { hostname: string; port: number }): Promise<DenoConn>;
}

async function writeAll(conn: DenoConn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

const deno: Runtime = {
  async serve(clients) {
    const D = (globalThis as unknown as { Deno: DenoApi }).Deno;
    const listener = D.listen({ hostname: HOST, port: 0 });
    print({ port: listener.addr.port });
    let served = 0;
    const handlers: Promise<void>[] = [];
    for await (const conn of listener) {
      handlers.push((async () => {
        const buf = new Uint8Array(CHUNK);
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          served += n;
          await writeAll(conn, buf.subarray(0, n));
        }
        await conn.closeWrite();
        conn.close();
      })());
      // Leaving the loop closes the listener.
      if (handlers.length === clients) break;
    }
    await Promise.all(handlers);
    return served;
  },
  async exchange(port, size, seed) {
    const D = (globalThis as unknown as { Deno: DenoApi }).Deno;
    const conn = await D.connect({ hostname: HOST, port });
    const hash = createHash("sha256");
    const send = (async () => {
      for (const chunk of stream(size, seed)) await writeAll(conn, chunk);
      await conn.closeWrite();
    })();
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      hash.update(buf.subarray(0, n));
    }
    await send;
    conn.close();
    return hash.digest("hex");
  },
};

interface BunSocket {
  write(d: Uint8Array): number;
  shutdown(): void;
  end(): void;
  data: unknown;
}
interface BunApi {
  listen(o: unknown): { port: number; stop(force?: boolean): void };
  connect(o: unknown): Promise<BunSocket>;
}

// Bun writes what the kernel takes; the rest waits for `drain`.
class BunWriter {
  queue: Uint8Array[] = [];
  constructor(readonly socket: BunSocket) {}
  write(d: Uint8Array): void {
    if (this.queue.length === 0) {
      const n = this.socket.write(d);
      if (n >= d.length) return;
      d = d.subarray(Math.max(n, 0));
    }
    this.queue.push(d.slice());
  }
  drain(): boolean {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const n = this.socket.write(head);
      if (n < head.length) {
        this.queue[0] = head.subarray(Math.max(n, 0));
        return false;
      }
      this.queue.shift();
    }
    return true;
  }
}

const bun: Runtime = {
  serve(clients) {
    const B = (globalThis as unknown as { Bun: BunApi }).Bun;
    return new Promise((resolve) => {
      let left = clients;
      let served = 0;
      const listener = B.listen({
        hostname: HOST,
        port: 0,
        allowHalfOpen: true,
        socket: {
          open(s: BunSocket) {
            s.data = { writer: new BunWriter(s), ended: false };
          },
          data(s: BunSocket, d: Uint8Array) {
            served += d.length;
            (s.data as { writer: BunWriter }).writer.write(d);
          },
          drain(s: BunSocket) {
            const st = s.data as { writer: BunWriter; ended: boolean };
            if (st.writer.drain() && st.ended) s.shutdown();
          },
          end(s: BunSocket) {
            const st = s.data as { writer: BunWriter; ended: boolean };
            st.ended = true;
            if (st.writer.queue.length === 0) s.shutdown();
          },
          close() {
            if (--left === 0) {
              listener.stop(true);
              resolve(served);
            }
          },
          error() {},
        },
      });
      print({ port: listener.port });
    });
  },
  exchange(port, size, seed) {
    const B = (globalThis as unknown as { Bun: BunApi }).Bun;
    const hash = createHash("sha256");
    return new Promise((resolve, reject) => {
      const chunks = stream(size, seed);
      let writer: BunWriter;
      const pump = (s: BunSocket): void => {
        if (!writer.drain()) return;
        for (let c = chunks.next(); !c.done; c = chunks.next()) {
          writer.write(c.value);
          if (writer.queue.length > 0) return;
        }
        s.shutdown();
      };
      B.connect({
        hostname: HOST,
        port,
        allowHalfOpen: true,
        socket: {
          open(s: BunSocket) {
            writer = new BunWriter(s);
            pump(s);
          },
          drain: pump,
          data(_s: BunSocket, d: Uint8Array) {
            hash.update(d);
          },
          end(s: BunSocket) {
            s.end();
          },
          // With its own FIN sent, Bun reports the peer's as close, not end.
          close() {
            resolve(hash.digest("hex"));
          },
          error(_s: BunSocket, e: unknown) {
            reject(e);
          },
          connectError(_s: BunSocket, e: unknown) {
            reject(e);
          },
        },
      }).catch(reject);
    });
  },
};

const g = globalThis as { Deno?: unknown; Bun?: unknown };
const api = g.Bun !== undefined ? bun : g.Deno !== undefined ? deno : node;
const [command, ...args] = process.argv.slice(2);
if (command === "server") {
  print({ served: String(await api.serve(Number(args[0]))) });
} else if (command === "bench") {
  const [port, size, count, warmup = 65536, warmupConns = 1] = args.map(Number);
  // The same seed and split as tests/_guest_runner.ts warms up with.
  const each = Math.floor(warmup / warmupConns);
  for (let i = 0; i < warmupConns; i++) await api.exchange(port, each, 1);
  let started = performance.now();
  const digest = await api.exchange(port, size, 1);
  const bytesMs = performance.now() - started;
  started = performance.now();
  for (let i = 0; i < count; i++) await api.exchange(port, 0, 1);
  print({ digest, bytesMs, connsMs: performance.now() - started });
} else {
  throw new Error("Usage: _raw_echo.ts server CLIENTS | bench PORT SIZE COUNT [WARMUP] [WARMUP_CONNS]");
}
