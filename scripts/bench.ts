// Loopback benchmark: the WASI adapter against the same runtime's raw sockets,
// in one process. Runs unchanged under all three runtimes:
//
//   node --import tsx scripts/bench.ts [--mib N] [--conns N] [--runs N] [--backends native,node] [--lend] [--json]
//   node_modules/.bin/deno run -A scripts/bench.ts [...]
//   node_modules/.bin/bun scripts/bench.ts [...]
//
// `--mib 0` or `--conns 0` skips that measurement. By default the adapter, like
// raw, writes the same 64 KiB buffer every time (the adapter takes ownership and
// copies nothing); `--jco-copy` adds the copy jco makes of guest memory per
// call, to see what a guest pays on top. `--built` runs the adapter from the
// npm build (npm/) instead of the TypeScript sources. `--lend` creates the adapter with
// `lendReadBuffers: true` (as a jco host may), so that backends with
// `recycle` read into reused buffers. `--backends` picks the
// adapter backends (default: native, plus the node:net backend on Deno and Bun;
// `none` measures raw sockets only).

import net from "node:net";
import os from "node:os";
import process from "node:process";
import type { TcpBackend } from "../core/backend.ts";
import type { IpSocketAddress } from "../core/ip_socket_address.ts";
import type { InputStream, OutputStream } from "../core/streams.ts";
import type { TcpSocket } from "../core/tcp_socket.ts";
import type { WasiSockets, WasiSocketsOptions } from "../core/wasi_sockets.ts";

const CHUNK = 65536;
const MIB = 1024 * 1024;
const HOST = "127.0.0.1";
// A wedged run (lost drain, missing FIN) fails loudly instead of hanging.
const DEADLINE_MS = 180_000;

type Runtime = "node" | "deno" | "bun";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const runtime: Runtime = g.Bun !== undefined ? "bun" : g.Deno !== undefined ? "deno" : "node";
const runtimeVersion: string = runtime === "bun"
  ? g.Bun.version
  : runtime === "deno"
  ? g.Deno.version.deno
  : process.versions.node;

// ---------------------------------------------------------------------------
// Options

interface Options {
  mib: number;
  conns: number;
  runs: number;
  json: boolean;
  backends: string[];
  copy: boolean;
  lend: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = {
    mib: 256,
    conns: 2000,
    runs: 3,
    json: false,
    backends: runtime === "node" ? ["native"] : ["native", "node"],
    copy: false,
    lend: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`Expected a whole number after ${arg}`);
      return v;
    };
    if (arg === "--json") opts.json = true;
    else if (arg === "--jco-copy") opts.copy = true;
    else if (arg === "--lend") opts.lend = true;
    else if (arg === "--built") built = true;
    else if (arg === "--mib") opts.mib = num();
    else if (arg === "--conns") opts.conns = num();
    else if (arg === "--runs") opts.runs = Math.max(1, num());
    else if (arg === "--backends") {
      const v = String(argv[++i]);
      opts.backends = v === "none" ? [] : v.split(",");
    }
    else throw new Error(`Unknown argument ${arg}`);
  }
  for (const b of opts.backends) {
    if (b !== "native" && b !== "node") throw new Error(`Unknown backend ${b}; use native or node`);
  }
  return opts;
}

// ---------------------------------------------------------------------------
// Small helpers

function deadline<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${DEADLINE_MS} ms: ${what}`)), DEADLINE_MS);
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function checkCount(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what}: the server read ${got} bytes, expected ${want}`);
}

function log(msg: string): void {
  process.stderr.write(`[bench ${runtime}] ${msg}\n`);
}

/** A measured transfer: the bytes the server read and the time it took. */
interface Transfer {
  bytes: number;
  ms: number;
}

/** A measured connection series. */
interface Cycles {
  count: number;
  ms: number;
}

// ---------------------------------------------------------------------------
// Raw: node:net (the native API on Node)

async function nodeListen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: HOST, port: 0 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as net.AddressInfo).port;
}

function nodeConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

