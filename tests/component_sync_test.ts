// Real WebAssembly components (tests/guests/) in the synchronous mode
// (sync/mod.ts), under the runtime running this file: Node 20, Deno or Bun. A
// synchronous component blocks its thread while it waits, so each component
// runs in a process of its own (tests/_guest_runner.ts).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { buildGuest, echoStreamSha256, type PollRacePeer, startPollRacePeer } from "./_guests.ts";
import { currentRuntime, type GuestProcess, spawnGuest } from "./_guest_runner.ts";
import { within } from "./_wasi_helpers.ts";

const runtime = currentRuntime();
const MIB = 1024 * 1024;
const SIZE = 16 * MIB;
const CLIENTS = 3;
const BUILD_MS = 90_000;
// Process start, a cold worker (tsx under Node) and 16 MiB each way.
const EXCHANGE_MS = 60_000;

const hasV6 = await new Promise<boolean>((resolve) => {
  const s = net.createServer();
  s.once("error", () => resolve(false));
  s.listen(0, "::1", () => s.close(() => resolve(true)));
});

describe(`synchronous components on sync/mod.ts (${runtime})`, () => {
  let built: Promise<unknown> | undefined;
  // Built once here, so that the child processes find them in the cache.
  const guests = (): Promise<unknown> =>
    built ??= within(
      Promise.all([
        buildGuest("echo_server", "sync"),
        buildGuest("echo_client", "sync"),
        buildGuest("poll_race", "sync"),
        buildGuest("wat_echo_server", "sync"),
        buildGuest("wat_echo_client", "sync"),
      ]),
      "building the guests",
      BUILD_MS,
    );

  it("buildGuest() transpiles the guests for the synchronous mode", { timeout: BUILD_MS + 5_000 }, async () => {
    await guests();
  });

  for (const [family, ipv6] of [["127.0.0.1", false], ["::1", true]] as const) {
    it(
      `serve() of the echo-server component echoes 16 MiB to each of ${CLIENTS} echo-client processes over ${family}, checked by SHA-256`,
      { timeout: EXCHANGE_MS + BUILD_MS, skip: ipv6 && !hasV6 ? "no IPv6 loopback on this machine" : false },
      async () => {
        await guests();
        const children: GuestProcess[] = [];
        try {
          const server = spawnGuest(runtime, ["server", "sync", ipv6 ? "1" : "0", String(CLIENTS), String(EXCHANGE_MS)]);
          children.push(server);
          const { port } = await server.next<{ port: number }>(EXCHANGE_MS);
          assert.ok(port > 0 && port < 65536, `listen returned port ${port}`);
          const started = performance.now();
          const clients = Array.from({ length: CLIENTS }, (_, i) => {
            const c = spawnGuest(runtime, [
              "client",
              "sync",
              ipv6 ? "1" : "0",
              String(port),
              String(SIZE),
              String(i + 1),
              String(EXCHANGE_MS),
            ]);
            children.push(c);
            return c;
          });
          const digests = await Promise.all(clients.map((c) => c.next<{ digest: string }>(EXCHANGE_MS)));
          const { served } = await server.next<{ served: string }>(EXCHANGE_MS);
          const ms = performance.now() - started;
          assert.equal(BigInt(served), BigInt(CLIENTS * SIZE));
          assert.deepEqual(digests.map((d) => d.digest), clients.map((_, i) => echoStreamSha256(SIZE, i + 1)));
          await Promise.all(children.map((c) => c.exited(EXCHANGE_MS)));
          console.log(`${runtime} sync, ${family}: ${CLIENTS} x 16 MiB echoed in ${Math.round(ms)} ms (process start included)`);
        } finally {
          for (const c of children) c.kill();
        }
      },
    );
  }

  it(
    "the hand-written echo pair (echo_server.wat, echo_client.wat) echoes with and without a half-close, checked by SHA-256",
    { timeout: EXCHANGE_MS + BUILD_MS },
    async () => {
      await guests();
      const children: GuestProcess[] = [];
      try {
        // One exchange, then the benchmark's warm-up, one echo and 3 empty ones.
        const server = spawnGuest(runtime, ["server", "sync", "0", "6", String(EXCHANGE_MS), "wat"]);
        children.push(server);
        const { port } = await server.next<{ port: number }>(EXCHANGE_MS);
        const client = spawnGuest(runtime, [
          "client", "sync", "0", String(port), String(4 * MIB), "3", String(EXCHANGE_MS), "wat",
        ]);
        children.push(client);
        assert.equal((await client.next<{ digest: string }>(EXCHANGE_MS)).digest, echoStreamSha256(4 * MIB, 3));
        const bench = spawnGuest(runtime, [
          "bench", "sync", "0", String(port), String(4 * MIB + 1), "3", String(EXCHANGE_MS), "echo", "wat",
        ]);
        children.push(bench);
        assert.equal((await bench.next<{ digest: string }>(EXCHANGE_MS)).digest, echoStreamSha256(4 * MIB + 1, 1));
        const { served } = await server.next<{ served: string }>(EXCHANGE_MS);
        assert.equal(BigInt(served), BigInt(4 * MIB + 65536 + 4 * MIB + 1));
        await Promise.all(children.map((c) => c.exited(EXCHANGE_MS)));
      } finally {
        for (const c of children) c.kill();
      }
    },
  );

  describe("poll on a socket and a monotonic-clock timeout inside a component", () => {
    let peer: PollRacePeer;
    let port: number;

    before(async () => {
      peer = await startPollRacePeer();
      port = peer.port;
    });

    after(() => peer.close());

    it("race() of the poll-race component returns the socket when data arrives before the timeout", {
      timeout: EXCHANGE_MS + BUILD_MS,
    }, async () => {
      await guests();
      peer.writeAfter(300);
      const child = spawnGuest(runtime, ["race", "sync", String(port), "20000"]);
      try {
        const { ready, ms } = await child.next<{ ready: number[]; ms: number }>(EXCHANGE_MS);
        assert.deepEqual(ready, [0]);
        assert.ok(ms >= 295, `poll returned after ${ms.toFixed(1)} ms, before the peer wrote`);
        assert.ok(ms < 15_000, `poll returned after ${ms.toFixed(1)} ms, as late as the timeout`);
      } finally {
        child.kill();
      }
    });

    it("race() of the poll-race component returns the clock when the socket stays silent", {
      timeout: EXCHANGE_MS + BUILD_MS,
    }, async () => {
      await guests();
      peer.writeAfter(undefined);
      const timeoutMs = 300;
      const child = spawnGuest(runtime, ["race", "sync", String(port), String(timeoutMs)]);
      try {
        const { ready, ms } = await child.next<{ ready: number[]; ms: number }>(EXCHANGE_MS);
        assert.deepEqual(ready, [1]);
        assert.ok(ms >= timeoutMs - 1, `poll returned after ${ms.toFixed(1)} ms, before the timeout`);
      } finally {
        child.kill();
      }
    });
  });
});
