// wasi:io/poll and wasi:clocks/monotonic-clock through the public API, on the
// in-memory network: socket and stream pollables in each state, poll(), clock
// pollables, and I/O progress under a busy-polling guest.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Notifier, Pollable, poll, useMacrotask } from "../core/pollable.ts";
import {
  accepted,
  bound,
  deferred,
  finish,
  isTrap,
  listening,
  LOCALHOST4,
  macrotasks,
  outcome,
  pair,
  pattern,
  portOf,
  readAll,
  waitUntil,
  withEnv,
  within,
  withPort,
} from "./_memory_env.ts";

const MS = 1_000_000n;

describe("TcpSocket.subscribe()", () => {
  it("TcpSocket.subscribe() is ready at once when unbound, bound, connected and closed", async () => {
    await withEnv({}, async (env) => {
      assert.equal(env.socket().subscribe().ready(), true, "unbound");
      assert.equal((await bound(env)).subscribe().ready(), true, "bound");
      const { client, server } = await pair(env);
      assert.equal(client.socket.subscribe().ready(), true, "connected");
      assert.equal(server.socket.subscribe().ready(), true, "accepted");
      const closed = env.socket();
      closed.startConnect(env.network, withPort(LOCALHOST4, 9));
      await waitUntil(closed.subscribe(), "refused connect");
      assert.equal(outcome(() => closed.finishConnect()), "connection-refused");
      assert.equal(closed.subscribe().ready(), true, "closed");
      await within(closed.subscribe().block(), "block on a closed socket");
    });
  });

  it("TcpSocket.subscribe() in connect-in-progress becomes ready only when the connect resolves", async () => {
    await withEnv({}, async (env) => {
      const listener = await listening(env);
      // Long enough that no pause of a busy machine lets it pass before the checks below.
      env.net.setConnectDelay(500);
      const cases = [[listener.localAddress(), "ok"], [withPort(LOCALHOST4, 9), "connection-refused"]] as const;
      for (const [target, want] of cases) {
        const s = env.socket();
        s.startConnect(env.network, target);
        const pollable = s.subscribe();
        assert.equal(pollable.ready(), false);
        await macrotasks(1);
        assert.equal(pollable.ready(), false, "still pending before the delay");
        await waitUntil(pollable, "connect to resolve");
        assert.equal(pollable.ready(), true);
        assert.equal(outcome(() => s.finishConnect().forEach((stream) => env.own(stream))), want);
      }
    });
  });

  it("TcpSocket.subscribe() in bind-in-progress becomes ready only when an async permission check settles", async () => {
    const answer = deferred<boolean>();
    await withEnv({ permission: () => answer.promise }, async (env) => {
      const s = env.socket();
      s.startBind(env.network, LOCALHOST4);
      const pollable = s.subscribe();
      await macrotasks(2);
      assert.equal(pollable.ready(), false);
      answer.resolve(true);
      await waitUntil(pollable, "bind to resolve");
      s.finishBind();
      assert.equal(pollable.ready(), true, "bound");
    });
  });

  it("TcpSocket.subscribe() in listen-in-progress becomes ready only when an async permission check settles", async () => {
    const answer = deferred<boolean>();
    await withEnv({ permission: (_a, use) => use === "listen" ? answer.promise : true }, async (env) => {
      const s = await bound(env);
      s.startListen();
      const pollable = s.subscribe();
      await macrotasks(2);
      assert.equal(pollable.ready(), false);
      assert.equal(outcome(() => s.finishListen()), "would-block");
      answer.resolve(true);
      await waitUntil(pollable, "listen to resolve");
      s.finishListen();
      assert.equal(s.isListening(), true);
    });
  });

  it("TcpSocket.subscribe() when listening is ready only while a connection is pending", async () => {
    await withEnv({}, async (env) => {
      const listener = await listening(env);
      const pollable = listener.subscribe();
      assert.equal(pollable.ready(), false);
      const c1 = env.socket();
      c1.startConnect(env.network, listener.localAddress());
      const c2 = env.socket();
      c2.startConnect(env.network, listener.localAddress());
      await waitUntil(pollable, "a pending connection");
      await finish(c1, () => env.own(c1.finishConnect()[0]), "c1");
      await finish(c2, () => env.own(c2.finishConnect()[0]), "c2");
      await accepted(env, listener);
      await waitUntil(pollable, "the second pending connection");
      await accepted(env, listener);
      assert.equal(pollable.ready(), false, "nothing pending any more");
    });
  });
});

