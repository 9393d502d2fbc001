// The WASI API end to end on real loopback sockets: the node:net backend in
// every runtime, and the runtime's native backend where it runs.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import type { TcpBackend } from "../core/backend.ts";
import type { NetworkError, StreamError } from "../core/errors.ts";
import { createWasiSockets, type WasiSockets } from "../core/wasi_sockets.ts";
import {
  accept,
  bind,
  connect,
  errorCode,
  finish,
  listen,
  LOCALHOST4,
  LOCALHOST6,
  pattern,
  readAll,
  v4,
  within,
  withPort,
  writeAll,
} from "./_wasi_helpers.ts";

const g = globalThis as { Deno?: unknown; Bun?: unknown };

interface BackendCase {
  name: string;
  create: () => Promise<TcpBackend>;
}

const cases: BackendCase[] = [
  { name: "node", create: async () => (await import("../runtimes/node.ts")).createNodeBackend() },
];
if (g.Deno !== undefined) {
  cases.push({
    name: "deno",
    create: async () => (await import("../runtimes/deno.ts")).createDenoBackend(),
  });
}
if (g.Bun !== undefined) {
  cases.push({
    name: "bun",
    create: async () => (await import("../runtimes/bun.ts")).createBunBackend(),
  });
}

// A raw node:net client, independent of the code under test.
function rawConnect(port: number, host = "127.0.0.1"): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

function port(socket: { localAddress(): { val: { port: number } } }): number {
  return socket.localAddress().val.port;
}

