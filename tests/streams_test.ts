// wasi:io streams of TCP connections through the public API, on the in-memory
// network: reads, writes and their budgets, shutdown and half-close, blocking
// variants, splice and skip, resets, partial writes, and backpressure.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { BackendBinding, BackendConnection } from "../core/backend.ts";
import { type IoError, StreamError } from "../core/errors.ts";
import { MemoryNetwork } from "../core/memory_network.ts";
import { COPIES_LIST_ARGUMENTS, InputStream, OutputStream, WRITE_LENT } from "../core/streams.ts";
import { createWasiSockets } from "../core/wasi_sockets.ts";
import {
  assertCode,
  assertTraps,
  type Conn,
  isTrap,
  LOCALHOST6,
  macrotasks,
  outcome,
  outcomeAsync,
  pair,
  pattern,
  portOf,
  readAll,
  waitUntil,
  withEnv,
  within,
  writeAll,
} from "./_memory_env.ts";

const KIB = 1024;
const BUDGET = 65536;

// Waits until `input` has data, its end or an error, reading nothing.
async function buffered(input: InputStream, what: string): Promise<void> {
  await waitUntil(input.subscribe(), what);
}

function caught(fn: () => unknown): StreamError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof StreamError) return e;
    throw e;
  }
  return undefined;
}

function assertStreamError(fn: () => unknown, tag: "closed" | "last-operation-failed", message?: string): void {
  assert.equal(outcome(fn), tag, message);
}

describe("stream errors", () => {
  it("a connection error gives the input and the output an IoError each, since the guest drops each handle on its own", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      env.net.reset(portOf(server.socket));
      await waitUntil(client.input.subscribe(), "the reset");
      const fromRead = caught(() => client.input.read(10n));
      const fromCheck = caught(() => client.output.checkWrite());
      assert.equal(fromRead?.payload.tag, "last-operation-failed");
      assert.equal(fromCheck?.payload.tag, "last-operation-failed");
      const a = (fromRead!.payload as { val: IoError }).val;
      const b = (fromCheck!.payload as { val: IoError }).val;
      assert.notEqual(a, b);
      assert.equal(a.toDebugString(), b.toDebugString());
    });
  });
});

