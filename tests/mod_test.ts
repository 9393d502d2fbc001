// The public entry: jco-shaped namespaces bound to the runtime's backend.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as wasiTcp from "../mod.ts";
import type { WasiSockets } from "../core/wasi_sockets.ts";
import { accept, connect, listen, LOCALHOST4, readAll, withPort, writeAll } from "./_wasi_helpers.ts";

const g = globalThis as { Deno?: unknown; Bun?: unknown };
const expected = g.Bun !== undefined ? "bun" : g.Deno !== undefined ? "deno" : "node";

describe("mod.ts", () => {
  it("runtimeBackend() picks the backend of the runtime it runs in", async () => {
    assert.equal((await wasiTcp.runtimeBackend()).name, expected);
  });

  it("mod.ts exports the namespaces jco imports, with their classes and functions", () => {
    assert.equal(typeof wasiTcp.tcp.TcpSocket, "function");
    assert.equal(typeof wasiTcp.tcpCreateSocket.createTcpSocket, "function");
    assert.equal(typeof wasiTcp.network.Network, "function");
    assert.ok(wasiTcp.instanceNetwork.instanceNetwork() instanceof wasiTcp.network.Network);
    assert.equal(typeof wasiTcp.streams.InputStream, "function");
    assert.equal(typeof wasiTcp.streams.OutputStream, "function");
    assert.equal(typeof wasiTcp.poll.Pollable, "function");
    assert.equal(typeof wasiTcp.poll.poll, "function");
    assert.equal(typeof wasiTcp.error.Error, "function");
    assert.equal(typeof wasiTcp.monotonicClock.now(), "bigint");
    assert.equal(typeof wasiTcp.wallClock.now().seconds, "bigint");
    // Clock pollables are the same class the poll namespace exports.
    assert.ok(wasiTcp.monotonicClock.subscribeDuration(0n) instanceof wasiTcp.poll.Pollable);
  });

  it("createImportObject() serves every 0.2.x version under versioned and plain names", () => {
    const imports = wasiTcp.createImportObject(wasiTcp as unknown as WasiSockets);
    for (const v of ["0.2.0", "0.2.6", "0.2.12"]) {
      assert.equal(imports[`wasi:sockets/tcp@${v}`], wasiTcp.tcp);
      assert.equal(imports[`wasi:io/poll@${v}`], wasiTcp.poll);
      assert.equal(imports[`wasi:clocks/monotonic-clock@${v}`], wasiTcp.monotonicClock);
    }
    assert.equal(imports["wasi:sockets/tcp-create-socket"], wasiTcp.tcpCreateSocket);
  });

  it("ASYNC_IMPORTS names every Promise-returning import", () => {
    for (const name of wasiTcp.ASYNC_IMPORTS) {
      // jco matches unversioned names against every version a guest imports.
      assert.match(name, /^wasi:io\/(poll|streams)#/);
    }
    for (const name of ["#poll", "[method]pollable.block", "[method]input-stream.blocking-read",
      "[method]output-stream.blocking-write-and-flush", "[method]output-stream.blocking-flush",
      "[method]input-stream.blocking-skip", "[method]output-stream.blocking-splice",
      "[method]output-stream.blocking-write-zeroes-and-flush"]) {
      assert.ok(wasiTcp.ASYNC_IMPORTS.some((n) => n.endsWith(name)), name);
    }
  });

  it("mod.ts namespaces echo bytes over 127.0.0.1 on the runtime's backend", async () => {
    const w = wasiTcp as unknown as WasiSockets;
    const listener = await listen(w, LOCALHOST4);
    try {
      const client = await connect(w, withPort(LOCALHOST4, listener.localAddress().val.port));
      const server = await accept(listener);
      try {
        const bytes = new TextEncoder().encode("hello from mod.ts");
        await writeAll(client.output, bytes);
        client.socket.shutdown("send");
        assert.deepEqual(await readAll(server.input), bytes);
      } finally {
        server[Symbol.dispose]();
        client[Symbol.dispose]();
      }
    } finally {
      listener[Symbol.dispose]();
    }
  });
});
