// Each backend turns its runtime's error shapes into WIT error codes in its own
// file. These are the shapes the runtimes produce (runtime-facts.md): Node
// `{ code, errno: -98, syscall }`, Deno `Deno.errors.*` with `code` (and a
// class name), Bun `{ code, errno: 98 }` or a bare errno from bun:ffi.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { errnoToNetworkError, toNetworkError } from "../runtimes/_node_errors.ts";
import { denoNetworkError } from "../runtimes/_deno_errors.ts";
import { bunError, errnoError } from "../runtimes/_bun_errors.ts";

// [OS code, Linux errno, WIT code] for the codes the issue names.
const TABLE: Array<[string, number, string]> = [
  ["ECONNREFUSED", 111, "connection-refused"],
  ["ECONNRESET", 104, "connection-reset"],
  ["ETIMEDOUT", 110, "timeout"],
  ["EHOSTUNREACH", 113, "remote-unreachable"],
  ["ENETUNREACH", 101, "remote-unreachable"],
  ["EADDRINUSE", 98, "address-in-use"],
  ["EADDRNOTAVAIL", 99, "address-not-bindable"],
  ["EMFILE", 24, "new-socket-limit"],
  ["ENFILE", 23, "new-socket-limit"],
];

// Deno's error classes for the same conditions, where Deno has one.
const DENO_NAMES: Record<string, string> = {
  ECONNREFUSED: "ConnectionRefused",
  ECONNRESET: "ConnectionReset",
  ETIMEDOUT: "TimedOut",
  ENETUNREACH: "NetworkUnreachable",
  EADDRINUSE: "AddrInUse",
  EADDRNOTAVAIL: "AddrNotAvailable",
};

describe("runtime error mapping", () => {
  for (const [code, errno, wit] of TABLE) {
    it(`toNetworkError() maps a node:net ${code} to ${wit}`, () => {
      const e = toNetworkError({ code, errno: -errno, syscall: "connect" }, "connect", "Connect");
      assert.equal(e.payload, wit);
      assert.equal(errnoToNetworkError(-errno, "connect", "Connect").payload, wit);
    });

    it(`denoNetworkError() maps Deno's ${code} to ${wit}`, () => {
      const name = DENO_NAMES[code] ?? "Error";
      assert.equal(denoNetworkError({ name, code, message: "os error" }, "connect", "Connect").payload, wit);
      if (DENO_NAMES[code]) {
        // Some Deno errors come without `code`; the class name still decides.
        assert.equal(denoNetworkError({ name, message: "os error" }, "connect", "Connect").payload, wit);
      }
    });

    it(`bunError() maps Bun's ${code} to ${wit}`, () => {
      assert.equal(bunError({ code, errno }, "connect", "127.0.0.1:1").payload, wit);
      assert.equal(bunError({ errno }, "connect", "127.0.0.1:1").payload, wit);
      assert.equal(errnoError(errno, "bind", "127.0.0.1:1").payload, wit);
    });
  }

  it("denoNetworkError() and toNetworkError() map EINVAL on bind to address-not-bindable", () => {
    // Deno's node:net reports EADDRNOTAVAIL as EINVAL.
    assert.equal(toNetworkError({ code: "EINVAL" }, "bind", "Bind").payload, "address-not-bindable");
    assert.equal(denoNetworkError({ code: "EINVAL" }, "bind", "Bind").payload, "address-not-bindable");
    assert.equal(bunError({ code: "EINVAL" }, "bind", "Bind").payload, "address-not-bindable");
  });

  it("toNetworkError(), denoNetworkError() and bunError() give unknown for unrecognised errors", () => {
    assert.equal(toNetworkError(new Error("boom"), "io", "Read").payload, "unknown");
    assert.equal(denoNetworkError(new Error("boom"), "io", "Read").payload, "unknown");
    assert.equal(bunError(new Error("boom"), "io", "Read").payload, "unknown");
  });

  it(
    "denoNetworkError() maps the errors Deno really throws",
    { skip: (globalThis as { Deno?: unknown }).Deno === undefined ? "needs Deno" : false },
    () => {
      // deno-lint-ignore no-explicit-any
      const errors = (globalThis as any).Deno.errors;
      assert.equal(denoNetworkError(new errors.ConnectionRefused("x"), "connect", "C").payload, "connection-refused");
      assert.equal(denoNetworkError(new errors.TimedOut("x"), "connect", "C").payload, "timeout");
      assert.equal(denoNetworkError(new errors.AddrInUse("x"), "bind", "B").payload, "address-in-use");
    },
  );
});
