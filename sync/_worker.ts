// The sockets worker of the synchronous mode: it owns the real sockets (the
// asynchronous core on this runtime's backend) and serves the main thread's
// calls from the control block. Each stream gets a pump that moves bytes
// between the core's stream and its ring, so the main thread reads, checks
// and writes without calling here.

import type { TcpBackend } from "../core/backend.ts";
import { NetworkError, StreamError } from "../core/errors.ts";
import type { Pollable } from "../core/pollable.ts";
import { type InputStream, type OutputStream, WRITE_LENT } from "../core/streams.ts";
import type { TcpSocket } from "../core/tcp_socket.ts";
import { createWasiSockets } from "../core/wasi_sockets.ts";
import {
  type Answer,
  type Call,
  Control,
  EVENTS,
  HANDLES,
  HEARTBEAT,
  HEARTBEAT_MS,
  MAIN_WAITS,
  READY,
  REQUEST,
  RESPONSE,
  STATE,
} from "./_protocol.ts";
import { DROPPED, ENDED, Ring, SHUTDOWN_SEND } from "./_ring.ts";

/** What the main thread gives the worker. */
export interface WorkerSetup {
  /** The control block's memory. */
  control: SharedArrayBuffer;
  /** Where new rings are sent to the main thread. */
  port: { postMessage(message: unknown): void; unref?(): void };
  /** `"native"` (default) or `"node"`. */
  backend?: "native" | "node";
  /** As WasiSocketsOptions.receiveWindow. */
  receiveWindow?: number;
  /** As WasiSocketsOptions.maxAcceptQueue. */
  maxAcceptQueue?: number;
  /**
   * Whether the main thread has a permission hook. The hook runs there; each
   * call brings its verdict, and the core consults it in its usual order
   * (after the state and argument checks). Accepted connections are screened
   * by the main thread.
   */
  permission?: boolean;
}

/** A new stream as the main thread learns of it: handle and ring number. */
export type StreamRef = [handle: number, ring: number];

// The socket methods a call may name, beyond those with their own operation.
const SOCKET_METHODS = new Set([
  "startBind",
  "finishBind",
  "startConnect",
  "startListen",
  "finishListen",
  "localAddress",
  "remoteAddress",
  "isListening",
  "addressFamily",
  "setListenBacklogSize",
  "keepAliveEnabled",
  "setKeepAliveEnabled",
  "keepAliveIdleTime",
  "setKeepAliveIdleTime",
  "keepAliveInterval",
  "setKeepAliveInterval",
  "keepAliveCount",
  "setKeepAliveCount",
  "hopLimit",
  "setHopLimit",
  "receiveBufferSize",
  "setReceiveBufferSize",
  "sendBufferSize",
  "setSendBufferSize",
]);

interface SocketEntry {
  kind: "socket";
  socket: TcpSocket;
  output?: OutputPump;
  // The socket's readiness depends on its state alone, so one pollable
  // serves every pollable the main thread makes of it: subscribing and
  // dropping there cost no call.
  pollable?: Pollable;
}

type Entry =
  | SocketEntry
  | { kind: "input"; pump: InputPump }
  | { kind: "output"; pump: OutputPump };

async function chooseBackend(which: WorkerSetup["backend"]): Promise<TcpBackend> {
  if (which === "node") return (await import("../runtimes/node.ts")).createNodeBackend();
  return (await import("../mod.ts")).runtimeBackend();
}

function failureOf(e: unknown): { code: string; message: string } {
  if (e instanceof StreamError && e.payload.tag === "last-operation-failed") {
    return { code: e.payload.val.code ?? "", message: e.payload.val.toDebugString() };
  }
  return { code: "", message: e instanceof Error ? e.message : String(e) };
}

function isClosed(e: unknown): boolean {
  return e instanceof StreamError && e.payload.tag === "closed";
}

// Moves what the core's input stream receives into the ring, while the ring
// has room: the ring's size is the main thread's share of the receive window.
class InputPump {
  readonly ring: Ring;
  readonly #stream: InputStream;
  readonly #events: () => void;
  readonly done: Promise<void>;
  #dropped = false;

  constructor(stream: InputStream, ring: Ring, events: () => void) {
    this.#stream = stream;
    this.ring = ring;
    this.#events = events;
    this.done = this.#run();
  }