describe("OutputStream writes", () => {
  it("OutputStream carries no copiesListArguments mark on a backend without writeBorrowed, since it keeps the array it is given", async () => {
    await withEnv({}, async (env) => {
      const { client } = await pair(env);
      assert.equal(COPIES_LIST_ARGUMENTS in client.output, false);
    });
  });

  it("OutputStream carries the copiesListArguments mark on a backend with writeBorrowed, and a caller reusing its array at once loses nothing", async () => {
    let borrowed = 0;
    // A backend that copies in writeBorrowed, as its contract says.
    const writeBorrowed = (c: BackendConnection) => (chunk: Uint8Array): boolean => {
      borrowed++;
      return c.write(chunk.slice());
    };
    const lending = (c: BackendConnection): BackendConnection =>
      new Proxy(c, {
        get: (target, key) => {
          if (key === "writeBorrowed") return writeBorrowed(target);
          const value = Reflect.get(target, key, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    await withEnv({
      // A small window: the first write uses up the budget, so the blocking
      // write must wait for room before it writes.
      network: { windowSize: 1024 },
      wrapBackend: (b) => ({
        ...b,
        connect: async (r) => lending(await b.connect(r)),
      }),
    }, async (env) => {
      const { client, server } = await pair(env);
      assert.equal((client.output as unknown as Record<symbol, unknown>)[COPIES_LIST_ARGUMENTS], true);
      const scratch = new Uint8Array(BUDGET);
      scratch.fill(1);
      client.output.write(scratch);
      assert.equal(client.output.checkWrite(), 0n);
      scratch.fill(0xee);
      scratch.fill(2, 0, 2000);
      const blocking = client.output.blockingWriteAndFlush(scratch.subarray(0, 2000));
      // What a guest does with its memory once the call has suspended it.
      scratch.fill(0xee);
      const got = readAll(server.input);
      await within(blocking, "the blocking write");
      client.output[Symbol.dispose]();
      const bytes = await within(got, "the bytes");
      assert.equal(bytes.length, BUDGET + 2000);
      assert.ok(bytes.subarray(0, BUDGET).every((b) => b === 1), "the first write's bytes");
      assert.ok(bytes.subarray(BUDGET).every((b) => b === 2), "the blocking write's bytes");
      assert.ok(borrowed >= 2);
    });
  });

  // A connected pair on a backend whose writeBorrowed copies every byte
  // (Deno's), with the arrays its write() and writeBorrowed() were handed.
  type Seen = { written: Uint8Array[]; borrowed: Uint8Array[] };
  const copyingBorrower = (c: BackendConnection, seen: Seen) =>
    new Proxy(c, {
      get: (target, key) => {
        if (key === "borrowedWritesCopy") return true;
        if (key === "writeBorrowed") {
          return (chunk: Uint8Array): boolean => {
            seen.borrowed.push(chunk);
            return target.write(chunk.slice());
          };
        }
        if (key === "write") {
          return (chunk: Uint8Array): boolean => {
            seen.written.push(chunk);
            return target.write(chunk);
          };
        }
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  const withCopyingBorrower = async (
    fn: (conns: Awaited<ReturnType<typeof pair>>, seen: Seen) => Promise<void>,
  ): Promise<void> => {
    const seen: Seen = { written: [], borrowed: [] };
    await withEnv({
      wrapBackend: (b) => ({ ...b, connect: async (r) => copyingBorrower(await b.connect(r), seen) }),
    }, async (env) => fn(await pair(env), seen));
  };

  it("OutputStream.write() hands a backend whose writeBorrowed copies every byte the caller's array as it is, and carries no copiesListArguments mark", async () => {
    await withCopyingBorrower(async ({ client, server }, seen) => {
      assert.equal(COPIES_LIST_ARGUMENTS in client.output, false);
      const data = pattern(1000);
      client.output.write(data);
      assert.equal(seen.written.length, 1);
      assert.equal(seen.written[0], data, "the same array, not a copy");
      assert.equal(seen.borrowed.length, 0);
      client.output[Symbol.dispose]();
      assert.deepEqual(await within(readAll(server.input), "the bytes"), data);
    });
  });

  it("OutputStream[WRITE_LENT]() goes through writeBorrowed where the backend has it, and a caller reusing its array at once loses nothing", async () => {
    await withCopyingBorrower(async ({ client, server }, seen) => {
      const scratch = pattern(1000);
      client.output[WRITE_LENT](scratch);
      scratch.fill(0xee);
      assert.equal(seen.borrowed.length, 1);
      assert.equal(seen.written.length, 0);
      client.output[Symbol.dispose]();
      assert.deepEqual(await within(readAll(server.input), "the bytes"), pattern(1000));
    });
  });

  it("OutputStream[WRITE_LENT]() hands a backend without writeBorrowed a copy, so a caller reusing its array at once loses nothing", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const scratch = pattern(1000);
      client.output[WRITE_LENT](scratch);
      scratch.fill(0xee);
      client.output[Symbol.dispose]();
      assert.deepEqual(await within(readAll(server.input), "the bytes"), pattern(1000));
    });
  });

  it("OutputStream[WRITE_LENT]() throws a TypeError for contents that are not a Uint8Array", async () => {
    await withEnv({}, async (env) => {
      const { client } = await pair(env);
      assert.throws(() => client.output[WRITE_LENT]([1, 2, 3] as unknown as Uint8Array), TypeError);
    });
  });

  it("OutputStream.checkWrite() gives 65536n on a fresh connection, on both ends", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      assert.equal(client.output.checkWrite(), 65536n);
      assert.equal(server.output.checkWrite(), 65536n);
    });
  });

  it("OutputStream.write() traps (no payload) beyond the check-write budget", async () => {
    await withEnv({}, async (env) => {
      const { client } = await pair(env);
      assertTraps(() => client.output.write(new Uint8Array(BUDGET + 1)));
      client.output.write(new Uint8Array(BUDGET));
    });
  });

  it("OutputStream.write() may spend one check-write budget over several writes while the connection drains, then traps for any byte, and accepts an empty write", async () => {
    await withEnv({ network: { windowSize: 0 } }, async (env) => {
      const { client, server } = await pair(env);
      client.output.write(new Uint8Array([1]));
      // As in wasmtime, writes use up the budget check-write gave.
      assert.equal(client.output.checkWrite(), 65535n);
      client.output.write(new Uint8Array(65535));
      assert.equal(client.output.checkWrite(), 0n);
      assertTraps(() => client.output.write(new Uint8Array([2])));
      client.output.write(new Uint8Array(0));
      assert.equal(client.output.subscribe().ready(), false);
      // The peer taking the bytes drains the connection.
      assert.deepEqual([...(await readAll(server.input, 65536)).subarray(0, 1)], [1]);
      await waitUntil(client.output.subscribe(), "drain");
      assert.equal(client.output.checkWrite(), 65536n);
    });
  });

  it("OutputStream.write() accepts an empty write on an open stream", async () => {
    await withEnv({}, async (env) => {
      const { client } = await pair(env);
      client.output.write(new Uint8Array(0));
      assert.equal(client.output.checkWrite(), 65536n);
    });
  });

  it("OutputStream.write() throws TypeError for contents that are not a Uint8Array", async () => {
    await withEnv({}, async (env) => {
      const { client } = await pair(env);
      for (const bad of [[1, 2], new ArrayBuffer(2), "ab", undefined, new Uint16Array(2)]) {
        assert.throws(() => client.output.write(bad as unknown as Uint8Array), TypeError);
      }
    });
  });

  it("OutputStream.flush() makes check-write 0 and a write trap until the bytes are handed over, and blockingFlush() waits for that", async () => {
    await withEnv({ network: { windowSize: 0 } }, async (env) => {
      const { client, server } = await pair(env);
      client.output.write(pattern(1000));
      assert.equal(client.output.checkWrite(), 64536n, "what is left of the budget");
      client.output.flush();
      assert.equal(client.output.checkWrite(), 0n, "nothing while the flush is pending");
      assert.equal(client.output.subscribe().ready(), false);
      assertTraps(() => client.output.write(new Uint8Array(1)));
      const reading = readAll(server.input, 1000);
      await within(client.output.blockingFlush(), "blocking flush");
      assert.equal(client.output.checkWrite(), 65536n);
      assert.deepEqual(await reading, pattern(1000));
    });
  });

  it("OutputStream.blockingWriteAndFlush() delivers up to 4096 bytes and traps above", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const data = pattern(4096, 3);
      await within(client.output.blockingWriteAndFlush(data), "blocking write");
      const got = await outcomeAsync(() => client.output.blockingWriteAndFlush(new Uint8Array(4097)));
      assert.equal(got, "trap");
      await assert.rejects(client.output.blockingWriteAndFlush(new Uint8Array(4097)), (e) => isTrap(e));
      client.socket.shutdown("send");
      assert.deepEqual(await readAll(server.input), data);
    });
  });

  it("OutputStream.writeZeroes() sends zero bytes within the budget and traps beyond it", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      client.output.write(new Uint8Array([9]));
      await waitUntil(client.output.subscribe(), "room");
      client.output.writeZeroes(5n);
      assertTraps(() => client.output.writeZeroes(65537n));
      assert.throws(() => client.output.writeZeroes(5 as unknown as bigint), TypeError);
      client.socket.shutdown("send");
      assert.deepEqual([...await readAll(server.input)], [9, 0, 0, 0, 0, 0]);
    });
  });

  it("OutputStream.blockingWriteZeroesAndFlush() sends up to 4096 zero bytes and traps above", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      await within(client.output.blockingWriteZeroesAndFlush(4096n), "blocking zeroes");
      await assert.rejects(client.output.blockingWriteZeroesAndFlush(4097n), (e) => isTrap(e));
      client.socket.shutdown("send");
      const got = await readAll(server.input);
      assert.equal(got.length, 4096);
      assert.ok(got.every((b) => b === 0));
    });
  });

  it("OutputStream[Symbol.dispose]() sends FIN after the queued bytes, and the input keeps working", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const data = pattern(3 * BUDGET, 5);
      const reading = readAll(server.input);
      await writeAll(client.output, data);
      client.output[Symbol.dispose]();
      assert.deepEqual(await within(reading, "peer reads to the end"), data);
      server.output.write(new Uint8Array([7, 8]));
      assert.deepEqual([...await readAll(client.input, 2)], [7, 8]);
    });
  });

  it("OutputStream.write() with partial writes (setMaxWriteChunk) delivers every byte in order", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      env.net.setMaxWriteChunk(4999);
      const data = pattern(300_000, 11);
      const reading = readAll(server.input);
      client.output.write(data.subarray(0, 1000));
      assert.equal(client.output.checkWrite(), 64536n, "a partly sent write keeps the rest of the budget");
      await writeAll(client.output, data.subarray(1000));
      client.socket.shutdown("send");
      assert.deepEqual(await within(reading, "all pieces"), data);
    });
  });
});

