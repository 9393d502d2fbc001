// jco's optimized import bindings ("--import-bindings hybrid"): for an import
// whose host function carries `Symbol.for("cabiLower")`, jco calls it once per
// component instance with the instance's memory, realloc and handle tables,
// and wires the core function it returns straight into the wasm, in place of
// its generated JS per call (task objects, result objects, a copy of every
// list argument). This module gives the hot wasi:io functions such lowerings,
// for the asynchronous entry and the synchronous one alike.
//
// Handles follow jco's tables: entry `2h + 1` of a table holds the rep of
// handle `h` (T_FLAG set for an own handle); reps are core/_reps.ts's. A
// handle this module creates (a pollable, an error) is dropped through the
// class's `Symbol.for("cabiDispose")`.

import { copyInto } from "./_copy.ts";
import { StreamError, trap } from "./errors.ts";
import { CABI_REP, giveReps, newRep, objectOfRep, repOfObject, T_FLAG } from "./_reps.ts";

/** The property jco looks up on a host function for a lowering. */
export const CABI_LOWER: unique symbol = Symbol.for("cabiLower");

// Streams of another host that jco checked against this package's classes
// (stdio from preview2-shim), by the rep jco gives them.
const foreign = { input: new Map<number, WeakRef<object>>(), output: new Map<number, WeakRef<object>>() };
const FOREIGN_PRUNE_AT = 64;

/** What jco hands a lowering. */
export interface CabiContext {
  // A WebAssembly.Memory, typed by what is used: the npm build has no DOM types.
  memory?: { readonly buffer: ArrayBufferLike };
  realloc?: (oldPtr: number, oldSize: number, align: number, size: number) => number;
  resourceTables?: number[][];
}

type Lowering = (ctx: CabiContext) => unknown;

/**
 * Records a stream of another host that jco is about to put in a table, so
 * that a lowering finds it by its rep.
 *
 * @param kind Which kind of stream.
 * @param value The stream.
 */
export function noteForeignStream(kind: "input" | "output", value: object): void {
  const record = value as Record<symbol, unknown>;
  let rep = record[CABI_REP];
  if (typeof rep !== "number") {
    rep = newRep();
    Object.defineProperty(value, CABI_REP, { value: rep, configurable: true });
  }
  const map = foreign[kind];
  if (map.size >= FOREIGN_PRUNE_AT) {
    for (const [k, ref] of map) if (ref.deref() === undefined) map.delete(k);
  }
  map.set(rep as number, new WeakRef(value));
}

function objectAt(table: number[], handle: number): object | undefined {
  const entry = table[(handle << 1) + 1];
  return entry === undefined ? undefined : objectOfRep(entry & ~T_FLAG);
}

function foreignAt(kind: "input" | "output", table: number[], handle: number): object | undefined {
  const entry = table[(handle << 1) + 1];
  return entry === undefined ? undefined : foreign[kind].get(entry & ~T_FLAG)?.deref();
}

// Puts an own handle for `rep` in `table`, as jco's rscTableCreateOwn does.
function createOwn(table: number[], rep: number): number {
  const free = table[0] & ~T_FLAG;
  if (free === 0) {
    table.push(0);
    table.push(rep | T_FLAG);
    return (table.length >> 1) - 1;
  }
  table[0] = table[free << 1];
  table[free << 1] = 0;
  table[(free << 1) + 1] = rep | T_FLAG;
  return free;
}

// Typed views of guest memory, made again after it grows.
class Memory {
  readonly #memory: { readonly buffer: ArrayBufferLike };
  #buffer: ArrayBufferLike | undefined;
  #view!: DataView;
  #bytes!: Uint8Array;

  constructor(memory: { readonly buffer: ArrayBufferLike } | undefined) {
    if (memory === undefined) throw trap("The lowering needs the component's memory");
    this.#memory = memory;
  }

  #fresh(): void {
    const buffer = this.#memory.buffer;
    if (buffer !== this.#buffer) {
      this.#buffer = buffer;
      this.#view = new DataView(buffer);
      this.#bytes = new Uint8Array(buffer);
    }
  }

  get view(): DataView {
    this.#fresh();
    return this.#view;
  }

  get bytes(): Uint8Array {
    this.#fresh();
    return this.#bytes;
  }
}