  async #run(): Promise<void> {
    const ring = this.ring;
    const stream = this.#stream;
    const ready = stream.subscribe();
    while (!this.#dropped) {
      const space = ring.space();
      if (space === 0) {
        const seen = ring.taken();
        if (ring.space() === 0) await ring.changed("taken", seen);
        continue;
      }
      let chunk: Uint8Array;
      try {
        chunk = stream.read(BigInt(space));
      } catch (e) {
        if (isClosed(e)) ring.setFlags(ENDED);
        else {
          const { code, message } = failureOf(e);
          ring.fail(code, message);
        }
        this.#events();
        return;
      }
      if (chunk.length === 0) {
        await ready.block();
        continue;
      }
      ring.put(chunk);
      this.#events();
    }
  }

  drop(): Promise<void> {
    this.#dropped = true;
    this.#stream[Symbol.dispose]();
    // Wakes a wait for room.
    this.ring.discard(0);
    return this.done;
  }
}

// Moves what the main thread wrote into the core's output stream as the core
// takes it; carries out flushes and a shutdown(send) in order with the bytes.
// Exported for the tests only.
export class OutputPump {
  readonly ring: Ring;
  readonly #stream: OutputStream;
  readonly #socket: TcpSocket;
  readonly #events: () => void;
  readonly done: Promise<void>;
  #dropped = false;

  constructor(stream: OutputStream, socket: TcpSocket, ring: Ring, events: () => void) {
    this.#stream = stream;
    this.#socket = socket;
    this.ring = ring;
    this.#events = events;
    this.done = this.#run();
  }

  #fail(e: unknown): void {
    if (isClosed(e)) this.ring.setFlags(ENDED);
    else {
      const { code, message } = failureOf(e);
      this.ring.fail(code, message);
    }
    this.#events();
  }

  async #run(): Promise<void> {
    const ring = this.ring;
    const stream = this.#stream;
    const room = stream.subscribe();
    let shut = false;
    for (;;) {
      const bell = ring.doorbell();
      let available = ring.available();
      let requested = 0;
      let flags = 0;
      if (available === 0) {
        // The main thread puts bytes in the ring before it asks for a flush
        // or a shutdown: counting again after reading the requests finds
        // every byte they follow, which then goes out before they are served.
        requested = ring.flushRequested();
        flags = ring.flags();
        available = ring.available();
      }
      if (available > 0) {
        let budget: number;
        try {
          budget = Number(stream.checkWrite());
        } catch (e) {
          this.#fail(e);
          break;
        }
        if (budget === 0) {
          await room.block();
          continue;
        }
        try {
          // Lent: the core copies what it keeps (where the backend takes
          // lent bytes, only what the OS does not take at once, or into its
          // pooled buffers), and the ring's room is free again at once.
          const view = ring.view(Math.min(available, budget));
          stream[WRITE_LENT](view);
          ring.discard(view.length);
        } catch (e) {
          this.#fail(e);
          break;
        }
        this.#events();
        continue;
      }
      if (requested !== ring.flushDone()) {
        try {
          await stream.blockingFlush();
        } catch (e) {
          this.#fail(e);
          break;
        }
        ring.completeFlush(requested);
        this.#events();
        continue;
      }
      if (flags & SHUTDOWN_SEND && !shut) {
        shut = true;
        try {
          this.#socket.shutdown("send");
        } catch {
          // The connection is gone; the main thread already reports closed.
        }
        continue;
      }
      if (flags & DROPPED) {
        stream[Symbol.dispose]();
        return;
      }
      await ring.changed("doorbell", bell);
    }
    // After a failure nothing more goes out; wait for the drop to free the ring.
    while (!(ring.flags() & DROPPED)) await ring.changed("doorbell", ring.doorbell());
    stream[Symbol.dispose]();
  }

  /** Shuts down the send side once the ring's bytes are out. */
  shutdownSend(): void {
    // Once the stream is dropped its ring may serve another connection, and
    // the drop sends the FIN itself after the ring's last byte: nothing to do.
    if (!this.#dropped) this.ring.setFlags(SHUTDOWN_SEND);
  }

  drop(): Promise<void> {
    this.#dropped = true;
    this.ring.setFlags(DROPPED);
    return this.done;
  }
}