describe("InputStream reads", () => {
  it("InputStream.read() returns what is buffered, up to len", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      client.output.write(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
      await buffered(server.input, "data");
      assert.deepEqual([...server.input.read(4n)], [1, 2, 3, 4]);
      assert.deepEqual([...server.input.read(100n)], [5, 6, 7, 8, 9, 10]);
      const empty = server.input.read(100n);
      assert.ok(empty instanceof Uint8Array);
      assert.equal(empty.length, 0);
    });
  });

  it("InputStream.read() returns an empty Uint8Array when nothing has arrived, and read(0n) is empty", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const none = server.input.read(65536n);
      assert.ok(none instanceof Uint8Array);
      assert.equal(none.length, 0);
      client.output.write(new Uint8Array([1, 2]));
      await buffered(server.input, "data");
      assert.equal(server.input.read(0n).length, 0);
      assert.deepEqual([...server.input.read(2n)], [1, 2], "read(0n) consumed nothing");
    });
  });

  it("InputStream.read() returns the bytes sent before the peer's FIN, then reports closed and stays closed", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      client.output.write(new Uint8Array([1, 2, 3]));
      client.socket.shutdown("send");
      assert.deepEqual([...await readAll(server.input)], [1, 2, 3]);
      for (let i = 0; i < 3; i++) assertStreamError(() => server.input.read(10n), "closed");
      assertStreamError(() => server.input.read(0n), "closed");
      assertStreamError(() => server.input.skip(10n), "closed");
      assert.equal(server.input.subscribe().ready(), true, "a closed stream's pollable is ready");
    });
  });

  it("InputStream.read() throws TypeError for a len that is not a u64 bigint", async () => {
    await withEnv({}, async (env) => {
      const { server } = await pair(env);
      for (const bad of [1, -1n, 1n << 64n, "1", undefined]) {
        assert.throws(() => server.input.read(bad as bigint), TypeError);
      }
    });
  });

  it("InputStream.blockingRead() waits for data and reports closed at the end", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const pending = server.input.blockingRead(100n);
      await macrotasks(2);
      client.output.write(new Uint8Array([4, 5]));
      assert.deepEqual([...await within(pending, "blocking read")], [4, 5]);
      client.socket.shutdown("send");
      assert.equal(await outcomeAsync(() => within(server.input.blockingRead(100n), "blocking read at end")), "closed");
    });
  });

  it("InputStream.skip() discards up to len of what is buffered", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      assert.equal(server.input.skip(10n), 0n, "nothing buffered yet");
      client.output.write(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
      await buffered(server.input, "data");
      assert.equal(server.input.skip(0n), 0n);
      assert.equal(server.input.skip(3n), 3n);
      assert.deepEqual([...server.input.read(2n)], [4, 5]);
      assert.equal(server.input.skip(100n), 5n);
      client.socket.shutdown("send");
      await buffered(server.input, "end");
      assertStreamError(() => server.input.skip(1n), "closed");
    });
  });

  it("InputStream.blockingSkip() waits for data", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const pending = server.input.blockingSkip(2n);
      await macrotasks(2);
      client.output.write(new Uint8Array([1, 2, 3]));
      assert.equal(await within(pending, "blocking skip"), 2n);
      assert.deepEqual([...server.input.read(10n)], [3]);
    });
  });

  it("InputStream[Symbol.dispose]() discards later data while the output keeps working", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      server.input[Symbol.dispose]();
      client.output.write(new Uint8Array([1, 2, 3]));
      server.output.write(new Uint8Array([4]));
      server.socket.shutdown("send");
      assert.deepEqual([...await readAll(client.input)], [4]);
      assert.equal(client.output.checkWrite(), 65536n, "the writer gets no error");
    });
  });

  it("new InputStream() and new OutputStream() throw TypeError outside a connection", () => {
    assert.throws(() => new InputStream({}), TypeError);
    assert.throws(() => new OutputStream({}), TypeError);
  });

  it("instanceof InputStream and OutputStream hold for another host's streams (jco's check of wasi:cli's stdio), which splice refuses", async () => {
    const fn = (): void => {};
    const foreignOut = { checkWrite: fn, write: fn, blockingWriteAndFlush: fn, flush: fn, blockingFlush: fn, subscribe: fn };
    const foreignIn = { read: fn, blockingRead: fn, skip: fn, blockingSkip: fn, subscribe: fn };
    assert.ok(foreignOut instanceof OutputStream);
    assert.ok(foreignIn instanceof InputStream);
    assert.ok(!(foreignIn instanceof OutputStream));
    assert.ok(!(foreignOut instanceof InputStream));
    for (const other of [{}, null, 1, { ...foreignOut, write: 1 }]) {
      assert.ok(!(other instanceof OutputStream), `${JSON.stringify(other)} is no output stream`);
      assert.ok(!(other instanceof InputStream), `${JSON.stringify(other)} is no input stream`);
    }
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      assert.ok(client.output instanceof OutputStream);
      assert.ok(server.input instanceof InputStream);
      assert.throws(() => client.output.splice(foreignIn as unknown as InputStream, 10n), TypeError);
    });
  });
});

