// Runs one guest component in a process of its own, for the synchronous
// modes (a synchronous component blocks its thread, so an echo server and its
// clients cannot share one), and spawns such processes under any runtime.
//
//   <runtime> tests/_guest_runner.ts server MODE IPV6 CLIENTS TIMEOUT_MS [GUEST]
//   <runtime> tests/_guest_runner.ts client MODE IPV6 PORT SIZE SEED TIMEOUT_MS [GUEST]
//   <runtime> tests/_guest_runner.ts conns MODE IPV6 PORT COUNT TIMEOUT_MS
//   <runtime> tests/_guest_runner.ts bench MODE IPV6 PORT SIZE COUNT TIMEOUT_MS [exchange|echo] [GUEST] [WARMUP]
//             [WARMUP_CONNS]
//   <runtime> tests/_guest_runner.ts race MODE PORT TIMEOUT_MS
//   <runtime> tests/_guest_runner.ts conformance MODE IPV6
//
// MODE is jspi, sync or reference (tests/_guests.ts). GUEST is js (default:
// echo_server.js, echo_client.js) or wat (the hand-written echo_server.wat,
// echo_client.wat, which serves one client at a time). Each prints JSON lines
// on stdout: the server `{"port":N}` once listening, then `{"served":"N"}`;
// the client `{"digest":"...","ms":N}`; conns `{"count":N,"ms":N}`; bench,
// after warm-up exchanges of WARMUP bytes in all (default 64 KiB) over
// WARMUP_CONNS connections (default 1), `{"digest":"...","bytesMs":N,
// "connsMs":N}` for one exchange of SIZE and COUNT empty ones (COUNT + 1 +
// WARMUP_CONNS connections in all); race `{"ready":[...],"ms":N}`;
// conformance `{"checks":[...]}`.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { buildGuest, type GuestMode, type GuestName, importGuest } from "./_guests.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SELF = fileURLToPath(import.meta.url);
const NS_PER_MS = 1_000_000n;

/** A runtime that can run the runner. */
export type Runtime = "node" | "deno" | "bun";

/** The runtime this code runs in. */
export function currentRuntime(): Runtime {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  return g.Bun !== undefined ? "bun" : g.Deno !== undefined ? "deno" : "node";
}

/** The command that runs `script` under `runtime`, with what a component needs. */
export function runtimeCommand(runtime: Runtime, script: string): [string, string[]] {
  const bin = (name: string): string => join(ROOT, "node_modules", ".bin", name);
  switch (runtime) {
    case "node":
      return [
        currentRuntime() === "node" ? process.execPath : "node",
        // componentize-qjs output uses extended constant expressions.
        ["--experimental-wasm-extended-const", "--import", "tsx", script],
      ];
    case "deno":
      return [existsSync(bin("deno")) ? bin("deno") : "deno", ["run", "-A", script]];
    case "bun":
      return [existsSync(bin("bun")) ? bin("bun") : "bun", [script]];
  }
}

/** A running guest process. */
export interface GuestProcess {
  /** The next JSON line it prints, or an error with its stderr after `ms`. */
  next<T>(ms: number): Promise<T>;
  /** Waits for it to exit; rejects on a non-zero status, with its stderr. */
  exited(ms: number): Promise<void>;
  /** Kills it (idempotent). */
  kill(): void;
}

/**
 * Starts the runner as a child process.
 *
 * @param runtime The runtime to run it under.
 * @param args The runner's arguments (see the top of this file).
 * @param script Another script that prints JSON lines, to run instead.
 * @returns A handle to read its JSON lines.
 * @example
 * ```ts
 * const server = spawnGuest("node", ["server", "sync", "0", "1", "30000"]);
 * try {
 *   const { port } = await server.next<{ port: number }>(60_000);
 * } finally {
 *   server.kill();
 * }
 * ```
 */