/**
 * Runs the worker: sets up the backend, reports ready, then answers calls
 * until the thread ends.
 *
 * @param setup The shared memory and options from the main thread.
 * @returns Never resolves.
 * @throws {Error} When the backend cannot be set up (the bootstrap reports it).
 * @example
 * ```ts ignore
 * await serve(workerData);
 * ```
 */
export async function serve(setup: WorkerSetup): Promise<void> {
  const control = new Control(setup.control);
  const words = control.words;
  let verdict = true;
  const wasi = createWasiSockets({
    backend: await chooseBackend(setup.backend),
    permission: setup.permission ? (_address, use) => use === "accept" || verdict : undefined,
    // Every read result is copied into a ring at once.
    lendReadBuffers: true,
    receiveWindow: setup.receiveWindow,
    maxAcceptQueue: setup.maxAcceptQueue,
  });
  const network = wasi.instanceNetwork.instanceNetwork();
  const entries = new Map<number, Entry>();
  // Both threads give out handles (the main thread for the sockets it
  // creates without a call), from one shared count.
  const add = (entry: Entry): number => {
    const handle = Atomics.add(words, HANDLES, 1) + 1;
    entries.set(handle, entry);
    return handle;
  };

  const wake = (): void => {
    Atomics.add(words, EVENTS, 1);
    if (Atomics.load(words, MAIN_WAITS) !== 0) Atomics.notify(words, EVENTS);
  };
  // A stream's news goes out once per turn of the event loop: the OS hands
  // over a burst of reads (64 KiB each on node:net) in one turn, and waking
  // the main thread once for all of them, not once each, spares both threads
  // a sleep and a wake-up per chunk. A socket's readiness (a connect or an
  // accept the main thread waits for) goes out at once.
  // Deno settles every op that completed in one call, so the microtasks that
  // follow it already come after the whole burst; its setImmediate waits for
  // the next turn of the loop on top. Sync echo pairs on Deno, 256 MiB,
  // interleaved medians: QuickJS 523 to 489 ms, hand-written 500 to 447 ms.
  // On Node a microtask gained nothing, and on Bun it lost 5%.
  const later: (task: () => void) => void = "Deno" in globalThis ? queueMicrotask : setImmediate;
  let eventsDue = false;
  const sendEvents = (): void => {
    eventsDue = false;
    wake();
  };
  const events = (): void => {
    if (eventsDue) return;
    eventsDue = true;
    later(sendEvents);
  };

  // Rings are numbered; the main thread keeps every ring it was sent, so a
  // reused ring costs no message.
  const rings: Ring[] = [];
  const free: number[] = [];
  const ringNumbers = new Map<Ring, number>();
  const takeRing = (): number => {
    const reused = free.pop();
    if (reused !== undefined) return reused;
    const ring = Ring.create();
    rings.push(ring);
    ringNumbers.set(ring, rings.length - 1);
    setup.port.postMessage({ ring: rings.length - 1, buffer: ring.buffer });
    return rings.length - 1;
  };
  const releaseRing = (ring: Ring): void => {
    ring.reset();
    free.push(ringNumbers.get(ring)!);
  };

  const open = (socketEntry: SocketEntry, input: InputStream, output: OutputStream): [StreamRef, StreamRef] => {
    const inRing = takeRing();
    const outRing = takeRing();
    const inPump = new InputPump(input, rings[inRing], events);
    const outPump = new OutputPump(output, socketEntry.socket, rings[outRing], events);
    socketEntry.output = outPump;
    return [
      [add({ kind: "input", pump: inPump }), inRing],
      [add({ kind: "output", pump: outPump }), outRing],
    ];
  };

  const socketOf = (handle: number): SocketEntry => {
    const entry = entries.get(handle);
    if (entry?.kind !== "socket") throw new Error(`No socket with handle ${handle}`);
    return entry;
  };

  const drop = (handles: number[]): void => {
    for (const handle of handles) {
      const entry = entries.get(handle);
      entries.delete(handle);
      switch (entry?.kind) {
        case "socket":
          entry.socket[Symbol.dispose]();
          break;
        case "input":
        case "output": {
          const pump = entry.pump;
          pump.drop().then(() => releaseRing(pump.ring), () => {});
          break;
        }
      }
    }
  };

  const handle = (call: Call): unknown => {
    switch (call.op) {
      case "noop":
        return undefined;
      case "call": {
        const { socket } = socketOf(call.h);
        const [method, ...args] = call.a as [string, ...unknown[]];
        if (!SOCKET_METHODS.has(method)) throw new Error(`No socket method ${method}`);
        if (method === "startBind" || method === "startConnect") args.unshift(network);
        return (socket as unknown as Record<string, (...a: unknown[]) => unknown>)[method](...args);
      }
      case "finishConnect": {
        const entry = socketOf(call.h);
        const [input, output] = entry.socket.finishConnect();
        return open(entry, input, output);
      }
      case "accept": {
        const [socket, input, output] = socketOf(call.h).socket.accept();
        const entry: SocketEntry = { kind: "socket", socket };
        const handle = add(entry);
        return [handle, ...open(entry, input, output)];
      }
      case "ready": {
        // Handles of sockets whose pollables the main thread polls.
        const [handles, arm] = call.a as [number[], boolean];
        const ready: number[] = [];
        for (const h of handles) {
          const entry = entries.get(h);
          if (entry?.kind !== "socket") throw new Error(`Polled a pollable of a dropped socket (${h})`);
          const pollable = entry.pollable ??= entry.socket.subscribe();
          if (pollable.ready()) ready.push(h);
          else if (arm) armed(h, pollable);
        }
        return ready;
      }
      case "shutdown": {
        const entry = socketOf(call.h);
        const type = call.a[0] as "receive" | "send" | "both";
        // Checks the state (invalid-state unless connected) without acting.
        entry.socket.remoteAddress();
        if (type !== "send") entry.socket.shutdown("receive");
        if (type !== "receive") {
          if (entry.output) entry.output.shutdownSend();
          else entry.socket.shutdown("send");
        }
        return undefined;
      }
      default:
        throw new Error(`Unknown operation ${call.op}`);
    }
  };

  // A pollable the main thread waits on wakes it once when ready.
  const arming = new Set<number>();
  const armed = (h: number, pollable: Pollable): void => {
    if (arming.has(h)) return;
    arming.add(h);
    pollable.block().then(() => {
      arming.delete(h);
      if (entries.get(h)?.kind !== "socket") return;
      // A call handled since the pollable resolved may have taken the
      // readiness (accept); the main thread then asks again anyway.
      if (pollable.ready()) control.fire(h);
      else armed(h, pollable);
      wake();
    });
  };

  const answer = (e: unknown): Answer => {
    if (e instanceof NetworkError) return { e: e.payload, m: e.message };
    if (e instanceof TypeError) return { y: e.message };
    return { t: e instanceof Error ? e.message : String(e) };
  };

  // The interval both proves the worker alive and keeps its event loop running.
  setInterval(() => Atomics.add(words, HEARTBEAT, 1), HEARTBEAT_MS);
  Atomics.store(words, STATE, READY);
  Atomics.notify(words, STATE);

  // The main thread may call as soon as READY is set: start from the initial 0.
  let seen = 0;
  for (;;) {
    const wait = Atomics.waitAsync(words, REQUEST, seen);
    if (wait.async) await wait.value;
    // Bun's waitAsync sometimes resolves with nothing new.
    const request = Atomics.load(words, REQUEST);
    if (request === seen) continue;
    seen = request;
    let reply: Answer & { r?: 0 | 1; f?: number };
    try {
      const call = control.read<Call>();
      if (call.c) {
        for (const [h, family] of call.c) {
          entries.set(h, {
            kind: "socket",
            socket: wasi.tcpCreateSocket.createTcpSocket(family as "ipv4" | "ipv6"),
          });
        }
      }
      if (call.d) drop(call.d);
      verdict = call.p ?? true;
      reply = { v: handle(call) };
      // After a call on a socket, its readiness rides along, and the worker
      // watches a socket that is not ready: the main thread's next poll of it
      // then needs no call of its own.
      const entry = call.h !== 0 && call.op !== "ready" ? entries.get(call.h) : undefined;
      if (entry?.kind === "socket") {
        const pollable = entry.pollable ??= entry.socket.subscribe();
        if (pollable.ready()) reply.r = 1;
        else {
          reply.r = 0;
          reply.f = control.fires(call.h);
          armed(call.h, pollable);
        }
      }
    } catch (e) {
      reply = answer(e);
    }
    try {
      control.write(reply);
    } catch (e) {
      control.write(answer(e));
    }
    Atomics.store(words, RESPONSE, seen);
    Atomics.notify(words, RESPONSE);
  }
}
