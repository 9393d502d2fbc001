// Real WebAssembly components (tests/guests/, built with componentize-qjs and
// transpiled by scripts/transpile.ts) on this package's entry, mod.ts, in
// jco's JSPI mode: the blocking WASI calls suspend the component while the
// runtime's event loop runs. Deno and Bun have JSPI; Node 20 does not.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import process from "node:process";
import {
  buildGuest,
  type BuiltGuest,
  echoStreamSha256,
  importGuest,
  type PollRacePeer,
  startPollRacePeer,
} from "./_guests.ts";
import { within } from "./_wasi_helpers.ts";

const hasJspi = typeof (WebAssembly as { Suspending?: unknown }).Suspending === "function" &&
  typeof (WebAssembly as { promising?: unknown }).promising === "function";
const isNode = (globalThis as { Deno?: unknown; Bun?: unknown }).Deno === undefined &&
  (globalThis as { Bun?: unknown }).Bun === undefined;
const skip: string | false = hasJspi
  ? false
  : isNode && process.versions.node.startsWith("20.")
  ? "Node 20 has no JSPI"
  : "this runtime has no JSPI";

const MIB = 1024 * 1024;
const SIZE = 16 * MIB;
const CLIENTS = 3;
// A cold build takes about 3 s per guest, on two cores.
const BUILD_MS = 90_000;
const EXCHANGE_MS = 30_000;
const NS_PER_MS = 1_000_000n;

interface EchoServer {
  listen(ipv6: boolean): Promise<number>;
  serve(clients: number, timeoutNs: bigint): Promise<bigint>;
}

interface EchoClient {
  exchange(ipv6: boolean, port: number, size: bigint, seed: number, timeoutNs: bigint): Promise<string>;
  echo(ipv6: boolean, port: number, size: bigint, seed: number, timeoutNs: bigint): Promise<string>;
}

interface PollRace {
  race(port: number, timeoutNs: bigint): Promise<Uint32Array | number[]>;
}

