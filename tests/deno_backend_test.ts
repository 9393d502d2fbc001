// createDenoBackend() against real loopback sockets; needs Deno.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createDenoBackend } from "../runtimes/deno.ts";
import { createWasiSockets } from "../core/wasi_sockets.ts";
import type { InputStream, OutputStream } from "../core/streams.ts";
import { StreamError } from "../core/errors.ts";
import { backendSuite } from "./_backend_suite.ts";
import type { BackendConnection, BackendListener } from "../core/backend.ts";
import { defaultOptions } from "../core/_options.ts";
import {
  accept,
  connect,
  listen,
  LOCALHOST4,
  pattern,
  within,
  withPort,
  writeAll,
} from "./_wasi_helpers.ts";

/** What a lending reader saw: bytes checked, and reads that came back in reused memory. */
interface LentReadStats {
  checked: number;
  reused: number;
}

/**
 * Reads `expected.length` bytes from a stream created with lendReadBuffers,
 * checking every byte the moment it is read (a lent chunk is only valid until
 * the next read). Varies the read size, skips now and then, and stalls so
 * that data piles up in the core while the backend reads on into its pool.
 * `onChunk` gets each verified chunk before the next read.
 */
async function readLent(
  input: InputStream,
  expected: Uint8Array,
  onChunk?: (chunk: Uint8Array) => Promise<void>,
  skips = true,
): Promise<LentReadStats> {
  const pollable = input.subscribe();
  const sizes = [65536, 1000, 40000, 70000, 300000, 17];
  const seen = new Set<ArrayBufferLike>();
  let last: ArrayBufferLike | undefined;
  let offset = 0;
  let checked = 0;
  let reused = 0;
  for (let op = 0; offset < expected.length; op++) {
    const want = Math.min(sizes[op % sizes.length], expected.length - offset);
    if (skips && op % 7 === 3) {
      const n = Number(input.skip(BigInt(want)));
      if (n === 0) await within(pollable.block(), "input to skip");
      offset += n;
      continue;
    }
    let chunk: Uint8Array;
    try {
      chunk = input.read(BigInt(want));
    } catch (e) {
      if (e instanceof StreamError) assert.fail(`Stream ended at ${offset} of ${expected.length}`);
      throw e;
    }
    if (chunk.length === 0) {
      await within(pollable.block(), "input data");
      continue;
    }
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== expected[offset + i]) {
        assert.fail(`Byte ${offset + i} is ${chunk[i]}, expected ${expected[offset + i]}`);
      }
    }
    // The core splits a big chunk into consecutive views of one buffer; only
    // a buffer coming back after another one proves that memory was reused.
    if (chunk.buffer !== last) {
      if (seen.has(chunk.buffer)) reused++;
      seen.add(chunk.buffer);
      last = chunk.buffer;
    }
    offset += chunk.length;
    checked += chunk.length;
    if (onChunk) await onChunk(chunk);
    if (op % 16 === 15) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return { checked, reused };
}

/** Echoes `total` bytes from `input` to `output`, checking them against `expected`. */
function echo(
  input: InputStream,
  output: OutputStream,
  expected: Uint8Array,
): Promise<LentReadStats> {
  // writeAll copies, as it must: the lent chunk is reused after the next read.
  return readLent(input, expected, (chunk) => writeAll(output, chunk), false);
}

describe("runtimes/deno.ts", { skip: typeof Deno === "undefined" ? "needs Deno" : false }, () => {
  backendSuite({
    label: "createDenoBackend()",
    create: createDenoBackend,
    noIpv6Only: 'Deno.listen on "::" is always dual-stack',
  });

  it("createDenoBackend() connections reuse lent read buffers without corrupting an 8 MiB echo", async () => {
    const wasi = createWasiSockets({ backend: createDenoBackend(), lendReadBuffers: true });
    const listener = await listen(wasi, LOCALHOST4);
    try {
      const client = await connect(wasi, withPort(LOCALHOST4, listener.localAddress().val.port));
      try {
        const server = await accept(listener);
        try {
          const up = pattern(8 << 20, 11);
          const [, atServer, atClient] = await within(
            Promise.all([
              writeAll(client.output, up),
              echo(server.input, server.output, up),
              readLent(client.input, up),
            ]),
            "8 MiB echo",
            60_000,
          );
          assert.equal(atServer.checked, up.length);
          assert.ok(
            atClient.checked > up.length / 2,
            `client checked only ${atClient.checked} bytes`,
          );
          assert.ok(atServer.reused > 0, "the server's reads never came back in reused memory");
          assert.ok(atClient.reused > 0, "the client's reads never came back in reused memory");
        } finally {
          server[Symbol.dispose]();
        }
      } finally {
        client[Symbol.dispose]();
      }
    } finally {
      listener[Symbol.dispose]();
    }
  });

  it("createDenoBackend() listeners take a connection from the kernel only on demand(), one per demand", async () => {
    const backend = createDenoBackend();
    const binding = await backend.bind({ local: { family: "ipv4", address: "127.0.0.1", port: 0 }, ipv6Only: true });
    const got: BackendConnection[] = [];
    const peers: Deno.TcpConn[] = [];
    let listener: BackendListener | undefined;
    // Enough turns of the event loop for an accept that was already pending to land.
    const turns = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    };
    try {
      listener = await binding.listen({
        backlog: 8,
        options: defaultOptions(),
        changed: new Set(),
        onConnection: (c) => got.push(c),
        onError: () => {},
      });
      const port = listener.localAddress.port;
      // The kernel completes both handshakes whether or not anyone accepts.
      peers.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      peers.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      await turns();
      assert.equal(got.length, 0, "no connection is taken before demand()");
      listener.demand!();
      const deadline = performance.now() + 5_000;
      while (got.length === 0 && performance.now() < deadline) await turns();
      assert.equal(got.length, 1, "demand() takes one connection");
      await turns();
      assert.equal(got.length, 1, "the other stays in the kernel's queue");
      listener.demand!();
      while (got.length === 1 && performance.now() < deadline) await turns();
      assert.equal(got.length, 2, "the next demand() takes it");
    } finally {
      for (const c of got) c.close();
      for (const p of peers) p.close();
      listener?.close();
      binding.close();
    }
  });
});
