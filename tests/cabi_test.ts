// core/_cabi.ts: the lowerings jco's optimized import bindings call in place
// of its generated per-call code. Each test plays jco's part by hand: handle
// tables in jco's layout, a wasm memory and a bump realloc, then calls the
// core function a lowering returns with the arguments the canonical ABI gives.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CABI_LOWER, type CabiContext, installLowerings } from "../core/_cabi.ts";
import type { BackendConnection } from "../core/backend.ts";
import { IoError, StreamError } from "../core/errors.ts";
import { Pollable } from "../core/pollable.ts";
import { InputStream, OutputStream } from "../core/streams.ts";
import { TcpSocket } from "../core/tcp_socket.ts";
import { CABI_DISPOSE, CABI_REP, T_FLAG } from "../core/_reps.ts";
import { connected, listening, pair, pattern, portOf, readAll, waitUntil, withEnv, within } from "./_memory_env.ts";

type Table = number[];
// deno-lint-ignore no-explicit-any
type Core = (...args: any[]) => any;

function table(): Table {
  return [T_FLAG, 0];
}

// What jco's own code does with an object it puts in a table: its rep is the
// object's Symbol.for("cabiRep").
function put(t: Table, object: object): number {
  t.push(0);
  t.push((object as Record<symbol, number>)[CABI_REP] | T_FLAG);
  return (t.length >> 1) - 1;
}

function repAt(t: Table, handle: number): number {
  return t[(handle << 1) + 1] & ~T_FLAG;
}

class Guest {
  readonly memory = new WebAssembly.Memory({ initial: 1 });
  #top = 4096;
  readonly realloc = (_old: number, _size: number, align: number, size: number): number => {
    this.#top = Math.ceil(this.#top / align) * align;
    const at = this.#top;
    this.#top += size;
    return at;
  };
  get view(): DataView {
    return new DataView(this.memory.buffer);
  }
  bytes(at: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, at, n).slice();
  }
  lower(fn: unknown, tables: Table[]): Core {
    const lowering = (fn as Record<symbol, (ctx: CabiContext) => Core>)[CABI_LOWER];
    assert.equal(typeof lowering, "function", "the function has a lowering");
    return lowering({ memory: this.memory, realloc: this.realloc, resourceTables: tables });
  }
}

const RET = 64;

// The pollable class of the tests that install lowerings on classes of their own.
class NoPollable {
  ready(): boolean {
    return true;
  }
  block(): void {}
}

// What error.to-debug-string's lowering gives for an error handle.
function debugString(g: Guest, errors: Table, handle: number): string {
  g.lower(IoError.prototype.toDebugString, [errors])(handle, RET);
  return new TextDecoder().decode(g.bytes(g.view.getUint32(RET, true), g.view.getUint32(RET + 4, true)));
}

