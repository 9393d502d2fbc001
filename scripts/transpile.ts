// Transpiles a WebAssembly component with jco so that its TCP, I/O and
// monotonic-clock imports come from this package:
//
//   node --import tsx scripts/transpile.ts component.wasm -o out [--mode jspi|sync|reference] [--module SPECIFIER]
//   node_modules/.bin/deno run -A scripts/transpile.ts component.wasm -o out [...]
//   node_modules/.bin/bun scripts/transpile.ts component.wasm -o out [...]
//
// Modes:
// - `jspi` (default; Deno, Bun): the blocking imports (our unversioned async
//   import list, which jco matches against any 0.2.x) suspend the component,
//   and every export becomes a Promise-returning function.
// - `sync` (any runtime, Node 20 included): a synchronous component on the
//   `wasi-tcp/sync` entry, whose sockets live in a worker thread.
// - `reference`: a synchronous component on @bytecodealliance/preview2-shim
//   alone, to compare against.
//
// jco 1.35's output reads `process.env.JCO_DEBUG` on every import call (in
// `_debugLog`, several times per call); on Deno that is a call into the
// runtime each time, and it cost a JSPI echo guest there about a third of its
// throughput. The output therefore reads it once, when the module loads;
// `--keep-debug-check` leaves jco's output as it is.
//
// jco also copies every `list<u8>` argument out of guest memory
// (`ArrayBuffer.slice`) before calling the host, since a host may keep what it
// is given. A host object that copies such an argument before it returns
// says so with the registered symbol `wasi-tcp.copiesListArguments` (this
// package's synchronous output streams do); the output then lends its method a
// view of guest memory instead, and copies for every other host as before.
// In the Node synchronous echo benchmark the copy was about a tenth of the
// client's time. `--keep-list-copies` leaves jco's copies as they are.
//
// `--module` is how the output imports this package (default `wasi-tcp`, or
// `wasi-tcp/sync` in sync mode; a relative path such as `../mod.ts` works
// too). Every other WASI interface the component imports comes from
// @bytecodealliance/preview2-shim, jco's default. `--map FROM=TO` adds
// mappings for the component's other imports, and `--print-flags` prints the
// equivalent `jco transpile` flags instead.
//
// Needs the devDependency @bytecodealliance/jco.

import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { ASYNC_IMPORTS } from "../core/wasi_sockets.ts";

/** Options of {@link transpileComponent}. */
export interface TranspileOptions {
  /** The specifier by which the output imports this package (default `"wasi-tcp"`). */
  module?: string;
  /** The base name of the output files (default `"component"`). */
  name?: string;
  /** Exports to make Promise-returning (default `["*"]`: all of them). */
  asyncExports?: readonly string[];
  /** Further jco mappings, for the component's own non-WASI imports. */
  map?: Readonly<Record<string, string>>;
  /**
   * `"jspi"` (default): blocking imports suspend the component (Deno, Bun).
   * `"sync"`: a synchronous component on the `./sync` entry (worker mode; any
   * runtime, Node 20 included); `module` should then name that entry.
   * `"reference"`: a synchronous component on @bytecodealliance/preview2-shim
   * alone, for comparison; `module` is ignored.
   */
  mode?: TranspileMode;
  /**
   * Whether jco's per-call read of `process.env.JCO_DEBUG` is made once, at
   * module load (default `true`); the output is otherwise jco's own.
   */
  readDebugOnce?: boolean;
  /**
   * Whether a method whose object carries the symbol
   * `Symbol.for("wasi-tcp.copiesListArguments")` gets its `list<u8>`
   * arguments as views of guest memory instead of copies (default `true`);
   * objects without it get jco's copies.
   */
  lendLists?: boolean;
}

/** How a component's blocking imports are bridged. */
export type TranspileMode = "jspi" | "sync" | "reference";

// jco 1.35's `_debugLog` and its check, and what they become.
const DEBUG_LOG = "const _debugLog = ";
const DEBUG_CHECK = "if (!globalThis?.process?.env?.JCO_DEBUG) { return; }";
const DEBUG_ONCE = "const $wasiTcpJcoDebug = globalThis?.process?.env?.JCO_DEBUG;\n";

/**
 * Makes jco's debug check read the environment once per module instead of
 * on every import call. Output without jco 1.35's `_debugLog` and its check
 * (another jco) is returned as it is.
 *
 * @param js A module jco wrote.
 * @returns The module, its debug check hoisted.
 * @example
 * ```ts
 * import { readDebugOnce } from "./transpile.ts";
 * console.log(readDebugOnce("export const x = 1;")); // unchanged
 * ```
 */
export function readDebugOnce(js: string): string {
  const at = js.indexOf(DEBUG_LOG);
  if (at < 0 || !js.includes(DEBUG_CHECK, at)) return js;
  // Declared right before `_debugLog`, which nothing can call earlier.
  return js.slice(0, at) + DEBUG_ONCE + js.slice(at).replaceAll(DEBUG_CHECK, "if (!$wasiTcpJcoDebug) { return; }");
}