for (const { name, create } of cases) {
  describe(`${name} backend through the WASI API`, () => {
    let wasiPromise: Promise<WasiSockets> | undefined;
    const wasi = (): Promise<WasiSockets> =>
      wasiPromise ??= create().then((backend) => createWasiSockets({ backend }));

    for (const [family, local] of [["127.0.0.1", LOCALHOST4], ["::1", LOCALHOST6]] as const) {
      it(`TcpSocket.accept() and streams echo 1 MiB both ways over ${family}`, async () => {
        const w = await wasi();
        const listener = await listen(w, local);
        try {
          const client = await connect(w, withPort(local, port(listener)));
          try {
            const server = await accept(listener);
            try {
              const up = pattern(1 << 20, 7);
              const down = pattern(1 << 20, 9);
              const [got, , back] = await within(
                Promise.all([
                  readAll(server.input, up.length),
                  writeAll(client.output, up),
                  (async () => {
                    await writeAll(server.output, down);
                    return readAll(client.input, down.length);
                  })(),
                ]),
                "echo",
              );
              assert.deepEqual(got, up);
              assert.deepEqual(back, down);
              assert.deepEqual(server.socket.remoteAddress(), client.socket.localAddress());
              assert.deepEqual(client.socket.remoteAddress(), server.socket.localAddress());
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
    }

    it("TcpSocket.finishBind() resolves port 0 at bind time", async () => {
      const w = await wasi();
      const socket = await bind(w, LOCALHOST4);
      try {
        assert.ok(port(socket) > 0);
      } finally {
        socket[Symbol.dispose]();
      }
    });

    it("TcpSocket.startBind() reports address-in-use for a port another socket listens on", async () => {
      const w = await wasi();
      // Like wasmtime (SO_REUSEADDR), Linux lets two sockets bind one port until one listens.
      const first = await listen(w, LOCALHOST4);
      try {
        await assert.rejects(bind(w, withPort(LOCALHOST4, port(first))), (e: NetworkError) => {
          assert.equal(e.payload, "address-in-use");
          return true;
        });
      } finally {
        first[Symbol.dispose]();
      }
    });

    it("TcpSocket.startBind() reports address-not-bindable for a non-local address", async () => {
      const w = await wasi();
      await assert.rejects(bind(w, v4(192, 0, 2, 1)), (e: NetworkError) => {
        assert.equal(e.payload, "address-not-bindable");
        return true;
      });
    });

    it("TcpSocket bound but not listening refuses a peer with connection-refused", async () => {
      const w = await wasi();
      const bound = await bind(w, LOCALHOST4);
      try {
        await assert.rejects(connect(w, withPort(LOCALHOST4, port(bound))), (e: NetworkError) => {
          assert.equal(e.payload, "connection-refused");
          return true;
        });
        // And a raw peer sees the same.
        await assert.rejects(rawConnect(port(bound)), (e: { code?: string }) => {
          assert.equal(e.code, "ECONNREFUSED");
          return true;
        });
      } finally {
        bound[Symbol.dispose]();
      }
    });

    it("TcpSocket.startBind() is not blocked by TIME_WAIT of an earlier socket", async () => {
      const w = await wasi();
      const listener = await listen(w, LOCALHOST4);
      const p = port(listener);
      try {
        const client = await connect(w, withPort(LOCALHOST4, p));
        const server = await accept(listener);
        // The accepted side closes first, so its port enters TIME_WAIT.
        server.socket.shutdown("both");
        server[Symbol.dispose]();
        await within(readAll(client.input), "client to see the server's FIN");
        client[Symbol.dispose]();
      } finally {
        listener[Symbol.dispose]();
      }
      const again = await listen(w, withPort(LOCALHOST4, p));
      again[Symbol.dispose]();
    });

    it("TcpSocket.localAddress() reports an explicitly bound local address and port after connect", async () => {
      const w = await wasi();
      const listener = await listen(w, LOCALHOST4);
      try {
        const socket = await bind(w, LOCALHOST4);
        const chosen = port(socket);
        const client = await connect(w, withPort(LOCALHOST4, port(listener)), socket);
        try {
          const server = await accept(listener);
          try {
            assert.equal(port(client.socket), chosen);
            assert.equal(server.socket.remoteAddress().val.port, chosen);
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

    it("TcpSocket.finishConnect() reports connection-refused for a closed port and closes the socket", async () => {
      const w = await wasi();
      const bound = await bind(w, LOCALHOST4);
      const p = port(bound);
      bound[Symbol.dispose]();
      const socket = w.tcpCreateSocket.createTcpSocket("ipv4");
      try {
        socket.startConnect(w.instanceNetwork.instanceNetwork(), withPort(LOCALHOST4, p));
        await assert.rejects(
          finish(socket, () => socket.finishConnect(), "finish-connect"),
          (e: NetworkError) => e.payload === "connection-refused",
        );
        assert.equal(
          errorCode(() => socket.startConnect(w.instanceNetwork.instanceNetwork(), withPort(LOCALHOST4, p))),
          "invalid-state",
        );
      } finally {
        socket[Symbol.dispose]();
      }
    });

    it("TcpSocket.shutdown('send') sends FIN after every written byte while the other direction keeps working", async () => {
      const w = await wasi();
      const listener = await listen(w, LOCALHOST4);
      try {
        const client = await connect(w, withPort(LOCALHOST4, port(listener)));
        const server = await accept(listener);
        try {
          const up = pattern(4 << 20, 3);
          // Fill the send queue as far as it goes, then shut down at once.
          let sent = 0;
          while (sent < up.length) {
            const room = Number(client.output.checkWrite());
            if (room === 0) break;
            const n = Math.min(room, up.length - sent);
            client.output.write(up.slice(sent, sent + n));
            sent += n;
          }
          const rest = up.subarray(sent);
          const reading = readAll(server.input);
          await writeAll(client.output, rest);
          client.socket.shutdown("send");
          client.socket.shutdown("send");
          assert.throws(() => client.output.checkWrite(), (e: StreamError) => e.payload.tag === "closed");
          assert.throws(() => client.output.write(new Uint8Array(1)), (e: StreamError) => e.payload.tag === "closed");
          assert.throws(() => client.output.flush(), (e: StreamError) => e.payload.tag === "closed");
          const got = await within(reading, "server to read until FIN");
          assert.equal(got.length, up.length);
          assert.deepEqual(got, up);
          const reply = new TextEncoder().encode("still open");
          await writeAll(server.output, reply);
          server.socket.shutdown("send");
          assert.deepEqual(await within(readAll(client.input), "reply"), reply);
        } finally {
          server[Symbol.dispose]();
          client[Symbol.dispose]();
        }
      } finally {
        listener[Symbol.dispose]();
      }
    });

    it("InputStream.read() reports closed after shutdown('receive')", async () => {
      const w = await wasi();
      const listener = await listen(w, LOCALHOST4);
      try {
        const client = await connect(w, withPort(LOCALHOST4, port(listener)));
        const server = await accept(listener);
        try {
          server.socket.shutdown("receive");
          assert.throws(() => server.input.read(10n), (e: StreamError) => e.payload.tag === "closed");
          assert.throws(() => server.input.read(10n), (e: StreamError) => e.payload.tag === "closed");
          await writeAll(server.output, new Uint8Array([1, 2, 3]));
          server.socket.shutdown("send");
          assert.deepEqual(await within(readAll(client.input), "data after receive shutdown"), new Uint8Array([1, 2, 3]));
        } finally {
          server[Symbol.dispose]();
          client[Symbol.dispose]();
        }
      } finally {
        listener[Symbol.dispose]();
      }
    });

    it("OutputStream.checkWrite() drops to 0 when the peer does not read, and recovers on drain", async () => {
      const w = await wasi();
      const listener = await listen(w, LOCALHOST4);
      try {
        const client = await connect(w, withPort(LOCALHOST4, port(listener)));
        const server = await accept(listener);
        try {
          const chunk = new Uint8Array(65536);
          const limit = 256 << 20;
          let written = 0;
          const pollable = client.output.subscribe();
          // Write while anything is accepted; stop once check-write stays 0 for
          // a 300 ms wait (the peer is not reading, so nothing can drain).
          for (;;) {
            const room = Number(client.output.checkWrite());
            if (room > 0) {
              client.output.write(chunk.slice(0, room));
              written += room;
              assert.ok(written < limit, "backpressure never applied");
              continue;
            }
            const drained = await Promise.race([
              pollable.block().then(() => true),
              new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
            ]);
            if (!drained) break;
          }
          assert.equal(client.output.checkWrite(), 0n);
          assert.equal(pollable.ready(), false);
          // Reading on the other side drains the sender.
          const reading = readAll(server.input, written);
          await within(pollable.block(), "drain after the peer reads");
          assert.ok(client.output.checkWrite() > 0n);
          client.socket.shutdown("send");
          const got = await within(reading, "every byte");
          assert.equal(got.length, written);
        } finally {
          server[Symbol.dispose]();
          client[Symbol.dispose]();
        }
      } finally {
        listener[Symbol.dispose]();
      }
    });

    it("TcpSocket.accept() gives sockets that inherit the listener's options", async () => {
      const w = await wasi();
      const socket = await bind(w, LOCALHOST4);
      try {
        socket.setKeepAliveEnabled(true);
        socket.setKeepAliveIdleTime(30_000_000_000n);
        socket.setKeepAliveInterval(5_000_000_000n);
        socket.setKeepAliveCount(4);
        socket.setHopLimit(42);
        socket.setReceiveBufferSize(65536n);
        socket.setSendBufferSize(65536n);
        socket.startListen();
        await finish(socket, () => socket.finishListen(), "finish-listen");
        const client = await connect(w, withPort(LOCALHOST4, port(socket)));
        const server = await accept(socket);
        try {
          assert.equal(server.socket.keepAliveEnabled(), true);
          assert.equal(server.socket.keepAliveIdleTime(), 30_000_000_000n);
          assert.equal(server.socket.keepAliveInterval(), 5_000_000_000n);
          assert.equal(server.socket.keepAliveCount(), 4);
          assert.equal(server.socket.hopLimit(), 42);
          assert.equal(server.socket.receiveBufferSize(), 65536n);
          assert.equal(server.socket.sendBufferSize(), 65536n);
        } finally {
          server[Symbol.dispose]();
          client[Symbol.dispose]();
        }
      } finally {
        socket[Symbol.dispose]();
      }
    });

    it("OutputStream.flush() completes only once every byte is with the OS, so a drop right after loses none", async () => {
      const w = await wasi();
      const listener = await listen(w, LOCALHOST4);
      try {
        for (const size of [1000, 100_000, 1_500_000]) {
          const client = await connect(w, withPort(LOCALHOST4, port(listener)));
          const server = await accept(listener);
          try {
            const data = pattern(size, size);
            const reading = readAll(server.input);
            // Short writes that the backend takes at once, as a guest's small
            // messages are, so that something is still queued at the flush.
            for (let at = 0; at < size; at += 7000) {
              const piece = data.subarray(at, Math.min(size, at + 7000));
              while (Number(client.output.checkWrite()) < piece.length) {
                await within(client.output.subscribe().block(), "room to write");
              }
              client.output.write(piece.slice());
            }
            client.output.flush();
            await within(client.output.subscribe().block(), "the flush");
            client[Symbol.dispose]();
            const got = await within(reading, "everything sent before the drop");
            assert.equal(got.length, size, `bytes received of ${size}`);
            assert.deepEqual(got, data);
          } finally {
            client[Symbol.dispose]();
            server[Symbol.dispose]();
          }
        }
      } finally {
        listener[Symbol.dispose]();
      }
    });

    it("poll() with a zero-duration clock lets socket I/O progress in a busy loop", async () => {
      const w = await wasi();
      const listener = await listen(w, LOCALHOST4);
      try {
        const client = await connect(w, withPort(LOCALHOST4, port(listener)));
        const server = await accept(listener);
        try {
          const raw = new Uint8Array([42]);
          await writeAll(client.output, raw);
          const input = server.input.subscribe();
          const started = performance.now();
          let iterations = 0;
          for (;;) {
            const ready = await w.poll.poll([input, w.monotonicClock.subscribeDuration(0n)]);
            iterations++;
            if (ready.includes(0)) break;
            assert.ok(performance.now() - started < 5000, `no progress after ${iterations} polls`);
          }
          assert.deepEqual(new Uint8Array(server.input.read(10n)), raw);
        } finally {
          server[Symbol.dispose]();
          client[Symbol.dispose]();
        }
      } finally {
        listener[Symbol.dispose]();
      }
    });

    it("TcpSocket[Symbol.dispose]() on a listener releases the port at once", async () => {
      const w = await wasi();
      const listener = await listen(w, LOCALHOST4);
      const p = port(listener);
      listener[Symbol.dispose]();
      if (name === "deno") {
        // Deno closes a listener with a pending accept() on its next event-loop
        // turn (documented in runtimes/deno.ts); one turn is the promise.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      await assert.rejects(rawConnect(p), (e: { code?: string }) => e.code === "ECONNREFUSED");
    });

    it("TcpSocket.accept() delivers data a raw peer sent before accept() was called", async () => {
      const w = await wasi();
      const listener = await listen(w, LOCALHOST4);
      try {
        const raw = await rawConnect(port(listener));
        try {
          raw.end(new Uint8Array([5, 6, 7]));
          const server = await accept(listener);
          try {
            assert.deepEqual(await within(readAll(server.input), "early data"), new Uint8Array([5, 6, 7]));
          } finally {
            server[Symbol.dispose]();
          }
        } finally {
          raw.destroy();
        }
      } finally {
        listener[Symbol.dispose]();
      }
    });
  });
}
