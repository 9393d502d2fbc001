// The npm package end to end: build it with scripts/build_npm.ts, `npm pack`
// it, install the tarball into a fresh project, then import it by name there
// under Node, Bun and Deno (listen, connect, echo) and type-check a consumer
// against the emitted declarations with tsc. It drives all three runtimes
// itself, so it runs in the Node pass of `npm test` only.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const g = globalThis as { Deno?: unknown; Bun?: unknown };
const skip: string | false = g.Deno !== undefined || g.Bun !== undefined
  ? "drives Node, Bun and Deno itself; runs in the Node pass of npm test"
  : false;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "node_modules", ".bin");
// Generous for a loaded 2-core machine; a healthy run takes a few seconds each.
const STEP_MS = 60_000;
const RUN_MS = 30_000;

interface Output {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, killing it after `timeout` ms. */
function run(file: string, args: string[], cwd: string, timeout = RUN_MS): Promise<Output> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd, timeout, killSignal: "SIGKILL", maxBuffer: 16 << 20, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error === null) resolve({ stdout, stderr });
        else reject(new Error(`${[file, ...args].join(" ")} failed in ${cwd}: ${error.message}\n${stdout}\n${stderr}`));
      },
    );
  });
}

// Listens, connects and echoes a message through the package, imported by
// name, then prints which backend `import "wasi-tcp"` picked.
const SMOKE = `
import { instanceNetwork, runtimeBackend, tcpCreateSocket } from "wasi-tcp";
import { MemoryNetwork } from "wasi-tcp/core";

const HOST = [127, 0, 0, 1];

async function finish(socket, call) {
  const pollable = socket.subscribe();
  try {
    for (;;) {
      try {
        return call();
      } catch (e) {
        if (e?.payload !== "would-block") throw e;
      }
      await pollable.block();
    }
  } finally {
    pollable[Symbol.dispose]();
  }
}

async function readText(input, n) {
  let text = "";
  while (text.length < n) text += new TextDecoder().decode(await input.blockingRead(BigInt(n - text.length)));
  return text;
}

const backend = (await runtimeBackend()).name;
const subpath = await import("wasi-tcp/" + backend);
const factory = "create" + backend[0].toUpperCase() + backend.slice(1) + "Backend";
if (typeof subpath[factory] !== "function") throw new Error("wasi-tcp/" + backend + " lacks " + factory);
if (typeof MemoryNetwork !== "function") throw new Error("wasi-tcp/core lacks MemoryNetwork");

const network = instanceNetwork.instanceNetwork();
const listener = tcpCreateSocket.createTcpSocket("ipv4");
const client = tcpCreateSocket.createTcpSocket("ipv4");
const resources = [client, listener];
try {
  listener.startBind(network, { tag: "ipv4", val: { port: 0, address: HOST } });
  await finish(listener, () => listener.finishBind());
  listener.startListen();
  await finish(listener, () => listener.finishListen());
  const { port } = listener.localAddress().val;
  client.startConnect(network, { tag: "ipv4", val: { port, address: HOST } });
  const [input, output] = await finish(client, () => client.finishConnect());
  resources.unshift(input, output);
  const [server, serverIn, serverOut] = await finish(listener, () => listener.accept());
  resources.unshift(serverIn, serverOut, server);
  const message = "echo through wasi-tcp";
  await output.blockingWriteAndFlush(new TextEncoder().encode(message));
  await serverOut.blockingWriteAndFlush(new TextEncoder().encode(await readText(serverIn, message.length)));
  console.log(JSON.stringify({ backend, echoed: await readText(input, message.length) }));
} finally {
  for (const r of resources) r[Symbol.dispose]();
}
`;