/**
 * The classes and functions of one entry that get lowerings. Only the
 * registry's objects, of this package's own classes, come back from a rep;
 * `instanceof` tells their kinds apart.
 */
export interface CabiTargets {
  /** `wasi:io/streams.input-stream`. */
  // deno-lint-ignore no-explicit-any
  InputStream: (abstract new (...args: any[]) => object) & {
    prototype: { read(len: bigint): Uint8Array; blockingRead?(len: bigint): unknown; subscribe(): object };
  };
  /** `wasi:io/streams.output-stream`. */
  // deno-lint-ignore no-explicit-any
  OutputStream: (abstract new (...args: any[]) => object) & {
    prototype: {
      checkWrite(): bigint;
      write(contents: Uint8Array): void;
      blockingWriteAndFlush?(contents: Uint8Array): unknown;
      flush?(): void;
      blockingFlush?(): unknown;
      subscribe(): object;
    };
  };
  /** `wasi:io/poll.pollable`. */
  // deno-lint-ignore no-explicit-any
  Pollable: (abstract new (...args: any[]) => object) & { prototype: { ready(): boolean; block(): unknown } };
  /** `wasi:io/error.error`. */
  // deno-lint-ignore no-explicit-any
  IoError: (abstract new (...args: any[]) => object) & { prototype: { toDebugString(): string } };
  /**
   * `wasi:sockets/tcp.tcp-socket`, for its `subscribe`: a server polls its
   * listener next to its connections on every turn of its loop.
   */
  // deno-lint-ignore no-explicit-any
  TcpSocket?: (abstract new (...args: any[]) => object) & { prototype: { subscribe(): object } };
  /** `wasi:io/poll.poll`. */
  poll: (pollables: never[]) => unknown;
  /**
   * For the asynchronous entry: poll without waiting when it can answer at
   * once (the pollables' indices), else the promise of them. Its poll and
   * block then become JSPI suspending imports.
   */
  pollNow?: (pollables: never[]) => Uint32Array | Promise<Uint32Array>;
}

// Which of a lowering's two tables is its resource's own: jco orders the
// tables by its own numbering, so the first call tells them apart by the
// handle it is given.
class Tables {
  #own: number[] | undefined;
  #other: number[] | undefined;
  readonly #tables: number[][];
  readonly #resolve: (table: number[], handle: number) => object | undefined;

  constructor(ctx: CabiContext, resolve: (table: number[], handle: number) => object | undefined) {
    this.#tables = ctx.resourceTables ?? [];
    this.#resolve = resolve;
  }

  find(handle: number): object {
    const own = this.#own;
    if (own !== undefined) {
      const found = this.#resolve(own, handle);
      if (found !== undefined) return found;
    } else {
      for (const table of this.#tables) {
        const found = this.#resolve(table, handle);
        if (found !== undefined) {
          this.#own = table;
          this.#other = this.#tables.find((t) => t !== table);
          return found;
        }
      }
    }
    throw trap(`Unknown resource handle ${handle}`);
  }

