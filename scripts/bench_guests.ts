// Guest-level benchmark: the echo-server and echo-client components
// (tests/guests/) as a pair of processes, on each runtime and mode, next to
// raw sockets of the same runtime in the same layout (scripts/_raw_echo.ts)
// and next to @bytecodealliance/preview2-shim (the reference host).
//
//   node --import tsx scripts/bench_guests.ts [--runtimes node,deno,bun] [--modes jspi,sync,reference]
//        [--guests js,wat] [--mib 128] [--warmup-mib 256] [--conns 200] [--ref-mib N] [--ref-conns N]
//        [--ref-warmup-mib 64] [--warmup-conns 1] [--runs 3] [--json]
//
// Per run: a server process and a client process; the client warms up with
// untimed exchanges of --warmup-mib in all (--ref-warmup-mib for
// preview2-shim), split evenly over --warmup-conns connections, then times one
// exchange of --mib (its stream out, the echo back, hashed with
// SHA-256 on the host side of the guest, as the raw client hashes too) and
// --conns empty exchanges (connect, close). The guests use
// echo-client's `echo` (no half-close: preview2-shim has none; the client
// closes once the echo is back), the raw client a half-close. MB/s is MiB sent per second of that exchange (1 MB = 1e6 bytes);
// medians of --runs. preview2-shim gets the same sizes unless --ref-mib or
// --ref-conns say otherwise: both figures grow with size (warm-up), so only
// equal sizes compare fairly. The warm-up is long because a shorter one leaves
// the JIT compilers at work in the timed exchange (on Bun, JavaScriptCore's
// tiers for QuickJS; on Node, V8's optimizing compiler). V8 also recompiles
// as the first few connections of a process end, for raw sockets too:
// --warmup-conns 4 made both this package's and raw sockets' timed exchange
// faster on Node and left their ratio where it was (README), so one warm-up
// connection stays the default. preview2-shim keeps a shorter warm-up: its
// throughput falls as traffic goes on, so a long one would flatter this
// package (and take a minute per run on Deno).
//
// --guests picks the guest pairs: `js` (echo_server.js, echo_client.js under
// componentize-qjs's QuickJS) and `wat` (echo_server.wat, echo_client.wat,
// the same loops written by hand in wasm, so that no interpreter stands
// between the host and the figures).

import { join } from "node:path";
import process from "node:process";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { buildGuest, echoStreamSha256, type GuestMode } from "../tests/_guests.ts";
import { type GuestProcess, type Runtime, spawnGuest } from "../tests/_guest_runner.ts";

type Variant = "raw" | GuestMode;
type Guest = "js" | "wat";

interface Options {
  runtimes: Runtime[];
  modes: GuestMode[];
  guests: Guest[];
  mib: number;
  warmupMib: number;
  refWarmupMib: number;
  warmupConns: number;
  conns: number;
  refMib: number;
  refConns: number;
  runs: number;
  json: boolean;
}

interface Result {
  runtime: Runtime;
  variant: Variant;
  guest: Guest | null;
  mbps: number | null;
  connPerSec: number | null;
  note?: string;
}

const RAW = join(fileURLToPath(new URL(".", import.meta.url)), "_raw_echo.ts");
const DEADLINE_MS = 180_000;

function parse(argv: string[]): Options {
  const o: Options = {
    runtimes: ["node", "deno", "bun"],
    modes: ["jspi", "sync", "reference"],
    guests: ["js", "wat"],
    mib: 128,
    warmupMib: 256,
    refWarmupMib: 64,
    warmupConns: 1,
    conns: 200,
    refMib: -1,
    refConns: -1,
    runs: 3,
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): string => argv[++i] ?? (() => { throw new Error(`Missing value after ${a}`); })();
    if (a === "--runtimes") o.runtimes = v().split(",") as Runtime[];
    else if (a === "--modes") o.modes = v().split(",") as GuestMode[];
    else if (a === "--guests") o.guests = v().split(",") as Guest[];
    else if (a === "--mib") o.mib = Number(v());
    else if (a === "--warmup-mib") o.warmupMib = Number(v());
    else if (a === "--ref-warmup-mib") o.refWarmupMib = Number(v());
    else if (a === "--warmup-conns") o.warmupConns = Number(v());
    else if (a === "--conns") o.conns = Number(v());
    else if (a === "--ref-mib") o.refMib = Number(v());
    else if (a === "--ref-conns") o.refConns = Number(v());
    else if (a === "--runs") o.runs = Math.max(1, Number(v()));
    else if (a === "--json") o.json = true;
    else throw new Error(`Unexpected argument ${a}`);
  }
  for (const g of o.guests) if (g !== "js" && g !== "wat") throw new Error(`Unknown guest ${g}: expected js or wat`);
  if (!Number.isInteger(o.warmupConns) || o.warmupConns < 1) {
    throw new Error(`--warmup-conns must be a whole number of at least 1, got ${o.warmupConns}`);
  }
  if (o.refMib < 0) o.refMib = o.mib;
  if (o.refConns < 0) o.refConns = o.conns;
  return o;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function once(
  runtime: Runtime,
  variant: Variant,
  guest: Guest,
  size: number,
  conns: number,
  warmup: number,
  warmupConns: number,
): Promise<[number, number]> {
  const kids: GuestProcess[] = [];
  const clients = String(conns + 1 + warmupConns);
  try {
    const server = variant === "raw"
      ? spawnGuest(runtime, ["server", clients], RAW)
      : spawnGuest(runtime, ["server", variant, "0", clients, String(DEADLINE_MS), guest]);
    kids.push(server);
    const { port } = await server.next<{ port: number }>(DEADLINE_MS);
    const client = variant === "raw"
      ? spawnGuest(runtime, ["bench", String(port), String(size), String(conns), String(warmup), String(warmupConns)], RAW)
      : spawnGuest(runtime, [
        "bench",
        variant,
        "0",
        String(port),
        String(size),
        String(conns),
        String(DEADLINE_MS),
        "echo",
        guest,
        String(warmup),
        String(warmupConns),
      ]);
    kids.push(client);
    const r = await client.next<{ digest: string; bytesMs: number; connsMs: number }>(DEADLINE_MS);
    if (r.digest !== echoStreamSha256(size, 1)) throw new Error(`${runtime} ${variant}: wrong digest`);
    await server.next<{ served: string }>(DEADLINE_MS);
    return [size / 1e6 / (r.bytesMs / 1000), conns / (r.connsMs / 1000)];
  } finally {
    for (const k of kids) k.kill();
  }
}