describe("OutputStream splice", () => {
  // Two connections: bytes go client1 -> server1, are spliced to client2, and
  // arrive at server2.
  async function twoPairs(env: Parameters<Parameters<typeof withEnv>[1]>[0]): Promise<[Conn, Conn, Conn, Conn]> {
    const a = await pair(env);
    const b = await pair(env);
    return [a.client, a.server, b.client, b.server];
  }

  it("OutputStream.splice() moves what the source has, up to len", async () => {
    await withEnv({}, async (env) => {
      const [c1, s1, c2, s2] = await twoPairs(env);
      assert.equal(c2.output.splice(s1.input, 100n), 0n, "nothing to move yet");
      c1.output.write(pattern(1000, 2));
      await buffered(s1.input, "data");
      assert.equal(c2.output.splice(s1.input, 400n), 400n);
      assert.equal(c2.output.splice(s1.input, 10_000n), 600n);
      c2.socket.shutdown("send");
      assert.deepEqual(await readAll(s2.input), pattern(1000, 2));
      assert.throws(() => c2.output.splice({} as InputStream, 1n), TypeError);
    });
  });

  it("OutputStream.splice() reports closed once the source has ended", async () => {
    await withEnv({}, async (env) => {
      const [c1, s1, c2] = await twoPairs(env);
      c1.socket.shutdown("send");
      await buffered(s1.input, "end");
      assertStreamError(() => c2.output.splice(s1.input, 10n), "closed");
      assert.equal(c2.output.checkWrite(), 65536n, "the destination is still open");
    });
  });

  it("OutputStream.blockingSplice() waits for the source", async () => {
    await withEnv({}, async (env) => {
      const [c1, s1, c2, s2] = await twoPairs(env);
      const pending = c2.output.blockingSplice(s1.input, 100n);
      await macrotasks(2);
      c1.output.write(new Uint8Array([1, 2, 3]));
      assert.equal(await within(pending, "blocking splice"), 3n);
      c2.socket.shutdown("send");
      assert.deepEqual([...await readAll(s2.input)], [1, 2, 3]);
    });
  });

  it("OutputStream.blockingSplice() reports the destination's failure instead of waiting for the source", async () => {
    await withEnv({ noLeakCheck: true }, async (env) => {
      const [, s1, c2] = await twoPairs(env);
      const pending = outcomeAsync(() => c2.output.blockingSplice(s1.input, 100n));
      await macrotasks(2);
      env.net.reset(c2.socket.remoteAddress().val.port);
      assert.equal(await within(pending, "blocking splice"), "last-operation-failed");
    });
  });

  it("OutputStream.splice() from a lending stream sends the bytes read, not what the backend reuses their buffer for", async () => {
    // A backend that reuses every recycled buffer for its next read at once.
    const scribble = <C extends BackendConnection>(c: C): C => {
      c.recycle = (chunk: Uint8Array) => chunk.fill(0xee);
      return c;
    };
    await withEnv({
      lendReadBuffers: true,
      wrapBackend: (b) => ({
        ...b,
        connect: async (r) => scribble(await b.connect(r)),
        bind: (r) => {
          // The memory backend binds synchronously.
          const binding = b.bind(r) as BackendBinding;
          const listen = binding.listen.bind(binding);
          binding.listen = (q) => listen({ ...q, onConnection: (c) => q.onConnection(scribble(c)) });
          return binding;
        },
      }),
    }, async (env) => {
      const [c1, s1, c2, s2] = await twoPairs(env);
      c1.output.write(new Uint8Array(100).fill(0x41));
      c1.output.write(new Uint8Array(100).fill(0x42));
      await buffered(s1.input, "data");
      await macrotasks(2);
      assert.equal(c2.output.splice(s1.input, 100n), 100n);
      assert.equal(c2.output.splice(s1.input, 100n), 100n, "gives the first chunk's buffer back");
      c2.socket.shutdown("send");
      const got = await readAll(s2.input);
      assert.deepEqual(got, new Uint8Array([...new Uint8Array(100).fill(0x41), ...new Uint8Array(100).fill(0x42)]));
    });
  });
});