  get other(): number[] {
    if (this.#other === undefined) throw trap("The lowering has no table for the resource it returns");
    return this.#other;
  }
}

// Writes a stream-error at `at` (its case byte, then the error's handle 4
// bytes on), or rethrows what is not one. Like jco's own code, it takes a
// thrown value's own `payload`, or a thrown object that is not an Error as
// the payload itself: preview2-shim's streams throw `{ tag: "closed" }`.
function lowerStreamError(e: unknown, memory: Memory, at: number, errors: () => number[]): void {
  let payload: { tag?: unknown; val?: unknown };
  if (e instanceof StreamError) payload = e.payload;
  else if (typeof e === "object" && e !== null && Object.prototype.hasOwnProperty.call(e, "payload")) {
    payload = (e as { payload: { tag?: unknown; val?: unknown } }).payload;
  } else if (typeof e === "object" && e !== null && !(e instanceof Error)) payload = e as { tag?: unknown };
  else throw e;
  const view = memory.view;
  if (payload?.tag === "closed") {
    view.setUint8(at, 1);
    return;
  }
  if (payload?.tag !== "last-operation-failed" || typeof payload.val !== "object" || payload.val === null) {
    throw trap(`Not a stream-error: ${String(payload?.tag)}`);
  }
  view.setUint8(at, 0);
  view.setInt32(at + 4, createOwn(errors(), repOfObject(payload.val)), true);
}

const encoder = new TextEncoder();
// streams.ts's COPIES_LIST_ARGUMENTS, a registered symbol: no import cycle.
const COPIES_LIST_ARGUMENTS = Symbol.for("wasi-tcp.copiesListArguments");
// streams.ts's WRITE_LENT, likewise.
const WRITE_LENT = Symbol.for("wasi-tcp.writeLent");
// JSPI's wrapper for an import that may return a promise (Deno, Bun; not Node 20).
const Suspending = (globalThis as { WebAssembly?: { Suspending?: new (f: (...args: never[]) => unknown) => object } })
  .WebAssembly?.Suspending;

/**
 * Gives one entry's hot wasi:io functions jco lowerings.
 *
 * @param t The entry's classes and functions.
 */
export function installLowerings(t: CabiTargets): void {
  for (const cls of [t.InputStream, t.OutputStream, t.Pollable, t.IoError, t.TcpSocket]) if (cls) giveReps(cls);
  const asyncEntry = t.pollNow !== undefined;
  // Without JSPI the asynchronous entry's poll and block cannot be lowered.
  const lowerWaits = !asyncEntry || Suspending !== undefined;

  const input = (table: number[], handle: number): object | undefined => {
    const value = objectAt(table, handle);
    return value !== undefined && value instanceof t.InputStream ? value : foreignAt("input", table, handle);
  };
  const output = (table: number[], handle: number): object | undefined => {
    const value = objectAt(table, handle);
    return value !== undefined && value instanceof t.OutputStream ? value : foreignAt("output", table, handle);
  };

  // Idempotent: both entries share the error class.
  const lower = (target: object | undefined, lowering: Lowering): void => {
    if (typeof target === "function" && !Object.prototype.hasOwnProperty.call(target, CABI_LOWER)) {
      Object.defineProperty(target, CABI_LOWER, { value: lowering });
    }
  };

  lower(t.InputStream.prototype.read, (ctx) => {
    const memory = new Memory(ctx.memory);
    const realloc = ctx.realloc!;
    const tables = new Tables(ctx, input);
    return function read(handle: number, len: bigint, ret: number): void {
      const stream = tables.find(handle) as { read(len: bigint): Uint8Array };
      let bytes: Uint8Array;
      try {
        // The wasm passes the u64 as a signed i64.
        bytes = stream.read(BigInt.asUintN(64, len));
      } catch (e) {
        lowerStreamError(e, memory, ret + 4, () => tables.other);
        memory.view.setUint8(ret, 1);
        return;
      }
      const n = bytes.length;
      // Called for an empty list too, as the canonical ABI does: a guest may
      // rely on a pointer it got from its own allocator.
      const ptr = realloc(0, 0, 1, n);
      // A lent read result may be a view of shared memory (the sync mode's ring).
      if (n !== 0) copyInto(memory.bytes, ptr, bytes);
      const view = memory.view;
      view.setUint8(ret, 0);
      view.setUint32(ret + 4, ptr, true);
      view.setUint32(ret + 8, n, true);
    };
  });

  const subscribeLowering = (owns: typeof input): Lowering => (ctx) => {
    const tables = new Tables(ctx, owns);
    return function subscribe(handle: number): number {
      const resource = tables.find(handle) as { subscribe(): object };
      const pollable = resource.subscribe();
      if (!(pollable instanceof t.Pollable)) throw trap("Cannot subscribe to a stream of another host here");
      return createOwn(tables.other, repOfObject(pollable));
    };
  };
  lower(t.InputStream.prototype.subscribe, subscribeLowering(input));
  lower(t.OutputStream.prototype.subscribe, subscribeLowering(output));
  const TcpSocket = t.TcpSocket;
  if (TcpSocket !== undefined) {
    lower(
      TcpSocket.prototype.subscribe,
      subscribeLowering((table, handle) => {
        const value = objectAt(table, handle);
        return value instanceof TcpSocket ? value : undefined;
      }),
    );
  }

  lower(t.OutputStream.prototype.checkWrite, (ctx) => {
    const memory = new Memory(ctx.memory);
    const tables = new Tables(ctx, output);
    return function checkWrite(handle: number, ret: number): void {
      const stream = tables.find(handle) as { checkWrite(): bigint };
      let n: bigint;
      try {
        n = stream.checkWrite();
      } catch (e) {
        lowerStreamError(e, memory, ret + 8, () => tables.other);
        memory.view.setUint8(ret, 1);
        return;
      }
      const view = memory.view;
      view.setUint8(ret, 0);
      view.setBigUint64(ret + 8, n, true);
    };
  });

  lower(t.OutputStream.prototype.write, (ctx) => {
    const memory = new Memory(ctx.memory);
    const tables = new Tables(ctx, output);
    return function write(handle: number, ptr: number, len: number, ret: number): void {
      const stream = tables.find(handle) as
        & { write(contents: Uint8Array): void }
        & Record<symbol, unknown>;
      const view = new Uint8Array(memory.bytes.buffer, ptr, len);
      try {
        // Only a stream that copies may read guest memory after returning;
        // the core's copies into its backend's pooled buffers where it can.
        const lent = stream[WRITE_LENT] as ((contents: Uint8Array) => void) | undefined;
        if (lent !== undefined) lent.call(stream, view);
        else stream.write(stream[COPIES_LIST_ARGUMENTS] === true ? view : view.slice());
      } catch (e) {
        lowerStreamError(e, memory, ret + 4, () => tables.other);
        memory.view.setUint8(ret, 1);
        return;
      }
      memory.view.setUint8(ret, 0);
    };
  });

  // The blocking calls and flush: `call` may answer with a promise (the
  // asynchronous entry), which then suspends the component. `done` writes
  // the ok case; a stream-error goes 4 bytes on from `ret`.
  const blocking = (
    owns: typeof input,
    call: (stream: never, memory: Memory, args: number[], len: bigint) => unknown,
    done: (value: unknown, ret: number, memory: Memory, realloc: CabiContext["realloc"]) => void,
    suspends: boolean,
  ): Lowering =>
  (ctx) => {
    const memory = new Memory(ctx.memory);
    const tables = new Tables(ctx, owns);
    const fail = (e: unknown, ret: number): void => {
      lowerStreamError(e, memory, ret + 4, () => tables.other);
      memory.view.setUint8(ret, 1);
    };
    const settle = (value: unknown, ret: number): void => {
      done(value, ret, memory, ctx.realloc);
      memory.view.setUint8(ret, 0);
    };
    // (handle, ret), (handle, len, ret) or (handle, ptr, len, ret).
    const lowered = (handle: number, ...rest: (number | bigint)[]): unknown => {
      const ret = rest[rest.length - 1] as number;
      const stream = tables.find(handle) as never;
      let result: unknown;
      try {
        result = call(stream, memory, rest.slice(0, -1) as number[], typeof rest[0] === "bigint" ? rest[0] : 0n);
      } catch (e) {
        fail(e, ret);
        return undefined;
      }
      if (result instanceof Promise) return result.then((v) => settle(v, ret), (e) => fail(e, ret));
      settle(result, ret);
      return undefined;
    };
    return suspends && asyncEntry ? new Suspending!(lowered) : lowered;
  };
  const nothing = (): void => {};
  const list = (value: unknown, ret: number, memory: Memory, realloc: CabiContext["realloc"]): void => {
    const bytes = value as Uint8Array;
    const ptr = realloc!(0, 0, 1, bytes.length);
    if (bytes.length !== 0) copyInto(memory.bytes, ptr, bytes);
    memory.view.setUint32(ret + 4, ptr, true);
    memory.view.setUint32(ret + 8, bytes.length, true);
  };
  // Only a stream that copies may read guest memory after the call returns.
  const contents = (stream: Record<symbol, unknown>, memory: Memory, ptr: number, len: number): Uint8Array => {
    const view = new Uint8Array(memory.bytes.buffer, ptr, len);
    return stream[COPIES_LIST_ARGUMENTS] === true ? view : view.slice();
  };
  if (lowerWaits) {
    lower(
      t.InputStream.prototype.blockingRead,
      blocking(input, (s: { blockingRead(n: bigint): unknown }, _m, _a, len) => s.blockingRead(BigInt.asUintN(64, len)), list, true),
    );
    lower(
      t.OutputStream.prototype.blockingWriteAndFlush,
      blocking(
        output,
        (s: { blockingWriteAndFlush(c: Uint8Array): unknown } & Record<symbol, unknown>, m, [ptr, len]) =>
          s.blockingWriteAndFlush(contents(s, m, ptr, len)),
        nothing,
        true,
      ),
    );
    lower(t.OutputStream.prototype.blockingFlush, blocking(output, (s: { blockingFlush(): unknown }) => s.blockingFlush(), nothing, true));
  }
  lower(t.OutputStream.prototype.flush, blocking(output, (s: { flush(): unknown }) => s.flush(), nothing, false));

  lower(t.IoError.prototype.toDebugString, (ctx) => {
    const memory = new Memory(ctx.memory);
    const realloc = ctx.realloc!;
    const table = ctx.resourceTables?.[0] ?? [];
    return function toDebugString(handle: number, ret: number): void {
      const error = objectAt(table, handle) as { toDebugString(): string } | undefined;
      if (error === undefined) throw trap(`Unknown error handle ${handle}`);
      const bytes = encoder.encode(error.toDebugString());
      const ptr = realloc(0, 0, 1, bytes.length);
      if (bytes.length !== 0) memory.bytes.set(bytes, ptr);
      const view = memory.view;
      view.setUint32(ret, ptr, true);
      view.setUint32(ret + 4, bytes.length, true);
    };
  });

  const pollableAt = (table: number[], handle: number): { ready(): boolean; block(): unknown } => {
    const value = objectAt(table, handle);
    if (value === undefined || !(value instanceof t.Pollable)) throw trap(`Unknown pollable handle ${handle}`);
    return value as { ready(): boolean; block(): unknown };
  };

  lower(t.Pollable.prototype.ready, (ctx) => {
    const table = ctx.resourceTables?.[0] ?? [];
    return function ready(handle: number): number {
      return pollableAt(table, handle).ready() ? 1 : 0;
    };
  });

  if (!lowerWaits) return;

  lower(t.Pollable.prototype.block, (ctx) => {
    const table = ctx.resourceTables?.[0] ?? [];
    const block = function block(handle: number): unknown {
      return pollableAt(table, handle).block();
    };
    return asyncEntry ? new Suspending!(block) : block;
  });

  lower(t.poll, (ctx) => {
    const memory = new Memory(ctx.memory);
    const realloc = ctx.realloc!;
    const table = ctx.resourceTables?.[0] ?? [];
    const answer = (ready: Uint32Array, ret: number): void => {
      const ptr = realloc(0, 0, 4, ready.length * 4);
      const view = memory.view;
      for (let i = 0; i < ready.length; i++) view.setUint32(ptr + i * 4, ready[i], true);
      view.setUint32(ret, ptr, true);
      view.setUint32(ret + 4, ready.length, true);
    };
    const pollables = (ptr: number, len: number): never[] => {
      const view = memory.view;
      const list = new Array(len);
      for (let i = 0; i < len; i++) list[i] = pollableAt(table, view.getInt32(ptr + i * 4, true));
      return list as never[];
    };
    if (!asyncEntry) {
      const pollSync = t.poll as (pollables: never[]) => Uint32Array;
      return function poll(ptr: number, len: number, ret: number): void {
        answer(pollSync(pollables(ptr, len)), ret);
      };
    }
    const pollNow = t.pollNow!;
    // Answers at once, without suspending the component, when a pollable is
    // ready and the event loop is not due a turn.
    return new Suspending!(function poll(ptr: number, len: number, ret: number): unknown {
      const ready = pollNow(pollables(ptr, len));
      if (ready instanceof Uint32Array) {
        answer(ready, ret);
        return undefined;
      }
      return ready.then((r) => answer(r, ret));
    });
  });
}