function nodeClose(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function rawNodeThroughput(payload: Uint8Array, total: number): Promise<Transfer> {
  let received = 0;
  let serverSocket: net.Socket | undefined;
  let finished!: () => void;
  let failed!: (e: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    finished = resolve;
    failed = reject;
  });
  const server = net.createServer((s) => {
    serverSocket = s;
    s.on("data", (chunk: Uint8Array) => {
      received += chunk.length;
    });
    s.on("end", () => finished());
    s.on("error", failed);
  });
  const port = await nodeListen(server);
  const client = await nodeConnect(port);
  client.on("error", failed);
  const start = performance.now();
  const send = async (): Promise<void> => {
    let left = total;
    while (left > 0) {
      const n = left < CHUNK ? left : CHUNK;
      const more = client.write(n === CHUNK ? payload : payload.subarray(0, n));
      left -= n;
      if (!more) await new Promise<void>((resolve) => client.once("drain", resolve));
    }
    client.end();
  };
  await deadline("raw node:net transfer", Promise.all([send(), done]));
  const ms = performance.now() - start;
  client.destroy();
  serverSocket?.destroy();
  await nodeClose(server);
  checkCount("raw node:net", received, total);
  return { bytes: received, ms };
}

async function rawNodeConnections(count: number): Promise<Cycles> {
  const accepted: net.Socket[] = [];
  let waiter: (() => void) | undefined;
  const server = net.createServer((s) => {
    s.on("error", () => {});
    accepted.push(s);
    waiter?.();
  });
  const port = await nodeListen(server);
  const acceptOne = async (): Promise<net.Socket> => {
    while (accepted.length === 0) await new Promise<void>((r) => (waiter = r));
    waiter = undefined;
    return accepted.shift()!;
  };
  const start = performance.now();
  await deadline("raw node:net connections", (async () => {
    for (let i = 0; i < count; i++) {
      const [c, s] = await Promise.all([nodeConnect(port), acceptOne()]);
      c.on("error", () => {});
      c.destroy();
      s.destroy();
    }
  })());
  const ms = performance.now() - start;
  await nodeClose(server);
  return { count, ms };
}

// ---------------------------------------------------------------------------
// Raw: Deno.listen / Deno.connect

interface DenoConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}
interface DenoListener {
  addr: { port: number };
  accept(): Promise<DenoConn>;
  close(): void;
}

async function rawDenoThroughput(payload: Uint8Array, total: number): Promise<Transfer> {
  const Deno = g.Deno;
  const listener: DenoListener = Deno.listen({ hostname: HOST, port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: HOST, port: listener.addr.port }) as Promise<DenoConn>,
    listener.accept(),
  ]);
  const start = performance.now();
  const send = async (): Promise<void> => {
    let left = total;
    while (left > 0) {
      const n = left < CHUNK ? left : CHUNK;
      let off = 0;
      while (off < n) off += await client.write(off === 0 && n === CHUNK ? payload : payload.subarray(off, n));
      left -= n;
    }
    await client.closeWrite();
  };
  const receive = async (): Promise<number> => {
    const buf = new Uint8Array(CHUNK);
    let count = 0;
    for (;;) {
      const n = await server.read(buf);
      if (n === null) return count;
      count += n;
    }
  };
  const [, received] = await deadline("raw Deno transfer", Promise.all([send(), receive()]));
  const ms = performance.now() - start;
  client.close();
  server.close();
  listener.close();
  checkCount("raw Deno", received, total);
  return { bytes: received, ms };
}

async function rawDenoConnections(count: number): Promise<Cycles> {
  const Deno = g.Deno;
  const listener: DenoListener = Deno.listen({ hostname: HOST, port: 0 });
  const port = listener.addr.port;
  const start = performance.now();
  await deadline("raw Deno connections", (async () => {
    for (let i = 0; i < count; i++) {
      const [c, s] = await Promise.all([
        Deno.connect({ hostname: HOST, port }) as Promise<DenoConn>,
        listener.accept(),
      ]);
      c.close();
      s.close();
    }
  })());
  const ms = performance.now() - start;
  listener.close();
  return { count, ms };
}

// ---------------------------------------------------------------------------
// Raw: Bun.listen / Bun.connect

interface BunSocket {
  write(data: Uint8Array): number;
  shutdown(halfClose?: boolean): void;
  end(): void;
  terminate(): void;
}
interface BunListener {
  port: number;
  stop(closeActive?: boolean): void;
}

