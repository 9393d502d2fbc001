// Runs the guest components of tests/guests/ on this package (JSPI mode on
// Deno and Bun, synchronous mode everywhere) and on the reference host,
// @bytecodealliance/preview2-shim (jco's default WASI host), under Node, Deno
// and Bun, and prints a side-by-side pass table in markdown. A comparison,
// not part of the test suite's pass or fail.
//
//   node --import tsx scripts/reference.ts [--runtimes node,deno,bun] [--mib N] [--json]
//
// Every cell runs in child processes (tests/_guest_runner.ts) under a
// deadline; a cell that fails says why, and one that hangs says "timeout".

import process from "node:process";
import {
  buildGuest,
  echoStreamSha256,
  type GuestMode,
  GUEST_WORLDS,
  type GuestName,
  startPollRacePeer,
} from "../tests/_guests.ts";
import { type GuestProcess, type Runtime, spawnGuest } from "../tests/_guest_runner.ts";

interface Column {
  runtime: Runtime;
  mode: GuestMode;
  label: string;
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

const CELL_MS = 60_000;

function columns(runtimes: Runtime[]): Column[] {
  const out: Column[] = [];
  for (const runtime of runtimes) {
    if (runtime !== "node") out.push({ runtime, mode: "jspi", label: `${runtime} wasi-tcp JSPI` });
    out.push({ runtime, mode: "sync", label: `${runtime} wasi-tcp sync` });
    out.push({ runtime, mode: "reference", label: `${runtime} preview2-shim` });
  }
  return out;
}

function short(e: unknown): string {
  const text = String((e as Error)?.message ?? e).split("\n").find((l) => /error|failed|Error/.test(l)) ??
    String((e as Error)?.message ?? e).split("\n")[0];
  return text.replace(/\|/g, "/").slice(0, 90);
}

async function cell(run: (kids: GuestProcess[]) => Promise<string>): Promise<string> {
  const kids: GuestProcess[] = [];
  try {
    return await run(kids);
  } catch (e) {
    return /within \d+ ms/.test(String((e as Error)?.message)) ? "timeout" : `fail: ${short(e)}`;
  } finally {
    for (const k of kids) k.kill();
  }
}

async function echo(c: Column, ipv6: boolean, size: number): Promise<string> {
  return await cell(async (kids) => {
    const server = spawnGuest(c.runtime, ["server", c.mode, ipv6 ? "1" : "0", "1", String(CELL_MS)]);
    kids.push(server);
    const { port } = await server.next<{ port: number }>(CELL_MS);
    const client = spawnGuest(c.runtime, [
      "client",
      c.mode,
      ipv6 ? "1" : "0",
      String(port),
      String(size),
      "1",
      String(CELL_MS),
    ]);
    kids.push(client);
    const { digest } = await client.next<{ digest: string }>(CELL_MS);
    const { served } = await server.next<{ served: string }>(CELL_MS);
    if (digest !== echoStreamSha256(size, 1)) return "fail: wrong digest";
    if (BigInt(served) !== BigInt(size)) return `fail: served ${served}`;
    return "pass";
  });
}

async function race(c: Column, peerPort: number, socketFirst: boolean): Promise<string> {
  return await cell(async (kids) => {
    const timeoutMs = socketFirst ? 20_000 : 300;
    const child = spawnGuest(c.runtime, ["race", c.mode, String(peerPort), String(timeoutMs)]);
    kids.push(child);
    const { ready, ms } = await child.next<{ ready: number[]; ms: number }>(CELL_MS);
    const want = socketFirst ? [0] : [1];
    if (JSON.stringify(ready) !== JSON.stringify(want)) return `fail: poll returned [${ready}]`;
    if (!socketFirst && ms < timeoutMs - 1) return `fail: after ${ms.toFixed(0)} ms`;
    return "pass";
  });
}

async function conformance(c: Column, ipv6: boolean): Promise<{ cell: string; failed: string[] }> {
  let failed: string[] = [];
  const text = await cell(async (kids) => {
    const child = spawnGuest(c.runtime, ["conformance", c.mode, ipv6 ? "1" : "0"]);
    kids.push(child);
    const { checks } = await child.next<{ checks: Check[] }>(CELL_MS);
    failed = checks.filter((x) => !x.ok).map((x) => `${x.name} (${x.detail})`);
    const passed = checks.length - failed.length;
    return failed.length === 0 ? `pass (${passed}/${checks.length})` : `${passed}/${checks.length}`;
  });
  return { cell: text, failed };
}

async function main(argv: string[]): Promise<void> {
  let runtimes: Runtime[] = ["node", "deno", "bun"];
  let mib = 4;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runtimes") runtimes = argv[++i].split(",") as Runtime[];
    else if (argv[i] === "--mib") mib = Number(argv[++i]);
    else if (argv[i] === "--json") json = true;
    else throw new Error(`Unexpected argument ${argv[i]}`);
  }
  const cols = columns(runtimes);
  const guests = (Object.keys(GUEST_WORLDS) as GuestName[]);
  for (const mode of new Set(cols.map((c) => c.mode))) {
    for (const g of guests) await buildGuest(g, mode);
  }

  // The poll-race peer: writes 300 ms after each connection when asked to.
  const peer = await startPollRacePeer();
  const peerPort = peer.port;

  const rows: Array<[string, string[]]> = [];
  const notes: string[] = [];
  const add = (name: string, cells: string[]): void => {
    rows.push([name, cells]);
    process.stderr.write(`${name}: ${cells.join(" | ")}\n`);
  };
  const size = mib * 1024 * 1024;
  for (const ipv6 of [false, true]) {
    const cells: string[] = [];
    for (const c of cols) cells.push(await echo(c, ipv6, size));
    add(`echo pair, ${mib} MiB over ${ipv6 ? "::1" : "127.0.0.1"}, SHA-256`, cells);
  }
  for (const socketFirst of [true, false]) {
    peer.writeAfter(socketFirst ? 300 : undefined);
    const cells: string[] = [];
    for (const c of cols) cells.push(await race(c, peerPort, socketFirst));
    add(`poll race: ${socketFirst ? "socket before the clock" : "clock while the socket is silent"}`, cells);
  }
  if ("conformance" in GUEST_WORLDS) {
    for (const ipv6 of [false, true]) {
      const cells: string[] = [];
      for (const c of cols) {
        const r = await conformance(c, ipv6);
        cells.push(r.cell);
        for (const f of r.failed) notes.push(`${c.label}, ${ipv6 ? "::1" : "127.0.0.1"}: ${f}`);
      }
      add(`conformance checks over ${ipv6 ? "::1" : "127.0.0.1"}`, cells);
    }
  }
  await peer.close();

  if (json) {
    console.log(JSON.stringify({ columns: cols.map((c) => c.label), rows, notes }, null, 2));
    return;
  }
  console.log(`| guest | ${cols.map((c) => c.label).join(" | ")} |`);
  console.log(`|---|${cols.map(() => "---").join("|")}|`);
  for (const [name, cells] of rows) console.log(`| ${name} | ${cells.join(" | ")} |`);
  if (notes.length > 0) {
    console.log("\nFailed conformance checks:\n");
    for (const n of [...new Set(notes)]) console.log(`- ${n}`);
  }
}

await main(process.argv.slice(2));