describe("TcpSocket.shutdown() and streams", () => {
  it("TcpSocket.shutdown('send') sends FIN only after every written byte", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const data = pattern(5 * BUDGET, 13);
      const reading = readAll(server.input);
      const pollable = client.output.subscribe();
      for (let off = 0; off < data.length; off += BUDGET) {
        if (client.output.checkWrite() === 0n) await waitUntil(pollable, "room");
        client.output.write(data.slice(off, off + BUDGET));
      }
      // No flush, no wait: FIN must still come after the last byte.
      client.socket.shutdown("send");
      const got = await within(reading, "peer reads to the end");
      assert.equal(got.length, data.length);
      assert.deepEqual(got, data);
    });
  });

  it("TcpSocket.shutdown('send') makes write(), checkWrite(), flush() and the blocking calls report closed", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      client.socket.shutdown("send");
      const out = client.output;
      assertStreamError(() => out.checkWrite(), "closed");
      assertStreamError(() => out.write(new Uint8Array([1])), "closed");
      assertStreamError(() => out.write(new Uint8Array(0)), "closed");
      assertStreamError(() => out.flush(), "closed");
      assertStreamError(() => out.writeZeroes(1n), "closed");
      assertStreamError(() => out.splice(server.input, 1n), "closed");
      assert.equal(await outcomeAsync(() => out.blockingFlush()), "closed");
      assert.equal(await outcomeAsync(() => out.blockingWriteAndFlush(new Uint8Array([1]))), "closed");
      assert.equal(out.subscribe().ready(), true, "a closed output's pollable is ready");
      assertStreamError(() => out.checkWrite(), "closed", "stays closed");
    });
  });

  it("TcpSocket.shutdown('send') keeps the other direction working (half-close)", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      client.output.write(new Uint8Array([1]));
      client.socket.shutdown("send");
      assert.deepEqual([...await readAll(server.input)], [1]);
      assert.deepEqual(client.socket.remoteAddress(), server.socket.localAddress(), "still connected");
      const reply = pattern(2 * BUDGET, 17);
      const reading = readAll(client.input);
      await writeAll(server.output, reply);
      server.socket.shutdown("send");
      assert.deepEqual(await within(reading, "reply"), reply);
    });
  });

  it("TcpSocket.shutdown('receive') makes read() report closed at once, also with data buffered, and it stays closed", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      client.output.write(new Uint8Array([1, 2, 3]));
      await buffered(server.input, "data");
      server.socket.shutdown("receive");
      assertStreamError(() => server.input.read(10n), "closed");
      assertStreamError(() => server.input.read(10n), "closed");
      client.output.write(new Uint8Array([4]));
      await macrotasks(2);
      assertStreamError(() => server.input.read(10n), "closed", "later data does not reopen it");
      server.output.write(new Uint8Array([5]));
      assert.deepEqual([...await readAll(client.input, 1)], [5], "the send side still works");
    });
  });

  it("TcpSocket.shutdown() is idempotent and never changes the state", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      client.output.write(new Uint8Array([1]));
      for (const how of ["send", "send", "receive", "receive", "both", "both"] as const) {
        client.socket.shutdown(how);
      }
      assert.deepEqual(client.socket.remoteAddress(), server.socket.localAddress());
      assertCode(() => client.socket.startConnect(env.network, server.socket.localAddress()), "invalid-state");
      assert.deepEqual([...await readAll(server.input)], [1], "one FIN, after the byte");
    });
  });

  it("TcpSocket.shutdown('both') closes both streams", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      client.socket.shutdown("both");
      assertStreamError(() => client.input.read(1n), "closed");
      assertStreamError(() => client.output.checkWrite(), "closed");
      assert.equal((await readAll(server.input)).length, 0);
    });
  });

  it("TcpSocket.shutdown() throws TypeError for an unknown shutdown type", async () => {
    await withEnv({}, async (env) => {
      const { client } = await pair(env);
      assert.throws(() => client.socket.shutdown("sideways" as "send"), TypeError);
      assert.equal(client.output.checkWrite(), 65536n);
    });
  });
});