async function rawBunThroughput(payload: Uint8Array, total: number): Promise<Transfer> {
  const Bun = g.Bun;
  let received = 0;
  let finished!: () => void;
  let failed!: (e: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    finished = resolve;
    failed = reject;
  });
  const listener: BunListener = Bun.listen({
    hostname: HOST,
    port: 0,
    socket: {
      data(_s: BunSocket, chunk: Uint8Array) {
        received += chunk.length;
      },
      end(s: BunSocket) {
        finished();
        s.end();
      },
      close() {
        finished();
      },
      error(_s: BunSocket, e: unknown) {
        failed(e);
      },
    },
  });
  let sent = 0;
  let off = 0; // offset inside the current 64 KiB chunk
  let started = false;
  // Writes until the socket takes less than offered; `drain` calls it again.
  const pump = (s: BunSocket): void => {
    if (!started) return;
    while (sent < total) {
      const n = Math.min(CHUNK, total - sent + off);
      const w = s.write(off === 0 && n === CHUNK ? payload : payload.subarray(off, n));
      sent += w;
      off += w;
      if (off === n) off = 0;
      else return;
    }
    s.shutdown();
    started = false;
  };
  const client: BunSocket = await Bun.connect({
    hostname: HOST,
    port: listener.port,
    socket: {
      data() {},
      drain: pump,
      error(_s: BunSocket, e: unknown) {
        failed(e);
      },
    },
  });
  const start = performance.now();
  started = true;
  pump(client);
  await deadline("raw Bun transfer", done);
  const ms = performance.now() - start;
  client.end();
  listener.stop(true);
  checkCount("raw Bun", received, total);
  return { bytes: received, ms };
}

async function rawBunConnections(count: number): Promise<Cycles> {
  const Bun = g.Bun;
  const accepted: BunSocket[] = [];
  let waiter: (() => void) | undefined;
  const listener: BunListener = Bun.listen({
    hostname: HOST,
    port: 0,
    socket: {
      open(s: BunSocket) {
        accepted.push(s);
        waiter?.();
      },
      data() {},
      error() {},
    },
  });
  const port = listener.port;
  const acceptOne = async (): Promise<BunSocket> => {
    while (accepted.length === 0) await new Promise<void>((r) => (waiter = r));
    waiter = undefined;
    return accepted.shift()!;
  };
  const handlers = { data() {}, error() {} };
  const start = performance.now();
  await deadline("raw Bun connections", (async () => {
    for (let i = 0; i < count; i++) {
      const [c, s] = await Promise.all([
        Bun.connect({ hostname: HOST, port, socket: handlers }) as Promise<BunSocket>,
        acceptOne(),
      ]);
      c.end();
      s.end();
    }
  })());
  const ms = performance.now() - start;
  listener.stop(true);
  return { count, ms };
}

// ---------------------------------------------------------------------------
// Adapter: both ends through the WASI API, as a guest drives it

function loopback(port: number): IpSocketAddress {
  return { tag: "ipv4", val: { port, address: [127, 0, 0, 1] } };
}

function isWouldBlock(e: unknown): boolean {
  return (e as { payload?: unknown })?.payload === "would-block";
}

// A guest's finish-X loop: try, and on would-block wait on the socket's pollable.
async function finish<T>(socket: TcpSocket, call: () => T): Promise<T> {
  for (;;) {
    try {
      return call();
    } catch (e) {
      if (!isWouldBlock(e)) throw e;
    }
    const p = socket.subscribe();
    await p.block();
    p[Symbol.dispose]();
  }
}

async function adapterListen(wasi: WasiSockets): Promise<TcpSocket> {
  const network = wasi.instanceNetwork.instanceNetwork();
  const listener = wasi.tcpCreateSocket.createTcpSocket("ipv4");
  listener.startBind(network, loopback(0));
  await finish(listener, () => listener.finishBind());
  listener.startListen();
  await finish(listener, () => listener.finishListen());
  return listener;
}

async function adapterConnect(
  wasi: WasiSockets,
  port: number,
): Promise<[TcpSocket, InputStream, OutputStream]> {
  const socket = wasi.tcpCreateSocket.createTcpSocket("ipv4");
  socket.startConnect(wasi.instanceNetwork.instanceNetwork(), loopback(port));
  const [input, output] = await finish(socket, () => socket.finishConnect());
  return [socket, input, output];
}

function drop(socket: TcpSocket, input: InputStream, output: OutputStream): void {
  // Children before the parent, as the component model requires.
  input[Symbol.dispose]();
  output[Symbol.dispose]();
  socket[Symbol.dispose]();
}

