// Builds the guest components of tests/guests/ with componentize-qjs (the JS
// guests) or jco's wasm-tools (the .wat echo pair), transpiles them with
// scripts/transpile.ts against this package's mod.ts, and caches the result
// under .cache/guests/, keyed by a hash of everything that goes into it. Also
// computes, on the host, what the guests compute.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { transpileComponent, transpileFlags, type TranspileMode, type TranspileOptions } from "../scripts/transpile.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const GUESTS = join(ROOT, "tests", "guests");
const CACHE = join(ROOT, ".cache", "guests");
const JCO = join(ROOT, "node_modules", "@bytecodealliance", "jco");
const QJS = join(ROOT, "node_modules", "componentize-qjs");

/**
 * The WASI version the guests' WIT is written against. The components end up
 * importing the newest version among this and the one componentize-qjs's own
 * runtime imports (0.2.12 for componentize-qjs 0.4.5): wit-component merges
 * semver-compatible imports into the newest.
 */
export const GUEST_WASI_VERSION = "0.2.6";
/**
 * The WASI packages the guests' worlds use: wasi:cli for stdout and stderr,
 * with filesystem and random because the cli package's own worlds name them.
 */
const WASI_PACKAGES = ["io", "clocks", "sockets", "cli", "filesystem", "random"];

/**
 * The guests of tests/guests/ and their WIT worlds. A name is its source's
 * file name: `<name>.js` built with componentize-qjs, or, for the `wat_`
 * guests, `<name without wat_>.wat` assembled with jco's wasm-tools.
 */
export const GUEST_WORLDS = {
  echo_server: "echo-server",
  echo_client: "echo-client",
  poll_race: "poll-race",
  conformance: "conformance",
  // The echo pair without an interpreter, for the guest-level benchmark.
  wat_echo_server: "echo-server",
  wat_echo_client: "echo-client",
} as const;

/** A guest name. */
export type GuestName = keyof typeof GUEST_WORLDS;

/**
 * How a guest is transpiled: `"jspi"` on mod.ts (Deno, Bun), `"sync"` on
 * sync/mod.ts (worker mode, every runtime), `"reference"` on
 * @bytecodealliance/preview2-shim alone.
 */
export type GuestMode = TranspileMode;

/** A transpiled guest in the cache. */
export interface BuiltGuest {
  /** The guest. */
  name: GuestName;
  /** How it was transpiled. */
  mode: GuestMode;
  /** The directory of the component and its transpiled JS. */
  dir: string;
  /** The entry module jco wrote. */
  entry: string;
  /** Whether it came from the cache. */
  cached: boolean;
  /** Milliseconds spent building and transpiling (0 when cached). */
  buildMs: number;
}

/**
 * The WASI WIT that jco ships, as `[package, WIT text]`, re-versioned from the
 * newest complete 0.2.x folder to {@link GUEST_WASI_VERSION}.
 */
async function wasiWit(): Promise<Array<[string, string]>> {
  const builtin = join(JCO, "lib", "wit", "builtin");
  const versions = (await readdir(builtin))
    .filter((v) => /^0\.2\.\d+$/.test(v))
    .filter((v) => WASI_PACKAGES.every((p) => existsSync(join(builtin, v, `wasi-${p}`, "package.wit"))))
    .sort((a, b) => Number(b.split(".")[2]) - Number(a.split(".")[2]));
  if (versions.length === 0) throw new Error(`No WASI 0.2.x WIT found under ${builtin}`);
  const from = versions[0];
  const out: Array<[string, string]> = [];
  for (const p of WASI_PACKAGES) {
    const text = await readFile(join(builtin, from, `wasi-${p}`, "package.wit"), "utf8");
    out.push([p, text.replaceAll(`@${from}`, `@${GUEST_WASI_VERSION}`)]);
  }
  return out;
}

async function packageVersion(dir: string): Promise<string> {
  return JSON.parse(await readFile(join(dir, "package.json"), "utf8")).version;
}

// The output imports local modules by paths relative to its own directory,
// which are the same for every directory directly under CACHE.
function specifier(target: string): string {
  const path = relative(join(CACHE, "x"), target).split(sep).join("/");
  return path.startsWith(".") ? path : `./${path}`;
}

/** The transpile options of a guest. */
function transpileOptions(name: GuestName, mode: GuestMode): TranspileOptions {
  return {
    mode,
    module: specifier(join(ROOT, mode === "sync" ? "sync/mod.ts" : "mod.ts")),
    name,
    map: { "wasi-tcp:guests/*": `${specifier(join(ROOT, "tests", "_guest_host.ts"))}#*` },
  };
}

