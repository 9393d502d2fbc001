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
  const maps = Object.entries(map).flatMap(([from, to]) => ["--map", `${from}=${to}`]);
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
    ...(mode === "jspi"
      ? {
        asyncMode: "jspi",
        asyncImports: jspiAsyncImports(),
        asyncExports: [...(options.asyncExports ?? ["*"])],
      }
      : {}),
  });
  if (options.readDebugOnce === false) return files;
  const out: Record<string, Uint8Array> = {};
  for (const [path, bytes] of Object.entries(files)) {
    out[path] = path.endsWith(".js")
      ? new TextEncoder().encode(readDebugOnce(new TextDecoder().decode(bytes)))
      : bytes;
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
  "[--name NAME] [--async-exports NAME]... [--map FROM=TO]... [--keep-debug-check] [--print-flags]";

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
