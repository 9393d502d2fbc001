// sync/_protocol.ts: the messages of the synchronous mode's control block.
// Most carry no u64, and those are encoded and decoded without a replacer or
// reviver; the ones that do must still arrive as bigints.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Control } from "../sync/_protocol.ts";

describe("Control", () => {
  it("Control.read() returns u64 values as bigints, at any depth, next to plain values", () => {
    const control = new Control();
    const message = { op: "call", h: 3, a: ["setKeepAliveIdleTime", 7_200_000_000_000n], n: [{ x: 2n ** 64n - 1n }] };
    control.write(message);
    assert.deepEqual(control.read(), message);
  });

  it("Control.read() returns a message without u64 values unchanged, a string that is the bigint marker included", () => {
    const control = new Control();
    // `"$n"` in the JSON text sends the message through the reviver, which
    // must leave a string alone.
    const message = { op: "call", h: 4, a: ["startBind", { tag: "ipv4", val: { port: 0, address: [127, 0, 0, 1] } }], m: "$n" };
    control.write(message);
    assert.deepEqual(control.read(), message);
    control.write({ v: [1, 2], r: 0, f: 5 });
    assert.deepEqual(control.read(), { v: [1, 2], r: 0, f: 5 });
  });

  it("Control.write() throws for a message that does not fit, and the previous message stays readable", () => {
    const control = new Control();
    control.write({ v: 1n });
    assert.throws(() => control.write({ m: "x".repeat(1 << 20) }), /does not fit the control block/);
    assert.deepEqual(control.read(), { v: 1n });
  });
});