// The synchronous mode, imported by name: its worker module must be in the
// package and load from it.
const SYNC_SMOKE = `
import { instanceNetwork, poll, tcpCreateSocket } from "wasi-tcp/sync";

const HOST = [127, 0, 0, 1];

function finish(socket, call) {
  const pollable = socket.subscribe();
  try {
    for (;;) {
      try {
        return call();
      } catch (e) {
        if (e?.payload !== "would-block") throw e;
      }
      poll.poll([pollable]);
    }
  } finally {
    pollable[Symbol.dispose]();
  }
}

function readText(input, n) {
  let text = "";
  while (text.length < n) text += new TextDecoder().decode(input.blockingRead(BigInt(n - text.length)));
  return text;
}

const network = instanceNetwork.instanceNetwork();
const listener = tcpCreateSocket.createTcpSocket("ipv4");
const client = tcpCreateSocket.createTcpSocket("ipv4");
const resources = [client, listener];
try {
  listener.startBind(network, { tag: "ipv4", val: { port: 0, address: HOST } });
  listener.finishBind();
  listener.startListen();
  listener.finishListen();
  client.startConnect(network, listener.localAddress());
  const [input, output] = finish(client, () => client.finishConnect());
  resources.unshift(input, output);
  const [server, serverIn, serverOut] = finish(listener, () => listener.accept());
  resources.unshift(serverIn, serverOut, server);
  const message = "echo through wasi-tcp/sync";
  output.blockingWriteAndFlush(new TextEncoder().encode(message));
  serverOut.blockingWriteAndFlush(new TextEncoder().encode(readText(serverIn, message.length)));
  console.log(JSON.stringify({ backend: "sync", echoed: readText(input, message.length) }));
} finally {
  for (const r of resources) r[Symbol.dispose]();
}
`;

// Uses every entry point with its declared types; the @ts-expect-error lines
// fail the check if the declarations degrade to any.
const CONSUMER = `
import {
  createImportObject,
  createWasiSockets,
  instanceNetwork,
  type IpSocketAddress,
  NetworkError,
  runtimeBackend,
  tcpCreateSocket,
  type WasiSockets,
} from "wasi-tcp";
import { createNodeBackend } from "wasi-tcp/node";
import { createDenoBackend } from "wasi-tcp/deno";
import { createBunBackend } from "wasi-tcp/bun";
import { MemoryNetwork, type TcpBackend } from "wasi-tcp/core";

const backends: TcpBackend[] = [createNodeBackend(), createDenoBackend(), createBunBackend()];
const wasi: WasiSockets = createWasiSockets({ backend: await runtimeBackend() });
const imports: Record<string, unknown> = createImportObject(wasi);
const local: IpSocketAddress = { tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } };
const socket = tcpCreateSocket.createTcpSocket("ipv4");
socket.startBind(instanceNetwork.instanceNetwork(), local);
socket[Symbol.dispose]();
const memory: TcpBackend = new MemoryNetwork().backend;
const failure: NetworkError = new NetworkError("timeout", "Timed out");
export const summary: [number, number, string, string] = [
  backends.length,
  Object.keys(imports).length,
  memory.name,
  failure.payload,
];

// @ts-expect-error createTcpSocket takes an address family
tcpCreateSocket.createTcpSocket("ipx");
// @ts-expect-error runtimeBackend() returns a Promise
export const name: string = runtimeBackend().name;
`;

// No @types/node: the declarations must stand on the ES library alone (plus
// Symbol.dispose, which the resources implement).
const TSCONFIG = {
  compilerOptions: {
    target: "es2022",
    module: "nodenext",
    moduleResolution: "nodenext",
    lib: ["es2022", "esnext.disposable"],
    types: [],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
  },
  files: ["consumer.ts"],
};

