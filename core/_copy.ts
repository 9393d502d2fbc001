// Byte copies to or from shared memory (the synchronous mode's rings). V8
// copies between a SharedArrayBuffer and other memory with relaxed atomics,
// a word at a time when both ends share their alignment modulo 8 and a byte
// at a time otherwise: 64 KiB copies measured 41 against 276 ms per GiB here
// (Node 20 and Deno 2.9 alike; Bun's copies do not care). Stream offsets are
// arbitrary, so a misaligned copy goes through a scratch buffer placed with
// the shared end's alignment: one cheap ordinary copy plus one word-wise one.

const PIECE = 65536;
const scratch = new Uint8Array(PIECE + 8);
// Bun copies shared memory with memmove whatever the alignment.
const wordWise = (globalThis as { Bun?: unknown }).Bun === undefined;

function isShared(bytes: Uint8Array): boolean {
  return typeof SharedArrayBuffer === "function" && bytes.buffer instanceof SharedArrayBuffer;
}

/**
 * `dst.set(src, at)`, quick when one side is shared memory.
 *
 * @param dst Where to copy to.
 * @param at The offset in `dst`.
 * @param src What to copy.
 */
export function copyInto(dst: Uint8Array, at: number, src: Uint8Array): void {
  const n = src.length;
  if (!wordWise || n < 64 || ((dst.byteOffset + at - src.byteOffset) & 7) === 0) {
    dst.set(src, at);
    return;
  }
  const toShared = isShared(dst);
  if (!toShared && !isShared(src)) {
    dst.set(src, at);
    return;
  }
  for (let done = 0; done < n; done += PIECE) {
    const k = Math.min(PIECE, n - done);
    const lead = (toShared ? dst.byteOffset + at + done : src.byteOffset + done) & 7;
    const via = scratch.subarray(lead, lead + k);
    via.set(src.subarray(done, done + k));
    dst.set(via, at + done);
  }
}

/**
 * A fresh copy of `src`, quick when it is a view of shared memory.
 *
 * @param src What to copy.
 * @returns The copy.
 */
export function copyOf(src: Uint8Array): Uint8Array {
  const copy = new Uint8Array(src.length);
  copyInto(copy, 0, src);
  return copy;
}