async function adapterThroughput(
  wasi: WasiSockets,
  payload: Uint8Array,
  total: number,
  copy: boolean,
): Promise<Transfer> {
  const listener = await adapterListen(wasi);
  const port = listener.localAddress().val.port;
  const [[client, cin, cout], [server, sin, sout]] = await Promise.all([
    adapterConnect(wasi, port),
    finish(listener, () => listener.accept()),
  ]);
  const start = performance.now();
  const send = async (): Promise<void> => {
    let left = total;
    while (left > 0) {
      const room = Number(cout.checkWrite());
      if (room === 0) {
        const p = cout.subscribe();
        await p.block();
        p[Symbol.dispose]();
        continue;
      }
      const n = Math.min(room, CHUNK, left);
      // jco copies the guest's memory into a fresh Uint8Array per call
      // (--jco-copy). Without it the payload is shared, as raw shares it, which
      // is safe because nothing ever modifies it.
      cout.write(copy ? payload.slice(0, n) : n === CHUNK ? payload : payload.subarray(0, n));
      left -= n;
    }
    client.shutdown("send");
  };
  const receive = async (): Promise<number> => {
    let count = 0;
    for (;;) {
      let chunk: Uint8Array;
      try {
        chunk = sin.read(65536n);
      } catch (e) {
        if ((e as { payload?: { tag?: string } }).payload?.tag === "closed") return count;
        throw e;
      }
      if (chunk.length === 0) {
        const p = sin.subscribe();
        await p.block();
        p[Symbol.dispose]();
        continue;
      }
      count += chunk.length;
    }
  };
  const [, received] = await deadline("adapter transfer", Promise.all([send(), receive()]));
  const ms = performance.now() - start;
  drop(client, cin, cout);
  drop(server, sin, sout);
  listener[Symbol.dispose]();
  checkCount("adapter", received, total);
  return { bytes: received, ms };
}

async function adapterConnections(wasi: WasiSockets, count: number): Promise<Cycles> {
  const listener = await adapterListen(wasi);
  const port = listener.localAddress().val.port;
  const start = performance.now();
  await deadline("adapter connections", (async () => {
    for (let i = 0; i < count; i++) {
      const [[c, cin, cout], [s, sin, sout]] = await Promise.all([
        adapterConnect(wasi, port),
        finish(listener, () => listener.accept()),
      ]);
      drop(c, cin, cout);
      drop(s, sin, sout);
    }
  })());
  const ms = performance.now() - start;
  listener[Symbol.dispose]();
  return { count, ms };
}

// ---------------------------------------------------------------------------
// Driver

interface Variant {
  label: string;
  throughput(payload: Uint8Array, total: number): Promise<Transfer>;
  connections(count: number): Promise<Cycles>;
}

const RAW: Record<Runtime, Variant> = {
  node: { label: "raw node:net", throughput: rawNodeThroughput, connections: rawNodeConnections },
  deno: { label: "raw Deno.*", throughput: rawDenoThroughput, connections: rawDenoConnections },
  bun: { label: "raw Bun.*", throughput: rawBunThroughput, connections: rawBunConnections },
};

// `--built` measures the package as npm ships it (npm/, from `npm run build:npm`):
// under Node that skips tsx, whose per-closure `__name` wrappers cost
// microseconds per connection that an installed package does not pay.
let built = false;

async function loadBackend(which: string): Promise<TcpBackend> {
  if (which === "node" || runtime === "node") {
    return built
      ? (await import("../npm/esm/runtimes/node.js" as string)).createNodeBackend()
      : (await import("../runtimes/node.ts")).createNodeBackend();
  }
  if (runtime === "deno") {
    return built
      ? (await import("../npm/esm/runtimes/deno.js" as string)).createDenoBackend()
      : (await import("../runtimes/deno.ts")).createDenoBackend();
  }
  return built
    ? (await import("../npm/esm/runtimes/bun.js" as string)).createBunBackend()
    : (await import("../runtimes/bun.ts")).createBunBackend();
}

async function loadCreateWasiSockets(): Promise<(options: WasiSocketsOptions) => WasiSockets> {
  return built
    ? (await import("../npm/esm/core/wasi_sockets.js" as string)).createWasiSockets
    : (await import("../core/wasi_sockets.ts")).createWasiSockets;
}

function rowName(which: string): string {
  if (runtime === "node") return "native (node:net)";
  if (which === "node") return "node:net backend";
  return runtime === "deno" ? "native (Deno.*)" : "native (Bun.*)";
}