// jco's copy of a list<u8> argument out of guest memory, in a method's
// trampoline (the resource is `rsc0`), and what it becomes.
const LIST_COPY = /var (result\d+) = new Uint8Array\((memory\d+)\.buffer\.slice\((ptr\d+), \3 \+ (len\d+) \* 1\)\);/g;
const TRAMPOLINE = /\n(?:const _trampoline\d+ = (?:async )?function|(?:async )?function trampoline\d+)\(/g;
const COPIES_ONCE = 'const $wasiTcpCopiesLists = Symbol.for("wasi-tcp.copiesListArguments");\n';

/**
 * Makes jco's output lend `list<u8>` arguments, as views of guest memory, to
 * the methods of objects that mark themselves with the registered symbol
 * `wasi-tcp.copiesListArguments` (they copy what they keep before returning);
 * every other callee still gets a copy. Output without jco's copy in a
 * method's trampoline is returned as it is.
 *
 * @param js A module jco wrote.
 * @returns The module, lending where the callee allows it.
 * @example
 * ```ts
 * import { lendLists } from "./transpile.ts";
 * console.log(lendLists("export const x = 1;")); // unchanged
 * ```
 */
export function lendLists(js: string): string {
  const starts = [...js.matchAll(TRAMPOLINE)].map((m) => m.index!);
  if (starts.length === 0) return js;
  const parts = [js.slice(0, starts[0])];
  let patched = 0;
  for (let i = 0; i < starts.length; i++) {
    const part = js.slice(starts[i], starts[i + 1] ?? js.length);
    const resource = part.indexOf("var rsc0 = ");
    // An async trampoline (a JSPI import) awaits before it calls the host,
    // and guest memory may grow meanwhile: it keeps jco's copy.
    if (resource < 0 || /^\n(?:const _trampoline\d+ = async |async )/.test(part)) {
      parts.push(part);
      continue;
    }
    parts.push(part.slice(0, resource) + part.slice(resource).replace(LIST_COPY, (_all, result, memory, ptr, len) => {
      patched++;
      // The callee reads a view only during the call, which is synchronous:
      // guest memory cannot grow meanwhile.
      return `var ${result} = rsc0[$wasiTcpCopiesLists] === true ? new Uint8Array(${memory}.buffer, ${ptr}, ${len}) : ` +
        `new Uint8Array(${memory}.buffer.slice(${ptr}, ${ptr} + ${len} * 1));`;
    }));
  }
  if (patched === 0) return js;
  // Declared before the first trampoline, which nothing can call earlier.
  return parts[0] + COPIES_ONCE + parts.slice(1).join("");
}

/** The WASI interface families this package serves. */
const SERVED = ["wasi:sockets", "wasi:io", "wasi:clocks"] as const;

/**
 * The `--async-imports` names: the package's unversioned list, which jco
 * matches against whatever 0.2.x version a component imports.
 *
 * @returns Names such as `wasi:io/poll#poll`.
 * @example
 * ```ts
 * import { jspiAsyncImports } from "./transpile.ts";
 * console.log(jspiAsyncImports().includes("wasi:io/poll#poll")); // true
 * ```
 */
export function jspiAsyncImports(): string[] {
  return [...ASYNC_IMPORTS];
}

/**
 * The `--map` entries that send the served interfaces to `module`.
 *
 * @param module The specifier of this package in the output.
 * @returns A jco map, e.g. `{ "wasi:sockets/*": "wasi-tcp#*", ... }`.
 * @example
 * ```ts
 * import { wasiTcpMap } from "./transpile.ts";
 * console.log(wasiTcpMap("wasi-tcp")["wasi:io/*"]); // "wasi-tcp#*"
 * ```
 */
export function wasiTcpMap(module: string): Record<string, string> {
  return Object.fromEntries(SERVED.map((family) => [`${family}/*`, `${module}#*`]));
}

/** The package entry a mode imports by default. */
function defaultModule(mode: TranspileMode): string {
  return mode === "sync" ? "wasi-tcp/sync" : "wasi-tcp";
}

/**
 * The equivalent `jco transpile` command-line flags.
 *
 * @param options The module specifier, async exports and further mappings.
 * @returns Flags to append to `jco transpile component.wasm -o out`.
 * @example
 * ```ts
 * import { transpileFlags } from "./transpile.ts";
 * console.log(transpileFlags({ module: "wasi-tcp" }).join(" "));
 * ```
 */
export function transpileFlags(options: TranspileOptions = {}): string[] {
  const mode = options.mode ?? "jspi";
  const map = mode === "reference"
    ? { ...options.map }
    : { ...options.map, ...wasiTcpMap(options.module ?? defaultModule(mode)) };
  const maps = [
    ...Object.entries(map).flatMap(([from, to]) => ["--map", `${from}=${to}`]),
    "--import-bindings",
    "hybrid",
  ];
  if (mode !== "jspi") return maps;
  return [
    ...maps,
    "--async-mode",
    "jspi",
    "--async-imports",
    ...jspiAsyncImports(),
    "--async-exports",
    ...(options.asyncExports ?? ["*"]),
  ];
}

/**
 * Transpiles component bytes for JSPI against this package.
 *
 * @param component The component's bytes.
 * @param options The module specifier, output name, async exports and further mappings.
 * @returns The output files by relative path (JS, core wasm, .d.ts).
 * @throws {Error} When jco rejects the component.
 * @example
 * ```ts
 * import { readFile } from "node:fs/promises";
 * import { transpileComponent } from "./transpile.ts";
 * const files = await transpileComponent(await readFile("c.wasm"), { name: "c" });
 * console.log(Object.keys(files)); // ["c.core.wasm", ..., "c.js", ...]
 * ```
 */
export async function transpileComponent(
  component: Uint8Array,
  options: TranspileOptions = {},
): Promise<Record<string, Uint8Array>> {
  const { transpile } = await import("@bytecodealliance/jco");
  const mode = options.mode ?? "jspi";
  const map = mode === "reference"
    ? { ...options.map }
    : { ...options.map, ...wasiTcpMap(options.module ?? defaultModule(mode)) };
  const { files } = await transpile(component, {
    name: options.name ?? "component",
    map,
    quiet: true,
    importBindings: "hybrid",
    ...(mode === "jspi"
      ? {
        asyncMode: "jspi",
        asyncImports: jspiAsyncImports(),
        asyncExports: [...(options.asyncExports ?? ["*"])],
      }
      : {}),
  });
  const debugOnce = options.readDebugOnce !== false;
  const lend = options.lendLists !== false;
  if (!debugOnce && !lend) return files;
  const out: Record<string, Uint8Array> = {};
  for (const [path, bytes] of Object.entries(files)) {
    if (!path.endsWith(".js")) {
      out[path] = bytes;
      continue;
    }
    let js = new TextDecoder().decode(bytes);
    if (debugOnce) js = readDebugOnce(js);
    if (lend) js = lendLists(js);
    out[path] = new TextEncoder().encode(js);
  }
  return out;
}

/**
 * Transpiles a component file into a directory.
 *
 * @param componentPath The `.wasm` component.
 * @param outDir The output directory, created if missing.
 * @param options As for {@link transpileComponent}; the name defaults to the file's base name.
 * @returns The paths written.
 * @throws {Error} When the file cannot be read or jco rejects it.
 * @example
 * ```ts
 * import { transpileFile } from "./transpile.ts";
 * await transpileFile("echo.wasm", "out", { module: "wasi-tcp" });
 * ```
 */
export async function transpileFile(
  componentPath: string,
  outDir: string,
  options: TranspileOptions = {},
): Promise<string[]> {
  const name = options.name ?? componentPath.replace(/^.*[\\/]/, "").replace(/\.wasm$/, "");
  const files = await transpileComponent(await readFile(componentPath), { ...options, name });
  const written: string[] = [];
  for (const [path, bytes] of Object.entries(files)) {
    const target = join(outDir, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, bytes);
    written.push(target);
  }
  return written;
}

const USAGE = "Usage: transpile.ts COMPONENT.wasm -o OUT_DIR [--mode jspi|sync|reference] [--module SPECIFIER] " +
  "[--name NAME] [--async-exports NAME]... [--map FROM=TO]... [--keep-debug-check] [--keep-list-copies] " +
  "[--print-flags]";

async function main(argv: string[]): Promise<number> {
  let input: string | undefined;
  let outDir: string | undefined;
  let printFlags = false;
  const options: TranspileOptions = {};
  const exports: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`Missing value after ${arg}`);
      return v;
    };
    if (arg === "-o" || arg === "--out-dir") outDir = value();
    else if (arg === "--module") options.module = value();
    else if (arg === "--mode") {
      const mode = value();
      if (mode !== "jspi" && mode !== "sync" && mode !== "reference") {
        throw new Error(`Expected --mode jspi, sync or reference, got ${mode}\n${USAGE}`);
      }
      options.mode = mode;
    }
    else if (arg === "--name") options.name = value();
    else if (arg === "--async-exports") exports.push(value());
    else if (arg === "--map" || arg === "-M") {
      const [from, to] = value().split("=");
      if (!from || !to) throw new Error(`Expected --map FROM=TO\n${USAGE}`);
      options.map = { ...options.map, [from]: to };
    } else if (arg === "--keep-debug-check") options.readDebugOnce = false;
    else if (arg === "--keep-list-copies") options.lendLists = false;
    else if (arg === "--print-flags") printFlags = true;
    else if (arg === "-h" || arg === "--help") {
      console.log(USAGE);
      return 0;
    } else if (!arg.startsWith("-") && input === undefined) input = arg;
    else throw new Error(`Unexpected argument ${arg}\n${USAGE}`);
  }
  if (exports.length > 0) options.asyncExports = exports;
  if (printFlags) {
    console.log(transpileFlags(options).map((f) => (/^[\w@./:-]+$/.test(f) ? f : `'${f}'`)).join(" "));
    return 0;
  }
  if (input === undefined || outDir === undefined) {
    console.error(USAGE);
    return 2;
  }
  const written = await transpileFile(input, outDir, options);
  for (const path of written) console.log(path);
  return 0;
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] !== undefined && resolve(process.argv[1]) === self) {
  process.exitCode = await main(process.argv.slice(2));
}
