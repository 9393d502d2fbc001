// Host side of the test-only `wasi-tcp:guests/hashing` interface
// (tests/guests/guests.wit), which the echo client imports so that hashing
// 16 MiB does not run in QuickJS. The transpiled client maps
// `wasi-tcp:guests/*` to this module.

import { createHash, type Hash } from "node:crypto";
import { forgetRep, giveReps, objectOfRep, T_FLAG } from "../core/_reps.ts";

/** `wasi-tcp:guests/hashing.sha256`. */
export class Sha256 {
  #hash: Hash = createHash("sha256");

  /**
   * Adds bytes.
   *
   * @param bytes The next bytes: a view of guest memory, read before this
   * returns (scripts/transpile.ts lends it, see the mark below).
   */
  update(bytes: Uint8Array): void {
    this.#hash.update(bytes);
  }

  /**
   * The digest of everything added.
   *
   * @returns Lowercase hex.
   */
  digest(): string {
    return this.#hash.digest("hex");
  }

  /** Drops the hash (and its rep, see below). */
  [Symbol.dispose](): void {
    forgetRep(this);
  }
}

// Hashing reads the bytes before update() returns: the transpiled client
// lends it guest memory instead of copying it, as the raw client hashes what
// it receives without a copy.
Object.defineProperty(Sha256.prototype, Symbol.for("wasi-tcp.copiesListArguments"), { value: true });

// With `--import-bindings hybrid` (scripts/transpile.ts), update() is called
// straight from the wasm, as this package's own hot functions are, so that
// the benchmark's hashing costs every host the same and little (the raw
// client hashes what it receives as is).
giveReps(Sha256);
Object.defineProperty(Sha256.prototype.update, Symbol.for("cabiLower"), {
  value: (ctx: { memory: { buffer: ArrayBufferLike }; resourceTables: number[][] }) => {
    const table = ctx.resourceTables[0];
    return (handle: number, ptr: number, len: number): void => {
      const hash = objectOfRep(table[(handle << 1) + 1] & ~T_FLAG);
      if (!(hash instanceof Sha256)) throw new Error(`Unknown sha256 handle ${handle}`);
      hash.update(new Uint8Array(ctx.memory.buffer, ptr, len));
    };
  },
});

/** `wasi-tcp:guests/hashing`, as jco imports it. */
export const hashing: { Sha256: typeof Sha256 } = { Sha256 };