describe("core/_cabi.ts lowerings", () => {
  it("InputStream.read()'s lowering copies what arrived into guest memory, whichever order the tables come in, and lowers closed as stream-error closed", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const errors = table();
      const inputs = table();
      const g = new Guest();
      // jco numbers its tables by first use: the stream's may come first or last.
      for (const tables of [[errors, inputs], [inputs, errors]]) {
        const read = g.lower(InputStream.prototype.read, tables);
        const handle = put(inputs, server.input);
        const data = pattern(3000, 5);
        client.output.write(data.slice());
        await waitUntil(server.input.subscribe(), "data");
        read(handle, 65536n, RET);
        assert.equal(g.view.getUint8(RET), 0, "ok");
        const ptr = g.view.getUint32(RET + 4, true);
        const len = g.view.getUint32(RET + 8, true);
        assert.equal(len, 3000);
        assert.deepEqual(g.bytes(ptr, len), data);
      }
      client.socket.shutdown("send");
      await waitUntil(server.input.subscribe(), "end of stream");
      const read = g.lower(InputStream.prototype.read, [errors, inputs]);
      read(put(inputs, server.input), 16n, RET);
      assert.equal(g.view.getUint8(RET), 1, "err");
      assert.equal(g.view.getUint8(RET + 4), 1, "closed");
    });
  });

  it("OutputStream.write()'s lowering gives a stream without the copiesListArguments mark a copy, so guest memory may change at once", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const g = new Guest();
      const outputs = table();
      const write = g.lower(OutputStream.prototype.write, [table(), outputs]);
      const checkWrite = g.lower(OutputStream.prototype.checkWrite, [table(), outputs]);
      const handle = put(outputs, client.output);
      checkWrite(handle, RET);
      assert.equal(g.view.getUint8(RET), 0);
      assert.equal(g.view.getBigUint64(RET + 8, true), 65536n);
      const data = pattern(5000, 9);
      new Uint8Array(g.memory.buffer, 8192, data.length).set(data);
      write(handle, 8192, data.length, RET);
      assert.equal(g.view.getUint8(RET), 0, "ok");
      new Uint8Array(g.memory.buffer, 8192, data.length).fill(0xee);
      client.output[Symbol.dispose]();
      assert.deepEqual(await within(readAll(server.input), "the bytes"), data);
    });
  });

  it("OutputStream.write()'s lowering lends guest memory through WRITE_LENT, so a backend with writeBorrowed copies it once and write() gets no copy of jco's", async () => {
    const borrowed: Uint8Array[] = [];
    let written = 0;
    const wrap = (c: BackendConnection): BackendConnection =>
      new Proxy(c, {
        get: (target, key) => {
          if (key === "borrowedWritesCopy") return true;
          if (key === "writeBorrowed") {
            return (chunk: Uint8Array): boolean => {
              borrowed.push(chunk);
              return target.write(chunk.slice());
            };
          }
          if (key === "write") return (chunk: Uint8Array): boolean => (written++, target.write(chunk));
          const value = Reflect.get(target, key, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    await withEnv({ wrapBackend: (b) => ({ ...b, connect: async (r) => wrap(await b.connect(r)) }) }, async (env) => {
      const { client, server } = await pair(env);
      const g = new Guest();
      const outputs = table();
      const write = g.lower(OutputStream.prototype.write, [table(), outputs]);
      const handle = put(outputs, client.output);
      const data = pattern(5000, 3);
      new Uint8Array(g.memory.buffer, 8192, data.length).set(data);
      write(handle, 8192, data.length, RET);
      assert.equal(g.view.getUint8(RET), 0, "ok");
      new Uint8Array(g.memory.buffer, 8192, data.length).fill(0xee);
      assert.equal(borrowed.length, 1);
      assert.equal(borrowed[0].buffer, g.memory.buffer, "a view of guest memory");
      assert.equal(written, 0);
      client.output[Symbol.dispose]();
      assert.deepEqual(await within(readAll(server.input), "the bytes"), data);
    });
  });

  it("subscribe()'s lowering puts a new pollable in the other table, poll's and ready's lowerings find it, and cabiDispose drops it", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const g = new Guest();
      const pollables = table();
      const inputs = table();
      const subscribe = g.lower(InputStream.prototype.subscribe, [pollables, inputs]);
      const ready = g.lower(Pollable.prototype.ready, [pollables]);
      const p = subscribe(put(inputs, server.input));
      assert.equal(ready(p), 0, "nothing has arrived");
      client.output.write(new Uint8Array([1, 2, 3]));
      const pollable = (Pollable as unknown as Record<symbol, unknown>)[CABI_DISPOSE];
      assert.equal(typeof pollable, "function");
      // The pollable the lowering made is this package's, registered by rep.
      await waitUntil(server.input.subscribe(), "data");
      assert.equal(ready(p), 1);
      (Pollable as unknown as Record<symbol, (rep: number) => void>)[CABI_DISPOSE](repAt(pollables, p));
      assert.throws(() => ready(p), (e: Error) => !("payload" in e) && /Unknown pollable handle/.test(e.message));
    });
  });

  it("TcpSocket.subscribe()'s lowering gives a listener's pollable, ready once a connection waits, whichever order the tables come in, and a dropped socket leaves the registry", async () => {
    await withEnv({}, async (env) => {
      for (const order of ["pollables first", "sockets first"]) {
        const listener = await listening(env);
        const g = new Guest();
        const pollables = table();
        const sockets = table();
        const subscribe = g.lower(
          TcpSocket.prototype.subscribe,
          order === "pollables first" ? [pollables, sockets] : [sockets, pollables],
        );
        const ready = g.lower(Pollable.prototype.ready, [pollables]);
        // A pollable handle first, so that a lowering that took the wrong
        // table would find an object there.
        put(pollables, listener.subscribe());
        const handle = put(sockets, listener);
        const p = subscribe(handle);
        assert.equal(repAt(sockets, handle), (listener as unknown as Record<symbol, number>)[CABI_REP]);
        assert.equal(ready(p), 0, `${order}: no connection waits`);
        await connected(env, { tag: "ipv4", val: { port: portOf(listener), address: [127, 0, 0, 1] } });
        await waitUntil(listener.subscribe(), "a connection");
        assert.equal(ready(p), 1, `${order}: a connection waits`);
        (Pollable as unknown as Record<symbol, (rep: number) => void>)[CABI_DISPOSE](repAt(pollables, p));
        listener[Symbol.dispose]();
        assert.throws(() => subscribe(handle), (e: Error) => !("payload" in e) && /Unknown resource handle/.test(e.message));
      }
    });
  });

  it("a stream-error last-operation-failed lowers an error handle, and error.to-debug-string()'s lowering gives its message", () => {
    class FailingInput {
      read(): Uint8Array {
        throw StreamError.failed(new IoError("The peer reset the connection", "connection-reset"));
      }
      subscribe(): object {
        return {};
      }
    }
    class NoOutput {
      checkWrite(): bigint {
        return 0n;
      }
      write(): void {}
      subscribe(): object {
        return {};
      }
    }
    installLowerings({
      InputStream: FailingInput,
      OutputStream: NoOutput,
      Pollable: NoPollable,
      IoError,
      poll: () => new Uint32Array(0),
    });
    const g = new Guest();
    const errors = table();
    const inputs = table();
    const read = g.lower(FailingInput.prototype.read, [inputs, errors]);
    read(put(inputs, new FailingInput()), 10n, RET);
    assert.equal(g.view.getUint8(RET), 1, "err");
    assert.equal(g.view.getUint8(RET + 4), 0, "last-operation-failed");
    assert.equal(debugString(g, errors, g.view.getInt32(RET + 8, true)), "The peer reset the connection");
  });

  it("OutputStream.write()'s lowering reaches another host's stream (preview2-shim's stdout) by the rep jco gives it, with a copy", () => {
    const got: Uint8Array[] = [];
    const stdout = {
      checkWrite: () => 4096n,
      write: (bytes: Uint8Array) => void got.push(bytes),
      blockingWriteAndFlush: () => {},
      flush: () => {},
      blockingFlush: () => {},
      subscribe: () => ({}),
      [CABI_REP]: 7,
    };
    // What jco checks before it puts the stream in a table.
    assert.ok(stdout instanceof OutputStream);
    const g = new Guest();
    const outputs = table();
    const write = g.lower(OutputStream.prototype.write, [outputs, table()]);
    outputs.push(0, 7 | T_FLAG);
    new Uint8Array(g.memory.buffer, 8192, 2).set([104, 105]);
    write(1, 8192, 2, RET);
    assert.equal(g.view.getUint8(RET), 0);
    assert.deepEqual([...got[0]], [104, 105]);
    assert.notEqual(got[0].buffer, g.memory.buffer, "another host gets a copy");
  });

  it("a lowering traps (no payload) for a handle that holds none of this package's objects", () => {
    const g = new Guest();
    const read = g.lower(InputStream.prototype.read, [table(), table()]);
    assert.throws(() => read(5, 1n, RET), (e: Error) => !("payload" in e) && /Unknown resource handle 5/.test(e.message));
  });

  it("InputStream.read()'s lowering takes the length as the u64 the wasm passes as a signed i64, and asks realloc even for an empty list", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const g = new Guest();
      const inputs = table();
      let asked: number[] = [];
      const realloc = (old: number, size: number, align: number, n: number): number => {
        asked.push(n);
        return g.realloc(old, size, align, n);
      };
      const lowering = (InputStream.prototype.read as unknown as Record<symbol, (ctx: CabiContext) => Core>)[CABI_LOWER];
      const read = lowering({ memory: g.memory, realloc, resourceTables: [table(), inputs] });
      const handle = put(inputs, server.input);
      read(handle, 16n, RET);
      assert.equal(g.view.getUint8(RET), 0);
      assert.equal(g.view.getUint32(RET + 8, true), 0, "nothing yet");
      assert.deepEqual(asked, [0], "realloc is asked for the empty list");
      assert.notEqual(g.view.getUint32(RET + 4, true), 0, "the pointer realloc gave");
      client.output.write(new Uint8Array([7, 8, 9]));
      await waitUntil(server.input.subscribe(), "data");
      asked = [];
      // u64::MAX, as a wasm i64.
      read(handle, -1n, RET);
      assert.equal(g.view.getUint8(RET), 0, "ok, not a trap");
      assert.deepEqual(asked, [3]);
      assert.deepEqual([...g.bytes(g.view.getUint32(RET + 4, true), 3)], [7, 8, 9]);
    });
  });

  it("a stream of another host that throws preview2-shim's plain stream-errors gets them lowered, its error's debug string included", () => {
    let disposed = 0;
    const failure = { toDebugString: () => "stdin is gone", [Symbol.dispose]: () => void disposed++ };
    let thrown: unknown = { tag: "closed" };
    const stdin = {
      read: () => {
        throw thrown;
      },
      blockingRead: () => new Uint8Array(0),
      skip: () => 0n,
      blockingSkip: () => 0n,
      subscribe: () => ({}),
      [CABI_REP]: 11,
    };
    assert.ok(stdin instanceof InputStream);
    const g = new Guest();
    const inputs = table();
    const errors = table();
    inputs.push(0, 11 | T_FLAG);
    const read = g.lower(InputStream.prototype.read, [errors, inputs]);
    read(1, 10n, RET);
    assert.equal(g.view.getUint8(RET), 1, "err");
    assert.equal(g.view.getUint8(RET + 4), 1, "closed");
    thrown = { tag: "last-operation-failed", val: failure };
    read(1, 10n, RET);
    assert.equal(g.view.getUint8(RET + 4), 0, "last-operation-failed");
    const error = g.view.getInt32(RET + 8, true);
    assert.equal(debugString(g, errors, error), "stdin is gone");
    (IoError as unknown as Record<symbol, (rep: number) => void>)[CABI_DISPOSE](repAt(errors, error));
    assert.equal(disposed, 1, "dropping the handle disposes the other host's error");
    thrown = new Error("a bug, not a stream-error");
    assert.throws(() => read(1, 10n, RET), /a bug/);
  });

  it("blocking-read, blocking-write-and-flush, flush and blocking-flush get lowerings: bytes in and out, a copy for a stream without the mark, stream-errors", () => {
    const sent: Uint8Array[] = [];
    let closed = false;
    class SlowInput {
      read(): Uint8Array {
        return new Uint8Array(0);
      }
      blockingRead(len: bigint): Uint8Array {
        return new Uint8Array([1, 2, 3, 4, 5]).subarray(0, Number(len));
      }
      subscribe(): object {
        return {};
      }
    }
    class Sink {
      checkWrite(): bigint {
        return 4096n;
      }
      write(): void {}
      blockingWriteAndFlush(bytes: Uint8Array): void {
        sent.push(bytes);
      }
      flush(): void {
        if (closed) throw StreamError.closed();
      }
      blockingFlush(): void {}
      subscribe(): object {
        return {};
      }
    }
    installLowerings({ InputStream: SlowInput, OutputStream: Sink, Pollable: NoPollable, IoError, poll: () => new Uint32Array(0) });
    const g = new Guest();
    const inputs = table();
    const outputs = table();
    const blockingRead = g.lower(SlowInput.prototype.blockingRead, [table(), inputs]);
    // u64::MAX as the wasm passes it.
    blockingRead(put(inputs, new SlowInput()), -1n, RET);
    assert.equal(g.view.getUint8(RET), 0);
    assert.deepEqual([...g.bytes(g.view.getUint32(RET + 4, true), g.view.getUint32(RET + 8, true))], [1, 2, 3, 4, 5]);
    const sink = put(outputs, new Sink());
    const blockingWrite = g.lower(Sink.prototype.blockingWriteAndFlush, [outputs, table()]);
    new Uint8Array(g.memory.buffer, 8192, 3).set([9, 8, 7]);
    blockingWrite(sink, 8192, 3, RET);
    assert.equal(g.view.getUint8(RET), 0);
    assert.deepEqual([...sent[0]], [9, 8, 7]);
    assert.notEqual(sent[0].buffer, g.memory.buffer, "a stream without the mark gets a copy");
    const flush = g.lower(Sink.prototype.flush, [outputs, table()]);
    flush(sink, RET);
    assert.equal(g.view.getUint8(RET), 0);
    closed = true;
    flush(sink, RET);
    assert.equal(g.view.getUint8(RET), 1, "err");
    assert.equal(g.view.getUint8(RET + 4), 1, "closed");
    const blockingFlush = g.lower(Sink.prototype.blockingFlush, [outputs, table()]);
    blockingFlush(sink, RET);
    assert.equal(g.view.getUint8(RET), 0);
  });
});
