// scripts/transpile.ts's change to jco's output: the debug check that jco
// 1.35 makes on every import call reads the environment once per module.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { readDebugOnce } from "../scripts/transpile.ts";
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
});