// Skipped test by test rather than as a suite: bun test drops a skipped
// describe without a word, but reports skipped tests.
describe("npm package wasi-tcp", () => {
  let temp = "";
  let project = "";

  before(async () => {
    if (skip) return;
    temp = await mkdtemp(join(tmpdir(), "wasi-tcp-packaging-"));
    const out = join(temp, "npm");
    project = join(temp, "project");
    await run(process.execPath, ["--import", "tsx", "scripts/build_npm.ts", "--out", out], ROOT, STEP_MS);
    const packed = JSON.parse((await run("npm", ["pack", "--json", "--pack-destination", temp], out)).stdout);
    const tarball = join(temp, packed[0].filename);
    await mkdir(project);
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    // A local tarball with no dependencies needs no registry.
    await run("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], project, STEP_MS);
    await writeFile(join(project, "smoke.mjs"), SMOKE);
    await writeFile(join(project, "sync_smoke.mjs"), SYNC_SMOKE);
    await writeFile(join(project, "consumer.ts"), CONSUMER);
    await writeFile(join(project, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
  }, { timeout: 3 * STEP_MS });

  after(async () => {
    if (temp !== "") await rm(temp, { recursive: true, force: true });
  });

  async function smoke(file: string, args: string[]): Promise<{ backend: string; echoed: string }> {
    const { stdout } = await run(file, args, project);
    const last = stdout.trim().split("\n").pop() ?? "";
    return JSON.parse(last);
  }

  it("npm pack ships ESM, declarations, README, LICENSE and CHANGELOG, with no dependencies", { skip }, async () => {
    const installed = join(project, "node_modules", "wasi-tcp");
    const manifest = JSON.parse(await readFile(join(installed, "package.json"), "utf8"));
    const deno = JSON.parse(await readFile(join(ROOT, "deno.json"), "utf8"));
    assert.equal(manifest.name, "wasi-tcp");
    assert.equal(manifest.version, deno.version);
    assert.equal(manifest.type, "module");
    for (const field of ["dependencies", "peerDependencies", "optionalDependencies", "bundleDependencies"]) {
      assert.equal(manifest[field], undefined, field);
    }
    const root = manifest.exports["."];
    assert.deepEqual(Object.keys(root), ["types", "bun", "deno", "node", "default"]);
    assert.equal(root.default, root.node);
    for (const subpath of Object.keys(deno.exports)) assert.ok(subpath in manifest.exports, subpath);
    const files = (await readdir(installed, { recursive: true })).map(String);
    for (const name of ["README.md", "LICENSE", "CHANGELOG.md", "esm/mod.d.ts", "esm/entry_bun.js"]) {
      assert.ok(files.includes(name), name);
    }
    assert.deepEqual(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), []);
  });

  it('import "wasi-tcp" under Node resolves the node entry and echoes over loopback', { skip }, async () => {
    assert.deepEqual(await smoke(process.execPath, ["smoke.mjs"]), {
      backend: "node",
      echoed: "echo through wasi-tcp",
    });
  });

  it('import "wasi-tcp" under Bun resolves the bun entry and echoes over loopback', { skip }, async () => {
    assert.deepEqual(await smoke(join(BIN, "bun"), ["smoke.mjs"]), {
      backend: "bun",
      echoed: "echo through wasi-tcp",
    });
  });

  it('import "wasi-tcp" under Deno, through node_modules, resolves the deno entry and echoes', { skip }, async () => {
    // With a package.json and no deno.json, "manual" is Deno's default; say so
    // anyway: Deno must use the installed node_modules, not fetch from npm.
    const args = ["run", "-A", "--node-modules-dir=manual", "--no-lock", "smoke.mjs"];
    assert.deepEqual(await smoke(join(BIN, "deno"), args), {
      backend: "deno",
      echoed: "echo through wasi-tcp",
    });
  });

  it('import "wasi-tcp/sync" starts its worker from the package and echoes under Node, Bun and Deno', { skip }, async () => {
    const expected = { backend: "sync", echoed: "echo through wasi-tcp/sync" };
    assert.deepEqual(await smoke(process.execPath, ["sync_smoke.mjs"]), expected, "node");
    assert.deepEqual(await smoke(join(BIN, "bun"), ["sync_smoke.mjs"]), expected, "bun");
    const deno = ["run", "-A", "--node-modules-dir=manual", "--no-lock", "sync_smoke.mjs"];
    assert.deepEqual(await smoke(join(BIN, "deno"), deno), expected, "deno");
  });

  it("the emitted .d.ts type-check a consumer with tsc (moduleResolution nodenext)", { skip }, async () => {
    await run(join(BIN, "tsc"), ["-p", "tsconfig.json"], project, STEP_MS);
  });
});
