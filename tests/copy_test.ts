// core/_copy.ts: copies to and from shared memory that go through a scratch
// buffer when the two ends do not share their alignment.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyInto } from "../core/_copy.ts";

function filled(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

describe("copyInto()", () => {
  it("copyInto() copies exactly the bytes of dst.set(), into and out of shared memory, at every alignment and across scratch pieces", () => {
    const shared = new Uint8Array(new SharedArrayBuffer(300_000));
    for (const n of [0, 1, 63, 64, 1000, 65536, 65537, 200_000]) {
      for (let srcLead = 0; srcLead < 8; srcLead += 3) {
        for (let at = 0; at < 8; at++) {
          const src = filled(n + srcLead, n + at).subarray(srcLead);
          shared.fill(0xaa);
          copyInto(shared, at, src);
          assert.deepEqual(shared.subarray(at, at + n), src, `into shared: n ${n}, src +${srcLead}, at ${at}`);
          assert.equal(shared[at + n], 0xaa, "nothing past the end");
          if (at > 0) assert.equal(shared[at - 1], 0xaa, "nothing before the start");
          const back = new Uint8Array(n + 16).fill(0x55);
          copyInto(back, srcLead, shared.subarray(at, at + n));
          assert.deepEqual(back.subarray(srcLead, srcLead + n), src, `out of shared: n ${n}, at ${at}`);
          assert.equal(back[srcLead + n], 0x55);
        }
      }
    }
  });

  it("copyInto() between ordinary arrays is dst.set()", () => {
    const dst = new Uint8Array(100).fill(1);
    copyInto(dst, 3, filled(90, 2).subarray(1));
    assert.deepEqual(dst.subarray(3, 92), filled(90, 2).subarray(1));
  });
});
