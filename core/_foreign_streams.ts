// Streams of another host. A guest that prints gets its stdout from whatever
// serves wasi:cli (preview2-shim, say), and jco checks that stream against the
// class of wasi:io it was given: this package's. The stream classes accept
// such streams as their own kind, so jco keeps them and calls their methods;
// they never reach this package's code, which checks its own brand.

import { noteForeignStream } from "./_cabi.ts";

const INPUT_METHODS = ["read", "blockingRead", "skip", "blockingSkip", "subscribe"] as const;
const OUTPUT_METHODS = ["checkWrite", "write", "blockingWriteAndFlush", "flush", "blockingFlush", "subscribe"] as const;

/**
 * Whether `value` is another host's `wasi:io` stream of the given kind: an
 * object with every method of that resource.
 *
 * @param value Anything.
 * @param kind Which resource.
 * @returns Whether it has the methods.
 */
export function isForeignStream(value: unknown, kind: "input" | "output"): boolean {
  if (typeof value !== "object" || value === null) return false;
  const methods = kind === "input" ? INPUT_METHODS : OUTPUT_METHODS;
  const record = value as Record<string, unknown>;
  for (const name of methods) {
    if (typeof record[name] !== "function") return false;
  }
  // jco checks a stream right before it puts it in a table: a lowering may
  // be handed its handle next.
  noteForeignStream(kind, value);
  return true;
}