describe("Stream pollables", () => {
  it("InputStream.subscribe() becomes ready when data arrives and at the end of stream", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const pollable = server.input.subscribe();
      await macrotasks(2);
      assert.equal(pollable.ready(), false);
      client.output.write(new Uint8Array([1]));
      await waitUntil(pollable, "data");
      assert.deepEqual([...server.input.read(10n)], [1]);
      assert.equal(pollable.ready(), false, "drained");
      client.socket.shutdown("send");
      await waitUntil(pollable, "end of stream");
      assert.equal(outcome(() => server.input.read(10n)), "closed");
    });
  });

  it("InputStream.subscribe() becomes ready after a connection reset", async () => {
    await withEnv({}, async (env) => {
      const { server } = await pair(env);
      const pollable = server.input.subscribe();
      env.net.reset();
      await waitUntil(pollable, "reset");
      assert.equal(outcome(() => server.input.read(1n)), "last-operation-failed");
    });
  });

  it("OutputStream.subscribe() is ready while check-write allows bytes and not once they are used up", async () => {
    await withEnv({ network: { windowSize: 0 } }, async (env) => {
      const { client, server } = await pair(env);
      const pollable = client.output.subscribe();
      assert.equal(pollable.ready(), true);
      client.output.write(new Uint8Array([1, 2]));
      assert.equal(client.output.checkWrite(), 65534n, "the rest of the budget stays while it drains");
      assert.equal(pollable.ready(), true);
      client.output.write(new Uint8Array(65534));
      assert.equal(client.output.checkWrite(), 0n);
      assert.equal(pollable.ready(), false);
      const reading = readAll(server.input, 65536);
      await waitUntil(pollable, "drain");
      assert.equal(client.output.checkWrite(), 65536n);
      assert.deepEqual([...(await reading).subarray(0, 2)], [1, 2]);
      client.socket.shutdown("send");
      assert.equal(pollable.ready(), true, "a closed output is ready");
    });
  });
});

describe("poll()", () => {
  it("poll() returns the indices of the ready pollables as a Uint32Array", async () => {
    await withEnv({}, async (env) => {
      const { server } = await pair(env);
      const clock = env.wasi.monotonicClock;
      const now = clock.subscribeDuration(0n);
      const list = [clock.subscribeDuration(10_000n * MS), now, server.input.subscribe(), now, env.socket().subscribe()];
      const ready = await within(env.wasi.poll.poll(list), "poll");
      assert.ok(ready instanceof Uint32Array);
      assert.deepEqual([...ready], [1, 3, 4]);
    });
  });

  it("poll() resolves as soon as one pollable becomes ready", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      const list = [env.wasi.monotonicClock.subscribeDuration(10_000n * MS), server.input.subscribe()];
      const started = performance.now();
      const polling = env.wasi.poll.poll(list);
      await macrotasks(2);
      client.output.write(new Uint8Array([1]));
      assert.deepEqual([...await within(polling, "poll")], [1]);
      assert.ok(performance.now() - started < 5000, "poll waited for the clock");
    });
  });

  it("poll() returns the clock's index when it fires before any I/O", async () => {
    await withEnv({}, async (env) => {
      const { server } = await pair(env);
      const list = [server.input.subscribe(), env.wasi.monotonicClock.subscribeDuration(5n * MS)];
      assert.deepEqual([...await within(env.wasi.poll.poll(list), "poll")], [1]);
    });
  });

  it("poll() traps (no payload) on an empty list", async () => {
    await withEnv({}, async (env) => {
      await assert.rejects(env.wasi.poll.poll([]), (e) => isTrap(e));
    });
  });

  it("poll() throws TypeError for an entry that is not a Pollable or a list that is not an array", async () => {
    await withEnv({}, async (env) => {
      const ok = env.wasi.monotonicClock.subscribeDuration(0n);
      await assert.rejects(env.wasi.poll.poll([ok, {} as Pollable]), TypeError);
      await assert.rejects(env.wasi.poll.poll([null as unknown as Pollable]), TypeError);
      await assert.rejects(env.wasi.poll.poll(ok as unknown as Pollable[]), TypeError);
      assert.equal(env.wasi.poll.Pollable, Pollable);
    });
  });

  it("Pollable.block() returns at once for a ready pollable", async () => {
    await withEnv({}, async (env) => {
      await within(env.socket().subscribe().block(), "block on an unbound socket");
      await within(env.wasi.monotonicClock.subscribeDuration(0n).block(), "block on a zero clock");
    });
  });
});