async function adapterVariant(which: string, copy: boolean, lend: boolean): Promise<Variant> {
  const backend = await loadBackend(which);
  const createWasiSockets = await loadCreateWasiSockets();
  const wasi = createWasiSockets({ backend, lendReadBuffers: lend });
  return {
    label: `adapter ${backend.name}`,
    throughput: (payload, total) => adapterThroughput(wasi, payload, total, copy),
    connections: (count) => adapterConnections(wasi, count),
  };
}

interface Row {
  runtime: Runtime;
  version: string;
  backend: string;
  rawMBps: number | null;
  adapterMBps: number | null;
  throughputRatio: number | null;
  rawConnPerSec: number | null;
  adapterConnPerSec: number | null;
  connRatio: number | null;
  samples: {
    rawMBps: number[];
    adapterMBps: number[];
    rawConnPerSec: number[];
    adapterConnPerSec: number[];
  };
}

const mbps = (t: Transfer): number => t.bytes / 1e6 / (t.ms / 1000);
const cps = (c: Cycles): number => c.count / (c.ms / 1000);
const round = (x: number, digits = 0): number => Number(x.toFixed(digits));

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2).filter((a) => a !== "--"));
  const raw = RAW[runtime];
  const adapters: Variant[] = [];
  for (const b of opts.backends) adapters.push(await adapterVariant(b, opts.copy, opts.lend));
  const names = opts.backends.map(rowName);
  const payload = new Uint8Array(CHUNK);
  for (let i = 0; i < CHUNK; i++) payload[i] = (i * 31 + 7) & 0xff;
  const total = opts.mib * MIB;
  const all = [raw, ...adapters];
  const tp: number[][] = all.map(() => []);
  const cr: number[][] = all.map(() => []);

  // Throughput first, then connections, so that neither phase inherits the
  // other's heap and socket state. Each phase starts with one discarded
  // quarter-size run of each variant, so the first measured run is not the JIT's.
  if (total > 0) {
    log("throughput warm-up");
    for (const v of all) await v.throughput(payload, Math.max(16, opts.mib >> 2) * MIB);
    for (let run = 0; run < opts.runs; run++) {
      for (let i = 0; i < all.length; i++) {
        const r = mbps(await all[i].throughput(payload, total));
        tp[i].push(r);
        log(`run ${run + 1}: ${all[i].label} ${r.toFixed(0)} MB/s`);
      }
    }
  }
  if (opts.conns > 0) {
    log("connection warm-up");
    for (const v of all) await v.connections(Math.max(50, opts.conns >> 2));
    for (let run = 0; run < opts.runs; run++) {
      for (let i = 0; i < all.length; i++) {
        const r = cps(await all[i].connections(opts.conns));
        cr[i].push(r);
        log(`run ${run + 1}: ${all[i].label} ${r.toFixed(0)} conn/s`);
      }
    }
  }

  const rawTp = total > 0 ? median(tp[0]) : null;
  const rawCr = opts.conns > 0 ? median(cr[0]) : null;
  // With no adapter (`--backends none`) one row still reports the raw figures.
  const columns = adapters.length > 0 ? adapters.map((_, j) => j + 1) : [-1];
  const rows: Row[] = columns.map((i) => {
    const j = i - 1;
    const aTp = total > 0 && i > 0 ? median(tp[i]) : null;
    const aCr = opts.conns > 0 && i > 0 ? median(cr[i]) : null;
    return {
      runtime,
      version: runtimeVersion,
      backend: i > 0 ? names[j] : "(raw only)",
      rawMBps: rawTp === null ? null : round(rawTp),
      adapterMBps: aTp === null ? null : round(aTp),
      throughputRatio: rawTp === null || aTp === null ? null : round(aTp / rawTp, 2),
      rawConnPerSec: rawCr === null ? null : round(rawCr),
      adapterConnPerSec: aCr === null ? null : round(aCr),
      connRatio: rawCr === null || aCr === null ? null : round(aCr / rawCr, 2),
      samples: {
        rawMBps: tp[0].map((x) => round(x)),
        adapterMBps: (tp[i] ?? []).map((x) => round(x)),
        rawConnPerSec: cr[0].map((x) => round(x)),
        adapterConnPerSec: (cr[i] ?? []).map((x) => round(x)),
      },
    };
  });

  const method = methodText(opts);
  if (opts.json) {
    const out = {
      runtime,
      version: runtimeVersion,
      mib: opts.mib,
      conns: opts.conns,
      runs: opts.runs,
      cpus: os.cpus().length,
      loadavg: os.loadavg().map((x) => round(x, 2)),
      jcoCopy: opts.copy,
      lendReadBuffers: opts.lend,
      method,
      rows,
    };
    process.stdout.write(JSON.stringify(out, null, 2) + "\n");
  } else {
    process.stdout.write(method.map((l) => `- ${l}`).join("\n") + "\n\n");
    process.stdout.write(TABLE_HEADER + "\n");
    for (const row of rows) process.stdout.write(formatRow(row) + "\n");
    process.stdout.write("\n");
    for (const row of rows) process.stdout.write(formatSamples(row) + "\n");
  }
}

