// The conformance guest (tests/guests/conformance.js) runs, inside wasm, the
// checks the core tests make: states, bind/connect/listen errors, options and
// their inheritance, half-close, shutdown after a large buffered write, and a
// busy poll. It is its own server and client, so it runs in this process in
// both modes: JSPI (Deno, Bun) and synchronous (every runtime; its sockets
// live in the sync mode's worker thread while the guest blocks this one).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import process from "node:process";
import { buildGuest, type GuestMode, importGuest } from "./_guests.ts";
import { within } from "./_wasi_helpers.ts";

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

interface Conformance {
  run(ipv6: boolean): Check[] | Promise<Check[]>;
}

const hasJspi = typeof (WebAssembly as { Suspending?: unknown }).Suspending === "function" &&
  typeof (WebAssembly as { promising?: unknown }).promising === "function";
const isNode = (globalThis as { Deno?: unknown; Bun?: unknown }).Deno === undefined &&
  (globalThis as { Bun?: unknown }).Bun === undefined;
const jspiSkip: string | false = hasJspi
  ? false
  : isNode && process.versions.node.startsWith("20.")
  ? "Node 20 has no JSPI"
  : "this runtime has no JSPI";
// componentize-qjs output uses extended constant expressions, which Node 20
// only compiles with this flag (npm run test:node passes it).
const syncSkip: string | false = isNode && !process.execArgv.includes("--experimental-wasm-extended-const")
  ? "Node 20 needs --experimental-wasm-extended-const for componentize-qjs output"
  : false;
const hasV6 = await new Promise<boolean>((resolve) => {
  const s = net.createServer();
  s.once("error", () => resolve(false));
  s.listen(0, "::1", () => s.close(() => resolve(true)));
});

const BUILD_MS = 90_000;
const RUN_MS = 60_000;

function failures(checks: Check[]): string[] {
  return checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
}

for (const [mode, skip] of [["jspi", jspiSkip], ["sync", syncSkip]] as const) {
  describe(`the conformance component in ${mode} mode`, { skip }, () => {
    let guest: Promise<Conformance> | undefined;
    const load = (): Promise<Conformance> =>
      guest ??= within(
        (async () =>
          await importGuest<Conformance>(await buildGuest("conformance", mode as GuestMode), `conformance-${mode}`))(),
        "building the conformance guest",
        BUILD_MS,
      );

    for (const [family, ipv6] of [["127.0.0.1", false], ["::1", true]] as const) {
      it(`run() passes every check over ${family}`, {
        timeout: BUILD_MS + RUN_MS,
        skip: ipv6 && !hasV6 ? "no IPv6 loopback on this machine" : false,
      }, async () => {
        const component = await load();
        const checks = await within(Promise.resolve(component.run(ipv6)), `run(${ipv6})`, RUN_MS);
        assert.ok(checks.length >= 15, `only ${checks.length} checks ran`);
        assert.deepEqual(failures(checks), []);
      });
    }
  });
}