describe("Streams after a connection reset", () => {
  it("InputStream.read() reports last-operation-failed once after a reset, then closed", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const pollable = server.input.subscribe();
      env.net.reset();
      await waitUntil(pollable, "the reset to arrive");
      let error: unknown;
      try {
        server.input.read(10n);
      } catch (e) {
        error = e;
      }
      assert.ok(error instanceof StreamError);
      assert.equal(error.payload.tag, "last-operation-failed");
      const val = (error.payload as { val: IoError }).val;
      assert.ok(val instanceof env.wasi.error.Error);
      assert.equal(typeof val.toDebugString(), "string");
      assert.equal(val.code, "connection-reset");
      assertStreamError(() => server.input.read(10n), "closed");
      assertStreamError(() => server.input.read(10n), "closed");
      assertStreamError(() => client.input.read(10n), "last-operation-failed", "both ends are reset");
    });
  });

  it("OutputStream.checkWrite() reports last-operation-failed once after a reset, then closed", async () => {
    await withEnv({}, async (env) => {
      const { client } = await pair(env);
      const pollable = client.input.subscribe();
      env.net.reset();
      await waitUntil(pollable, "the reset to arrive");
      assert.equal(client.output.subscribe().ready(), true);
      assertStreamError(() => client.output.checkWrite(), "last-operation-failed");
      assertStreamError(() => client.output.checkWrite(), "closed");
      assertStreamError(() => client.output.write(new Uint8Array([1])), "closed");
      assertStreamError(() => client.input.read(1n), "last-operation-failed", "each stream reports the error once");
      assertStreamError(() => client.input.read(1n), "closed");
    });
  });

  it("InputStream.read() keeps reporting closed after the end or shutdown(receive), whatever error comes later", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      client.output[Symbol.dispose]();
      await buffered(server.input, "the end");
      assertStreamError(() => server.input.read(10n), "closed");
      client.socket.shutdown("receive");
      assertStreamError(() => client.input.read(10n), "closed");
      const pollable = server.output.subscribe();
      env.net.reset();
      await macrotasks(3);
      assertStreamError(() => server.output.checkWrite(), "last-operation-failed", "the reset arrived");
      assertStreamError(() => server.input.read(10n), "closed", "after the end");
      assertStreamError(() => client.input.read(10n), "closed", "after shutdown(receive)");
      pollable[Symbol.dispose]();
    });
  });

  it("InputStream.skip(0n) and read(0n) alike report closed once the stream has ended", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      client.output.write(new Uint8Array([1]));
      client.output[Symbol.dispose]();
      await buffered(server.input, "data");
      await macrotasks(2);
      assert.equal(server.input.skip(0n), 0n, "a byte is still there");
      assert.equal(server.input.skip(5n), 1n);
      assertStreamError(() => server.input.skip(0n), "closed");
      assertStreamError(() => server.input.read(0n), "closed");
    });
  });

  it("OutputStream.checkWrite() keeps reporting closed after shutdown(send), whatever error comes later", async () => {
    await withEnv({}, async (env) => {
      const { client } = await pair(env);
      client.socket.shutdown("send");
      assertStreamError(() => client.output.checkWrite(), "closed");
      env.net.reset();
      await macrotasks(3);
      assertStreamError(() => client.input.read(1n), "last-operation-failed", "the reset arrived");
      assertStreamError(() => client.output.checkWrite(), "closed");
      assertStreamError(() => client.output.write(new Uint8Array(1)), "closed");
    });
  });

  it("InputStream.read() after a reset on an IPv6 connection hands out data received before it", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env, LOCALHOST6);
      client.output.write(new Uint8Array([1, 2]));
      await buffered(server.input, "data");
      env.net.reset();
      await macrotasks(2);
      assert.deepEqual([...server.input.read(10n)], [1, 2]);
      assertStreamError(() => server.input.read(10n), "last-operation-failed");
    });
  });
});

