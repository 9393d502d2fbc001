// Host side of the test-only `wasi-tcp:guests/hashing` interface
// (tests/guests/guests.wit), which the echo client imports so that hashing
// 16 MiB does not run in QuickJS. The transpiled client maps
// `wasi-tcp:guests/*` to this module.

import { createHash, type Hash } from "node:crypto";

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
}

// Hashing reads the bytes before update() returns: the transpiled client
// lends it guest memory instead of copying it, as the raw client hashes what
// it receives without a copy.
Object.defineProperty(Sha256.prototype, Symbol.for("wasi-tcp.copiesListArguments"), { value: true });

/** `wasi-tcp:guests/hashing`, as jco imports it. */
export const hashing: { Sha256: typeof Sha256 } = { Sha256 };