export function spawnGuest(runtime: Runtime, args: string[], script: string = SELF): GuestProcess {
  const [file, prefix] = runtimeCommand(runtime, script);
  const child = spawn(file, [...prefix, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (s: string) => {
    stderr = (stderr + s).slice(-8000);
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let closed = false;
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (line.startsWith("{")) {
      lines.push(line);
      wake();
    }
  });
  let status: number | null = null;
  const exit = new Promise<void>((done) =>
    child.on("close", (code, signal) => {
      status = code ?? (signal ? 128 : 0);
      closed = true;
      wake();
      done();
    })
  );
  child.on("error", (e) => {
    stderr += String(e);
    closed = true;
    wake();
  });
  const what = `${runtime} ${args.join(" ")}`;
  const timeout = <T>(p: Promise<T>, ms: number, doing: string): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no ${doing} within ${ms} ms\n${stderr}`)), ms);
      }),
    ]).finally(() => clearTimeout(timer));
  };
  return {
    async next<T>(ms: number): Promise<T> {
      const got = (async (): Promise<T> => {
        while (lines.length === 0) {
          if (closed) throw new Error(`${what} exited (${status}) without a result\n${stderr}`);
          await new Promise<void>((r) => waiters.push(r));
        }
        return JSON.parse(lines.shift()!) as T;
      })();
      return await timeout(got, ms, "result");
    },
    async exited(ms: number): Promise<void> {
      await timeout(exit, ms, "exit");
      if (status !== 0) throw new Error(`${what} exited with ${status}\n${stderr}`);
    },
    kill(): void {
      if (!closed) child.kill("SIGKILL");
    },
  };
}

interface EchoServer {
  listen(ipv6: boolean): number | Promise<number>;
  serve(clients: number, timeoutNs: bigint): bigint | Promise<bigint>;
}

interface EchoClient {
  exchange(ipv6: boolean, port: number, size: bigint, seed: number, timeoutNs: bigint): string | Promise<string>;
  echo(ipv6: boolean, port: number, size: bigint, seed: number, timeoutNs: bigint): string | Promise<string>;
}

interface PollRace {
  race(port: number, timeoutNs: bigint): ArrayLike<number> | Promise<ArrayLike<number>>;
}

interface Conformance {
  run(ipv6: boolean): unknown[] | Promise<unknown[]>;
}

// The guest of a pair that GUEST names.
function pairGuest(language: string | undefined, js: GuestName, wat: GuestName): GuestName {
  if (language === undefined || language === "js") return js;
  if (language === "wat") return wat;
  throw new Error(`Unknown guest ${language}: expected js or wat`);
}

async function load<T>(name: GuestName, mode: string): Promise<T> {
  if (mode !== "jspi" && mode !== "sync" && mode !== "reference") throw new Error(`Unknown mode ${mode}`);
  // One instance per process, and each process has its own module map: every
  // runner can load the same copy.
  return await importGuest<T>(await buildGuest(name, mode as GuestMode), "runner");
}

function print(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v)) + "\n");
}

async function main(argv: string[]): Promise<void> {
  const [command, mode, ...rest] = argv;
  const ns = (ms: string): bigint => BigInt(ms) * NS_PER_MS;
  switch (command) {
    case "server": {
      const [ipv6, clients, timeoutMs, language] = rest;
      const guest = await load<EchoServer>(pairGuest(language, "echo_server", "wat_echo_server"), mode);
      print({ port: await guest.listen(ipv6 === "1") });
      print({ served: await guest.serve(Number(clients), ns(timeoutMs)) });
      return;
    }
    case "client": {
      const [ipv6, port, size, seed, timeoutMs, language] = rest;
      const guest = await load<EchoClient>(pairGuest(language, "echo_client", "wat_echo_client"), mode);
      const started = performance.now();
      const digest = await guest.exchange(ipv6 === "1", Number(port), BigInt(size), Number(seed), ns(timeoutMs));
      print({ digest, ms: performance.now() - started });
      return;
    }
    case "conns": {
      const [ipv6, port, count, timeoutMs] = rest;
      const guest = await load<EchoClient>("echo_client", mode);
      const started = performance.now();
      for (let i = 0; i < Number(count); i++) {
        await guest.exchange(ipv6 === "1", Number(port), 0n, 1, ns(timeoutMs));
      }
      print({ count: Number(count), ms: performance.now() - started });
      return;
    }
    case "bench": {
      const [ipv6, port, size, count, timeoutMs, protocol, language, warmup = "65536", warmupConns = "1"] = rest;
      const guest = await load<EchoClient>(pairGuest(language, "echo_client", "wat_echo_client"), mode);
      // `echo` skips the half-close, which preview2-shim lacks.
      const call = protocol === "echo" ? guest.echo.bind(guest) : guest.exchange.bind(guest);
      const v6 = ipv6 === "1";
      // Starts the sync mode's worker and warms the code paths up, with the
      // timed exchange's seed: the echo client builds a seed's stream once
      // (tens of milliseconds in QuickJS, see echo_client.js), and that is
      // not I/O. The warm-up bytes are split over WARMUP_CONNS connections:
      // V8 keeps recompiling for the first few connections of a process.
      const each = BigInt(Math.floor(Number(warmup) / Number(warmupConns)));
      for (let i = 0; i < Number(warmupConns); i++) await call(v6, Number(port), each, 1, ns(timeoutMs));
      let started = performance.now();
      const digest = await call(v6, Number(port), BigInt(size), 1, ns(timeoutMs));
      const bytesMs = performance.now() - started;
      started = performance.now();
      for (let i = 0; i < Number(count); i++) await call(v6, Number(port), 0n, 1, ns(timeoutMs));
      print({ digest, bytesMs, connsMs: performance.now() - started });
      return;
    }
    case "race": {
      const [port, timeoutMs] = rest;
      const guest = await load<PollRace>("poll_race", mode);
      const started = performance.now();
      const ready = await guest.race(Number(port), ns(timeoutMs));
      print({ ready: [...Array.from(ready)], ms: performance.now() - started });
      return;
    }
    case "conformance": {
      const guest = await load<Conformance>("conformance" as GuestName, mode);
      print({ checks: await guest.run(rest[0] === "1") });
      return;
    }
    default:
      throw new Error(`Unknown command ${command}`);
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === SELF) {
  // The process ends by itself: the synchronous mode's worker does not hold it.
  try {
    await main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
    process.exitCode = 1;
  }
}