type Wit = { world: string; deps: Array<[string, string]> };

// A JS guest through componentize-qjs, which reads its WIT from a folder.
async function componentize(name: GuestName, source: string, wit: Wit): Promise<Uint8Array> {
  const witDir = await mkdtemp(join(tmpdir(), "wasi-tcp-wit-"));
  try {
    await writeFile(join(witDir, "guests.wit"), wit.world);
    for (const [p, text] of wit.deps) {
      await mkdir(join(witDir, "deps", p), { recursive: true });
      await writeFile(join(witDir, "deps", p, "package.wit"), text);
    }
    const { componentize } = await import("componentize-qjs");
    const { component } = await componentize({
      witPath: witDir,
      world: GUEST_WORLDS[name],
      jsSource: source,
      jsPath: join(GUESTS, `${name}.js`),
      // The non-async runtime: jco's JSPI mode drives plain synchronous
      // exports, and the other modes are synchronous anyway.
      sync: true,
    });
    return component;
  } finally {
    await rm(witDir, { recursive: true, force: true });
  }
}

// A core module in the text format, assembled, given its world's types and
// wrapped as a component. The WIT goes in as one text, each WASI package
// nested in it: jco's wasm-tools cannot read a WIT folder.
async function assemble(name: GuestName, source: string, wit: Wit): Promise<Uint8Array> {
  const { parse, componentEmbed, componentNew } = await import("@bytecodealliance/jco");
  let witSource = wit.world;
  for (const [, text] of wit.deps) witSource += `\n${text.replace(/^package ([^;]+);/m, "package $1 {")}\n}\n`;
  const core = await parse(source);
  return await componentNew(await componentEmbed({ binary: core, witSource, world: GUEST_WORLDS[name] }));
}

/**
 * Builds a guest's component, from the cache when its inputs have not
 * changed: componentize-qjs for a JS guest, jco's wasm-tools for a `wat_` one.
 *
 * @param name The guest.
 * @returns The component's bytes and whether they came from the cache.
 * @throws {Error} When componentize-qjs or wasm-tools fails.
 */
async function buildComponent(name: GuestName): Promise<{ bytes: Uint8Array; key: string; cached: boolean }> {
  const wat = name.startsWith("wat_");
  const source = await readFile(join(GUESTS, wat ? `${name.slice(4)}.wat` : `${name}.js`), "utf8");
  const wit = { world: await readFile(join(GUESTS, "guests.wit"), "utf8"), deps: await wasiWit() };
  const tool = wat ? { jco: await packageVersion(JCO) } : { qjs: await packageVersion(QJS) };
  const key = createHash("sha256")
    .update(JSON.stringify({ source, ...wit, guest: GUEST_WORLDS[name], ...tool }))
    .digest("hex")
    .slice(0, 16);
  const path = join(CACHE, `${name}-${key}.wasm`);
  if (existsSync(path)) return { bytes: new Uint8Array(await readFile(path)), key, cached: true };
  const component = wat ? await assemble(name, source, wit) : await componentize(name, source, wit);
  await mkdir(CACHE, { recursive: true });
  const staging = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(staging, component);
  await rename(staging, path);
  for (const old of await readdir(CACHE)) {
    if (old.startsWith(`${name}-`) && old.endsWith(".wasm") && old !== `${name}-${key}.wasm`) {
      await rm(join(CACHE, old), { force: true });
    }
  }
  return { bytes: new Uint8Array(component), key, cached: false };
}

/**
 * Returns a guest built and transpiled for a mode, from the cache when its
 * inputs have not changed.
 *
 * @param name The guest.
 * @param mode How to transpile it (default `"jspi"`).
 * @returns Where it is.
 * @throws {Error} When componentize-qjs or jco fails.
 * @example
 * ```ts
 * const guest = await buildGuest("poll_race");
 * const { race } = await importGuest<{ race: Function }>(guest, "first");
 * ```
 */