describe("monotonicClock", () => {
  it("monotonicClock.subscribeDuration(0n) is ready at once", async () => {
    await withEnv({}, (env) => {
      assert.equal(env.wasi.monotonicClock.subscribeDuration(0n).ready(), true);
    });
  });

  it("monotonicClock.subscribeDuration() of 20 ms is not ready at first and ready after block()", async () => {
    await withEnv({}, async (env) => {
      const clock = env.wasi.monotonicClock;
      const started = clock.now();
      const p = clock.subscribeDuration(20n * MS);
      // Not a fixed false: a pause of 20 ms right here (GC, a busy machine)
      // would make the clock due already.
      assert.equal(p.ready(), clock.now() - started >= 20n * MS);
      assert.equal(clock.subscribeDuration(10_000n * MS).ready(), false, "a 10 s clock is not ready at first");
      await within(p.block(), "20 ms clock");
      assert.equal(p.ready(), true);
      assert.ok(clock.now() - started >= 20n * MS - clock.resolution(), "woke before the deadline");
    });
  });

  it("monotonicClock.subscribeInstant() is ready at once for a past instant and at the instant otherwise", async () => {
    await withEnv({}, async (env) => {
      const clock = env.wasi.monotonicClock;
      assert.equal(clock.subscribeInstant(0n).ready(), true);
      const at = clock.now() + 15n * MS;
      const p = clock.subscribeInstant(at);
      assert.equal(p.ready(), clock.now() >= at);
      assert.equal(clock.subscribeInstant(clock.now() + 10_000n * MS).ready(), false, "an instant 10 s ahead is not ready");
      await within(p.block(), "instant");
      assert.ok(clock.now() >= at - clock.resolution());
    });
  });

  it("monotonicClock.now() never goes back and resolution() is positive", async () => {
    await withEnv({}, (env) => {
      const clock = env.wasi.monotonicClock;
      let last = clock.now();
      for (let i = 0; i < 1000; i++) {
        const t = clock.now();
        assert.ok(t >= last);
        last = t;
      }
      assert.equal(typeof last, "bigint");
      assert.ok(clock.resolution() > 0n);
    });
  });

  it("monotonicClock.subscribeDuration() and subscribeInstant() throw TypeError for values that are not u64 bigints", async () => {
    await withEnv({}, (env) => {
      const clock = env.wasi.monotonicClock;
      for (const bad of [1, -1n, 1n << 64n, "1", undefined]) {
        assert.throws(() => clock.subscribeDuration(bad as bigint), TypeError);
        assert.throws(() => clock.subscribeInstant(bad as bigint), TypeError);
      }
      assert.equal(clock.subscribeDuration((1n << 64n) - 1n).ready(), false, "u64 max is accepted");
    });
  });
});

describe("Busy polling", () => {
  // Partial writes move one piece per setTimeout(0), so the data arrives only
  // if the busy loop lets macrotasks run.
  const TOTAL = 50_000;

  it("poll() with a zero-duration clock in a busy loop lets the I/O progress", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      env.net.setMaxWriteChunk(1000);
      const data = pattern(TOTAL, 23);
      client.output.write(data);
      const input = server.input.subscribe();
      const parts: Uint8Array[] = [];
      let got = 0;
      let iterations = 0;
      const started = performance.now();
      while (got < TOTAL) {
        iterations++;
        assert.ok(iterations < 1_000_000, `no data after ${iterations} polls`);
        assert.ok(performance.now() - started < 3000, `only ${got} bytes after 3 s of busy polling`);
        const ready = await env.wasi.poll.poll([input, env.wasi.monotonicClock.subscribeDuration(0n)]);
        if (ready[0] === 0) {
          const chunk = server.input.read(65536n);
          parts.push(chunk);
          got += chunk.length;
        }
      }
      const all = new Uint8Array(TOTAL);
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      assert.deepEqual(all, data);
    });
  });

  it("Pollable.block() on a zero-duration clock in a busy loop lets the I/O progress", async () => {
    await withEnv({}, async (env) => {
      const { client, server } = await pair(env);
      env.net.setMaxWriteChunk(1000);
      client.output.write(pattern(TOTAL, 29));
      const input = server.input.subscribe();
      let got = 0;
      const started = performance.now();
      while (got < TOTAL) {
        assert.ok(performance.now() - started < 3000, `only ${got} bytes after 3 s of busy polling`);
        await env.wasi.monotonicClock.subscribeDuration(0n).block();
        if (input.ready()) got += server.input.read(65536n).length;
      }
      assert.equal(got, TOTAL);
    });
  });

  it("poll() yields to a slow event loop less often while a stream is ready than while only clocks are", async () => {
    // A macrotask that costs ~5 ms, as Deno's setTimeout(0) costs ~2 ms.
    let yields = 0;
    useMacrotask((cb) => {
      yields++;
      setTimeout(cb, 5);
    });
    try {
      const yieldsIn = async (pollable: Pollable): Promise<number> => {
        yields = 0;
        const end = performance.now() + 300;
        while (performance.now() < end) await poll([pollable]);
        return yields;
      };
      const spinning = await yieldsIn(new Pollable({ ready: () => true, deadline: 0 }));
      const working = await yieldsIn(new Pollable({ ready: () => true, notifier: new Notifier() }));
      assert.ok(spinning >= 15, `a busy poll on a clock yields every 2 ms: ${spinning} yields in 300 ms`);
      assert.ok(working * 3 <= spinning, `a ready stream yields far less often: ${working} against ${spinning}`);
    } finally {
      useMacrotask((cb) => setTimeout(cb, 0));
    }
  });

  it("poll() with a zero-duration clock in a busy loop lets a connect and an accept complete", async () => {
    await withEnv({}, async (env) => {
      const listener = await listening(env);
      const s = env.socket();
      s.startConnect(env.network, listener.localAddress());
      const zero = (): Pollable => env.wasi.monotonicClock.subscribeDuration(0n);
      const started = performance.now();
      while (!listener.subscribe().ready() || !s.subscribe().ready()) {
        assert.ok(performance.now() - started < 3000, "the connect never completed");
        await env.wasi.poll.poll([s.subscribe(), listener.subscribe(), zero()]);
      }
      const [input, output] = s.finishConnect();
      env.own(input);
      env.own(output);
      const server = await accepted(env, listener);
      assert.equal(server.socket.remoteAddress().val.port, portOf(s));
    });
  });
});