describe("JSPI components on mod.ts", { skip }, () => {
  // Built by the first test rather than a hook: bun test ignores hook
  // timeouts (5 s), and a cold build takes longer.
  let built: Promise<BuiltGuest[]> | undefined;
  const guests = (): Promise<BuiltGuest[]> =>
    built ??= within(
      Promise.all([buildGuest("echo_server"), buildGuest("echo_client"), buildGuest("poll_race")]),
      "building the guests",
      BUILD_MS,
    );

  it("buildGuest() builds the guests with componentize-qjs and jco, or finds them in the cache", {
    timeout: BUILD_MS + 5_000,
  }, async () => {
    const started = performance.now();
    const list = await guests();
    for (const g of list) assert.ok(existsSync(g.entry), `${g.name}: no ${g.entry}`);
    const fresh = list.filter((g) => !g.cached).map((g) => g.name);
    console.log(
      `guests ready in ${Math.round(performance.now() - started)} ms` +
        (fresh.length > 0 ? ` (built: ${fresh.join(", ")})` : " (cached)"),
    );
  });

  for (const [family, ipv6] of [["127.0.0.1", false], ["::1", true]] as const) {
    it(
      `serve() of the echo-server component echoes 16 MiB to each of ${CLIENTS} echo-client exchange() calls at once over ${family}, checked by SHA-256`,
      { timeout: EXCHANGE_MS + 5_000 },
      async () => {
        const tag = ipv6 ? "v6" : "v4";
        const [server, client] = await guests();
        const echo = await importGuest<EchoServer>(server, `server-${tag}`);
        const clients = await Promise.all(
          Array.from({ length: CLIENTS }, (_, i) => importGuest<EchoClient>(client, `client-${tag}-${i}`)),
        );
        // Separate module records must mean separate component instances.
        assert.equal(new Set(clients).size, CLIENTS);

        const port = await echo.listen(ipv6);
        assert.ok(port > 0 && port < 65536, `listen returned port ${port}`);
        const timeoutNs = BigInt(EXCHANGE_MS) * NS_PER_MS;
        const started = performance.now();
        const serving = echo.serve(CLIENTS, timeoutNs);
        const exchanges = clients.map((c, i) => c.exchange(ipv6, port, BigInt(SIZE), i + 1, timeoutNs));
        const results = await within(
          Promise.allSettled([serving, ...exchanges]),
          `the ${family} exchange`,
          EXCHANGE_MS + 2_000,
        );
        const ms = performance.now() - started;
        const failures = results.filter((r) => r.status === "rejected").map((r) => String(r.reason));
        assert.deepEqual(failures, []);
        const [served, ...digests] = results.map((r) => (r as PromiseFulfilledResult<unknown>).value);
        assert.equal(served, BigInt(CLIENTS * SIZE));
        assert.deepEqual(digests, clients.map((_, i) => echoStreamSha256(SIZE, i + 1)));
        console.log(
          `${family}: ${CLIENTS} x 16 MiB echoed in ${Math.round(ms)} ms ` +
            `(${((CLIENTS * SIZE * 2) / MIB / (ms / 1000)).toFixed(1)} MiB/s through the server)`,
        );
      },
    );
  }

  it("the hand-written echo pair (echo_server.wat, echo_client.wat) echoes with and without a half-close, checked by SHA-256", {
    timeout: BUILD_MS + EXCHANGE_MS,
  }, async () => {
    const [server, client] = await within(
      Promise.all([buildGuest("wat_echo_server"), buildGuest("wat_echo_client")]),
      "building the hand-written guests",
      BUILD_MS,
    );
    const echo = await importGuest<EchoServer>(server, "wat-server");
    const guest = await importGuest<EchoClient>(client, "wat-client");
    const port = await echo.listen(false);
    const timeoutNs = BigInt(EXCHANGE_MS) * NS_PER_MS;
    // Both settle before any assertion, so a failed client leaves no serve()
    // behind to reject during a later test.
    const [served, exchanges] = await within(
      Promise.allSettled([
        echo.serve(2, timeoutNs),
        (async () => [
          await guest.exchange(false, port, BigInt(4 * MIB), 3, timeoutNs),
          await guest.echo(false, port, BigInt(4 * MIB + 1), 1, timeoutNs),
        ])(),
      ]),
      "the exchanges",
      EXCHANGE_MS + 2_000,
    );
    assert.equal(exchanges.status, "fulfilled", String((exchanges as PromiseRejectedResult).reason));
    assert.equal(served.status, "fulfilled", String((served as PromiseRejectedResult).reason));
    assert.deepEqual(
      (exchanges as PromiseFulfilledResult<string[]>).value,
      [echoStreamSha256(4 * MIB, 3), echoStreamSha256(4 * MIB + 1, 1)],
    );
    assert.equal((served as PromiseFulfilledResult<bigint>).value, BigInt(8 * MIB + 1));
  });

  describe("poll on a socket and a monotonic-clock timeout inside a component", () => {
    let peer: PollRacePeer;
    let port: number;

    before(async () => {
      peer = await startPollRacePeer();
      port = peer.port;
    });

    after(() => peer.close());

    it(
      "race() of the poll-race component returns the socket when data arrives before the timeout",
      { timeout: 20_000 },
      async () => {
        const guest = await importGuest<PollRace>((await guests())[2], "socket-first");
        peer.writeAfter(50);
        const started = performance.now();
        const ready = await within(guest.race(port, 10_000n * NS_PER_MS), "poll on the socket", 15_000);
        const ms = performance.now() - started;
        assert.deepEqual([...ready], [0]);
        assert.ok(ms >= 45, `poll returned after ${ms.toFixed(1)} ms, before the peer wrote`);
        assert.ok(ms < 9_000, `poll returned after ${ms.toFixed(1)} ms, as late as the timeout`);
      },
    );

    it(
      "race() of the poll-race component returns the clock when the socket stays silent",
      { timeout: 20_000 },
      async () => {
        const guest = await importGuest<PollRace>((await guests())[2], "clock-first");
        peer.writeAfter(undefined);
        const timeoutMs = 200;
        const started = performance.now();
        const ready = await within(guest.race(port, BigInt(timeoutMs) * NS_PER_MS), "poll on the clock", 15_000);
        const ms = performance.now() - started;
        assert.deepEqual([...ready], [1]);
        assert.ok(ms >= timeoutMs - 1, `poll returned after ${ms.toFixed(1)} ms, before the timeout`);
      },
    );
  });
});