export async function buildGuest(name: GuestName, mode: GuestMode = "jspi"): Promise<BuiltGuest> {
  const started = performance.now();
  const component = await buildComponent(name);
  const options = transpileOptions(name, mode);
  const key = createHash("sha256")
    .update(JSON.stringify({
      component: component.key,
      jco: await packageVersion(JCO),
      flags: transpileFlags(options),
      // What the script does to jco's output is part of the result too.
      script: await readFile(join(ROOT, "scripts", "transpile.ts"), "utf8"),
    }))
    .digest("hex")
    .slice(0, 16);
  const prefix = `${name}-${mode}-`;
  const dir = join(CACHE, `${prefix}${key}`);
  const entry = join(dir, `${name}.js`);
  if (existsSync(entry)) return { name, mode, dir, entry, cached: true, buildMs: 0 };

  const staging = join(CACHE, `.staging-${prefix}${key}-${process.pid}-${Date.now()}`);
  try {
    const files = await transpileComponent(component.bytes, options);
    await mkdir(staging, { recursive: true });
    for (const [path, bytes] of Object.entries(files)) {
      await mkdir(dirname(join(staging, path)), { recursive: true });
      await writeFile(join(staging, path), bytes);
    }
    // Publish the whole directory at once; a concurrent build of the same key
    // may have won the race, and its result is just as good.
    try {
      await rename(staging, dir);
    } catch (e) {
      if (!existsSync(entry)) throw e;
    }
    // Builds from older sources are dead weight.
    for (const old of await readdir(CACHE)) {
      if (old.startsWith(prefix) && old !== `${prefix}${key}`) {
        await rm(join(CACHE, old), { recursive: true, force: true });
      }
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return { name, mode, dir, entry, cached: component.cached, buildMs: performance.now() - started };
}

/**
 * Imports a transpiled guest. Each distinct `instance` gets its own module
 * record and so its own component instance: a copy of the entry module beside
 * the original (Bun ignores query strings on file imports, so a copy is the
 * one way that works everywhere).
 *
 * @param guest From {@link buildGuest}.
 * @param instance A label of letters, digits and dashes; the same label returns the same instance.
 * @returns The component's exports.
 * @throws {TypeError} When the label has other characters.
 * @example
 * ```ts
 * const a = await importGuest(guest, "a");
 * const b = await importGuest(guest, "b"); // a second instance
 * ```
 */
export async function importGuest<T>(guest: BuiltGuest, instance: string): Promise<T> {
  if (!/^[\w-]+$/.test(instance)) throw new TypeError(`Expected an instance label, got ${instance}`);
  const entry = join(guest.dir, `${guest.name}.instance-${instance}.js`);
  if (!existsSync(entry)) {
    const staging = `${entry}.${process.pid}.tmp`;
    await copyFile(guest.entry, staging);
    await rename(staging, entry);
  }
  return await import(pathToFileURL(entry).href) as T;
}

const CHUNK = 65536;
const POOL_SPAN = 262144;
const STRIDE = 40503;

/**
 * The SHA-256 of the first `size` bytes of the stream the echo client sends
 * (tests/guests/echo_client.js): chunk i is the 64 KiB at offset
 * (i * 40503) mod 256 KiB of a pool of xorshift32 words seeded with `seed`,
 * little-endian like wasm memory (and every host this runs on).
 *
 * @param size Bytes.
 * @param seed The client's seed.
 * @returns Lowercase hex.
 * @example
 * ```ts
 * const expected = echoStreamSha256(16 << 20, 1);
 * ```
 */
export function echoStreamSha256(size: number, seed: number): string {
  const words = new Uint32Array((POOL_SPAN + CHUNK) / 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  const pool = new Uint8Array(words.buffer);
  const hash = createHash("sha256");
  for (let i = 0, done = 0; done < size; i++, done += CHUNK) {
    const base = (i * STRIDE) % POOL_SPAN;
    hash.update(pool.subarray(base, base + Math.min(CHUNK, size - done)));
  }
  return hash.digest("hex");
}

/** The host end of the poll-race guest's connection. */
export interface PollRacePeer {
  /** Its port on 127.0.0.1. */
  port: number;
  /** What it does with the next connection: write "ping" after `ms`, or stay silent (undefined). */
  writeAfter(ms: number | undefined): void;
  /** Closes it and every connection it has. */
  close(): Promise<void>;
}

/**
 * Starts the peer the poll-race guest connects to.
 *
 * @returns The peer, listening.
 * @example
 * ```ts
 * const peer = await startPollRacePeer();
 * peer.writeAfter(50);
 * await peer.close();
 * ```
 */
export async function startPollRacePeer(): Promise<PollRacePeer> {
  const { createServer } = await import("node:net");
  let delay: number | undefined;
  const sockets = new Set<import("node:net").Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    if (delay !== undefined) {
      const timer = setTimeout(() => socket.write("ping"), delay);
      socket.on("close", () => clearTimeout(timer));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    writeAfter(ms) {
      delay = ms;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