async function measure(o: Options, runtime: Runtime, variant: Variant, guest: Guest | null): Promise<Result> {
  const ref = variant === "reference";
  const size = (ref ? o.refMib : o.mib) * 1024 * 1024;
  const conns = ref ? o.refConns : o.conns;
  const warmup = Math.max(65536, (ref ? o.refWarmupMib : o.warmupMib) * 1024 * 1024);
  const tp: number[] = [];
  const cr: number[] = [];
  try {
    for (let run = 0; run < o.runs; run++) {
      const [a, b] = await once(runtime, variant, guest ?? "js", size, conns, warmup, o.warmupConns);
      tp.push(a);
      cr.push(b);
      process.stderr.write(`${runtime} ${variant}${guest ? ` ${guest}` : ""} run ${run + 1}: ${a.toFixed(1)} MB/s, ${b.toFixed(0)} conn/s\n`);
    }
    return { runtime, variant, guest, mbps: median(tp), connPerSec: median(cr) };
  } catch (e) {
    const note = String((e as Error)?.message ?? e).split("\n")[0].slice(0, 120);
    process.stderr.write(`${runtime} ${variant}${guest ? ` ${guest}` : ""}: ${note}\n`);
    return { runtime, variant, guest, mbps: null, connPerSec: null, note };
  }
}

const o = parse(process.argv.slice(2));
for (const mode of o.modes) {
  for (const guest of o.guests) {
    await buildGuest(guest === "wat" ? "wat_echo_server" : "echo_server", mode);
    await buildGuest(guest === "wat" ? "wat_echo_client" : "echo_client", mode);
  }
}
const results: Result[] = [];
for (const runtime of o.runtimes) {
  results.push(await measure(o, runtime, "raw", null));
  for (const guest of o.guests) {
    for (const mode of o.modes) {
      if (mode === "jspi" && runtime === "node") continue;
      results.push(await measure(o, runtime, mode, guest));
    }
  }
}

if (o.json) {
  console.log(JSON.stringify({ options: o, results }, null, 2));
} else {
  const f = (v: number | null, d = 1): string => (v === null ? "-" : v.toFixed(d));
  console.log("| runtime | guests | host | MB/s | vs raw | vs preview2-shim | conn/s | vs raw | vs preview2-shim |");
  console.log("|---|---|---|---:|---:|---:|---:|---:|---:|");
  for (const r of results) {
    const raw = results.find((x) => x.runtime === r.runtime && x.variant === "raw")!;
    const ref = results.find((x) => x.runtime === r.runtime && x.variant === "reference" && x.guest === r.guest);
    const ratio = (a: number | null, b: number | null | undefined): string =>
      a === null || b === null || b === undefined ? "-" : (a / b).toFixed(2);
    const host = r.variant === "raw"
      ? "raw sockets"
      : r.variant === "reference"
      ? "preview2-shim"
      : `wasi-tcp ${r.variant === "jspi" ? "JSPI" : "sync"}`;
    console.log(
      `| ${r.runtime} | ${r.guest ?? "-"} | ${host} | ${f(r.mbps)} | ${ratio(r.mbps, raw.mbps)} | ${
        r.variant === "raw" ? "-" : ratio(r.mbps, ref?.mbps)
      } | ${f(r.connPerSec, 0)} | ${ratio(r.connPerSec, raw.connPerSec)} | ${
        r.variant === "raw" ? "-" : ratio(r.connPerSec, ref?.connPerSec)
      } |${r.note ? ` ${r.note}` : ""}`,
    );
  }
  console.log(
    `\n${o.mib} MiB echo and ${o.conns} connections per run after a ${o.warmupMib} MiB warm-up ` +
      `(preview2-shim: ${o.refMib} MiB, ${o.refConns}, after ${o.refWarmupMib} MiB), ` +
      `warm-ups over ${o.warmupConns} connection${o.warmupConns === 1 ? "" : "s"}, ` +
      `medians of ${o.runs}; ${cpus().length} CPUs, load ${loadavg().map((x) => x.toFixed(2)).join(" ")}.`,
  );
}