/** The table header shared with scripts/bench_all.mjs. */
const TABLE_HEADER = [
  "| runtime | backend | raw MB/s | adapter MB/s | ratio | raw conn/s | adapter conn/s | ratio |",
  "|---|---|---:|---:|---:|---:|---:|---:|",
].join("\n");

function formatRow(r: Row): string {
  const cell = (v: number | null, unit: string): string => (v === null ? "-" : `${v} ${unit}`);
  const ratio = (v: number | null): string => (v === null ? "-" : v.toFixed(2));
  return `| ${r.runtime} ${r.version} | ${r.backend} | ${cell(r.rawMBps, "MB/s")} | ${
    cell(r.adapterMBps, "MB/s")
  } | ${ratio(r.throughputRatio)} | ${cell(r.rawConnPerSec, "conn/s")} | ${
    cell(r.adapterConnPerSec, "conn/s")
  } | ${ratio(r.connRatio)} |`;
}

function formatSamples(r: Row): string {
  const s = r.samples;
  return `${r.runtime} ${r.backend} runs: raw MB/s [${s.rawMBps.join(", ")}], adapter MB/s [${
    s.adapterMBps.join(", ")
  }], raw conn/s [${s.rawConnPerSec.join(", ")}], adapter conn/s [${s.adapterConnPerSec.join(", ")}]`;
}

function methodText(opts: Options): string[] {
  const rawApi = runtime === "node"
    ? "node:net (write until false, await drain; server counts 'data')"
    : runtime === "deno"
    ? "Deno.connect/Deno.listen (conn.write loop finishing partial writes; conn.read into one 64 KiB buffer)"
    : "Bun.connect/Bun.listen (write() until it takes less than offered, rest on 'drain'; server counts 'data')";
  return [
    `${runtime} ${runtimeVersion}, ${os.cpus().length} CPUs, load average ${
      os.loadavg().map((x) => x.toFixed(2)).join(" ")
    }; everything in one process on 127.0.0.1.`,
    `Throughput: ${opts.mib} MiB in 64 KiB writes, client to a server that reads and discards; ` +
    `MB/s with MB = 1e6 bytes; the clock starts after connect/accept and stops when the server ` +
    `has seen end of stream; the byte count is verified.`,
    `Raw: ${rawApi}; every write passes the same 64 KiB buffer.`,
    `Adapter${built ? " (from the npm build in npm/)" : ""}: both ends through createWasiSockets({ backend }): client checkWrite -> write -> ` +
    `output.subscribe().block() when checkWrite is 0, then shutdown('send'); server read(65536) -> ` +
    `input.subscribe().block() when empty, until StreamError closed. ` +
    (opts.copy
      ? `Each write passes payload.slice(), the copy jco makes of guest memory per call (--jco-copy).`
      : `Each write passes the same 64 KiB buffer, as raw does; the adapter copies nothing (the copy jco ` +
        `makes of guest memory is jco's, measured with --jco-copy).`) +
    (opts.lend
      ? ` Created with lendReadBuffers: true (--lend): a read result is only valid until the next read, ` +
        `and backends with recycle() reuse their read buffers.`
      : ` Created without lendReadBuffers: every read result is the reader's to keep.`),
    `Connections: ${opts.conns} sequential connect/accept/close cycles; raw closes both ends ` +
    `(Node destroy(), Deno close(), Bun end()); adapter does startConnect/finishConnect and accept, ` +
    `each waiting on the socket pollable, then drops input, output and socket on both sides.`,
    `Each measurement ${opts.runs} times, raw and adapter alternating (all throughput runs, then all ` +
    `connection runs), after one discarded warm-up run of each at 1/4 size; the table shows ` +
    `medians and adapter/raw ratios.`,
  ];
}

await main();
