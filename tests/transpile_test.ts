// scripts/transpile.ts's changes to jco's output: the debug check that jco
// 1.35 makes on every import call reads the environment once per module, and
// list<u8> arguments are lent to the methods of objects that copy them.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { lendLists, readDebugOnce } from "../scripts/transpile.ts";
import { buildGuest } from "./_guests.ts";
import { within } from "./_wasi_helpers.ts";

const CHECK = "if (!globalThis?.process?.env?.JCO_DEBUG) { return; }";
const READ = "process?.env?.JCO_DEBUG";
const BUILD_MS = 90_000;

function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

describe("scripts/transpile.ts", () => {
  it("readDebugOnce() reads JCO_DEBUG once per module instead of in every _debugLog call", () => {
    const head = `"use components";\nimport x from "y";\n`;
    const js = `${head}const _debugLog = (...args) => {\n  ${CHECK}\n  console.debug(...args);\n};\n` +
      `function other() {\n  ${CHECK}\n}\n`;
    const out = readDebugOnce(js);
    assert.equal(count(out, CHECK), 0);
    assert.equal(count(out, READ), 1);
    // At module load, right before _debugLog; the directive and imports stay first.
    assert.ok(out.startsWith(`${head}const $wasiTcpJcoDebug = `), out.slice(0, 120));
    assert.equal(count(out, "console.debug(...args)"), 1);
  });

  it("readDebugOnce() leaves output without jco's debug check as it is", () => {
    const js = 'const _debugLog = () => {};\nexport const x = globalThis?.process?.env?.OTHER;\n';
    assert.equal(readDebugOnce(js), js);
  });

  it("lendLists() lends a method's list argument to marked objects only, and leaves functions without a resource alone", () => {
    const copy = (n: number): string => `  var result${n} = new Uint8Array(memory0.buffer.slice(ptr${n}, ptr${n} + len${n} * 1));\n`;
    const method = "\nconst _trampoline7 = function(arg0, arg1, arg2) {\n  var rsc0 = captureTable1.get(arg0);\n" +
      copy(3) + "  rsc0.write(result3);\n}\n";
    const free = "\nconst _trampoline8 = function(arg0, arg1) {\n" + copy(4) + "  send(result4);\n}\n";
    const js = 'import x from "y";\n' + free + method;
    const out = lendLists(js);
    assert.equal(count(out, 'Symbol.for("wasi-tcp.copiesListArguments")'), 1);
    assert.ok(out.includes(copy(4)), "the free function still copies");
    assert.ok(
      out.includes(
        "var result3 = rsc0[$wasiTcpCopiesLists] === true ? new Uint8Array(memory0.buffer, ptr3, len3) : " +
          "new Uint8Array(memory0.buffer.slice(ptr3, ptr3 + len3 * 1));",
      ),
      out,
    );
    // The patched expression behaves: a view for a marked object, a copy otherwise.
    const memory0 = { buffer: new Uint8Array([1, 2, 3, 4, 5]).buffer };
    const pick = (rsc0: Record<symbol, unknown>): Uint8Array =>
      new Function("rsc0", "memory0", "ptr3", "len3", `const $wasiTcpCopiesLists = Symbol.for("wasi-tcp.copiesListArguments");
        var result3 = rsc0[$wasiTcpCopiesLists] === true ? new Uint8Array(memory0.buffer, ptr3, len3) : new Uint8Array(memory0.buffer.slice(ptr3, ptr3 + len3 * 1));
        return result3;`)(rsc0, memory0, 1, 3);
    const lent = pick({ [Symbol.for("wasi-tcp.copiesListArguments")]: true });
    const copied = pick({});
    assert.equal(lent.buffer, memory0.buffer);
    assert.notEqual(copied.buffer, memory0.buffer);
    assert.deepEqual([...lent], [2, 3, 4]);
    assert.deepEqual([...copied], [2, 3, 4]);
    assert.equal(lendLists(free), free, "nothing to lend: unchanged");
    // A JSPI import's trampoline awaits before the call: guest memory may grow meanwhile.
    const suspending = method.replace("const _trampoline7 = function", "const _trampoline7 = async function");
    assert.equal(lendLists(suspending), suspending, "an async trampoline keeps jco's copy");
  });

  it("transpileComponent() output reads JCO_DEBUG only at load, with the jco this package tests against", {
    timeout: BUILD_MS + 5_000,
  }, async () => {
    const guest = await within(buildGuest("wat_echo_client", "sync"), "building the guest", BUILD_MS);
    const js = await readFile(guest.entry, "utf8");
    // Fails when a jco update changes the check, so that the change is seen.
    assert.ok(count(js, "_debugLog(") > 10, "jco's output calls _debugLog");
    assert.equal(count(js, CHECK), 0, "jco's per-call check is left");
    assert.equal(count(js, "if (!$wasiTcpJcoDebug) { return; }"), 1);
    assert.equal(count(js, READ), 1);
  });

  it("transpileComponent() output lends the list arguments of output-stream.write and sha256.update, with the jco this package tests against", {
    timeout: BUILD_MS + 5_000,
  }, async () => {
    const guest = await within(buildGuest("wat_echo_client", "sync"), "building the guest", BUILD_MS);
    const js = await readFile(guest.entry, "utf8");
    // Fails when a jco update changes how it copies lists, so that the change is seen.
    assert.equal(count(js, "rsc0[$wasiTcpCopiesLists] === true ? new Uint8Array(memory0.buffer, ptr3, len3)"), 2);
    assert.equal(count(js, "= new Uint8Array(memory0.buffer.slice("), 0, "a method's list copy is left");
  });

  it("transpileComponent() output takes this package's lowerings of read, write, check-write, the streams' and sockets' subscribe and poll where jco offers them (--import-bindings hybrid)", {
    timeout: BUILD_MS + 5_000,
  }, async () => {
    for (const mode of ["sync", "jspi"] as const) {
      const guest = await within(buildGuest("wat_echo_client", mode), "building the guest", BUILD_MS);
      const js = await readFile(guest.entry, "utf8");
      // Fails when a jco update drops or renames the optimized bindings.
      for (const fn of [
        "InputStream.prototype.read",
        "InputStream.prototype.subscribe",
        "OutputStream.prototype.write",
        "OutputStream.prototype.checkWrite",
        "OutputStream.prototype.subscribe",
        "TcpSocket.prototype.subscribe",
        "poll",
      ]) {
        assert.ok(js.includes(`if (${fn}[symbolCabiLower]) {`), `${mode}: ${fn}`);
      }
    }
  });
});