describe("Backpressure", () => {
  for (const direction of ["client to server", "server to client"] as const) {
    for (const receiveWindow of [undefined, 32 * KIB]) {
      const window = receiveWindow ?? 256 * KIB;
      it(`OutputStream.checkWrite() drops to 0n and stays there while the peer does not read (${direction}, receive window ${window / KIB} KiB), and recovers when it drains`, async () => {
        await withEnv({ receiveWindow, network: { windowSize: 1024 } }, async (env) => {
          const p = await pair(env);
          const [writer, reader] = direction === "client to server" ? [p.client, p.server] : [p.server, p.client];
          // Subscribing starts reading; the reader then takes nothing.
          const readable = reader.input.subscribe();
          const writable = writer.output.subscribe();
          const data = pattern(window + 4 * BUDGET, 19);
          let written = 0;
          for (let rounds = 0;; rounds++) {
            assert.ok(rounds < 100, "the writer never ran out of room");
            const room = Number(writer.output.checkWrite());
            if (room > 0) {
              const n = Math.min(room, data.length - written);
              assert.ok(n > 0, "wrote past the receive window without backpressure");
              writer.output.write(data.slice(written, written + n));
              written += n;
              continue;
            }
            // Room that stays 0 while the network runs is backpressure.
            await macrotasks(5);
            if (writer.output.checkWrite() === 0n) break;
          }
          assert.ok(written >= window, `only ${written} bytes before backpressure`);
          assert.ok(written <= window + 2 * BUDGET, `${written} bytes accepted past a ${window}-byte window`);
          assert.equal(readable.ready(), true);
          await macrotasks(20);
          assert.equal(writer.output.checkWrite(), 0n, "still 0 while nobody reads");
          assert.equal(writable.ready(), false);
          // Drain: the writer's pollable becomes ready again.
          const got = readAll(reader.input, written);
          await waitUntil(writable, "writer to get room again");
          assert.equal(writer.output.checkWrite(), 65536n);
          assert.deepEqual(await within(got, "reader drains"), data.subarray(0, written));
          // And the rest still flows.
          const rest = readAll(reader.input);
          await writeAll(writer.output, data.subarray(written));
          writer.socket.shutdown("send");
          assert.deepEqual(await within(rest, "the rest"), data.subarray(written));
        });
      });
    }
  }

  it("createWasiSockets() throws TypeError for a receiveWindow or maxAcceptQueue that is not a positive integer", () => {
    const backend = new MemoryNetwork().backend;
    for (const bad of [0, -1, 1.5, Number.NaN, "65536"]) {
      assert.throws(() => createWasiSockets({ backend, receiveWindow: bad as number }), TypeError, `receiveWindow ${bad}`);
      assert.throws(() => createWasiSockets({ backend, maxAcceptQueue: bad as number }), TypeError, `maxAcceptQueue ${bad}`);
    }
    createWasiSockets({ backend, receiveWindow: 1, maxAcceptQueue: 1 });
  });

  it("InputStream.subscribe() or read() starts taking data, so an idle reader pushes back at once", async () => {
    await withEnv({ network: { windowSize: 1024 } }, async (env) => {
      const { client, server } = await pair(env);
      client.output.write(new Uint8Array(BUDGET));
      await macrotasks(5);
      assert.equal(client.output.checkWrite(), 0n, "an idle reader takes nothing");
      const got = readAll(server.input, BUDGET);
      await waitUntil(client.output.subscribe(), "drain after the first read");
      assert.equal((await within(got, "read")).length, BUDGET);
    });
  });
});

describe("Streams after their socket is dropped", () => {
  it("InputStream.blockingRead() and OutputStream.blockingFlush() end with closed when the socket is dropped meanwhile", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      // Fill the client's send window so that a flush has to wait.
      while (client.output.checkWrite() > 0n) client.output.write(new Uint8Array(BUDGET));
      const reading = outcomeAsync(() => server.input.blockingRead(10n));
      const flushing = outcomeAsync(() => client.output.blockingFlush());
      server.socket[Symbol.dispose]();
      client.socket[Symbol.dispose]();
      assert.equal(await within(reading, "blocked read to end"), "closed");
      assert.equal(await within(flushing, "blocked flush to end"), "closed");
    });
  });
});
