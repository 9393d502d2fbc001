// Runs scripts/bench.ts under Node, Deno and Bun, one after another, with the
// binaries installed in node_modules, and prints one combined Markdown table.
//
//   node scripts/bench_all.mjs [--mib N] [--conns N] [--runs N] [--json]
//
// Other arguments are passed on to every run. Exits 1 if any runtime failed.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const script = join("scripts", "bench.ts");

const args = process.argv.slice(2);
const json = args.includes("--json");
const passOn = args.filter((a) => a !== "--json");

const runtimes = [
  { name: "node", command: process.execPath, argv: ["--import", "tsx", script] },
  { name: "deno", command: bin("deno"), argv: ["run", "-A", script] },
  { name: "bun", command: bin("bun"), argv: [script] },
];

function run(rt) {
  return new Promise((resolve) => {
    if (rt.command !== process.execPath && !existsSync(rt.command)) {
      resolve({ runtime: rt.name, error: `${rt.command} not found (npm install first)` });
      return;
    }
    const argv = [...rt.argv, ...passOn, "--json"];
    process.stderr.write(`\n$ ${[rt.command, ...argv].join(" ")}\n`);
    // Progress goes to our stderr; the JSON result comes on stdout.
    const child = spawn(rt.command, argv, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (s) => (out += s));
    child.on("error", (e) => resolve({ runtime: rt.name, error: e.message }));
    child.on("close", (code, signal) => {
      if (code !== 0) {
        resolve({ runtime: rt.name, error: `exited with ${signal ?? code}` });
        return;
      }
      try {
        resolve(JSON.parse(out));
      } catch {
        resolve({ runtime: rt.name, error: "printed no JSON result" });
      }
    });
  });
}

const cell = (v, unit) => (v === null || v === undefined ? "-" : `${v} ${unit}`);
const ratio = (v) => (v === null || v === undefined ? "-" : v.toFixed(2));

const results = [];
for (const rt of runtimes) results.push(await run(rt));

if (json) {
  process.stdout.write(JSON.stringify(results, null, 2) + "\n");
} else {
  const lines = [
    "| runtime | backend | raw MB/s | adapter MB/s | ratio | raw conn/s | adapter conn/s | ratio |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    if (r.error) {
      lines.push(`| ${r.runtime} | failed: ${r.error} | - | - | - | - | - | - |`);
      continue;
    }
    for (const row of r.rows) {
      lines.push(
        `| ${row.runtime} ${row.version} | ${row.backend} | ${cell(row.rawMBps, "MB/s")} | ${
          cell(row.adapterMBps, "MB/s")
        } | ${ratio(row.throughputRatio)} | ${cell(row.rawConnPerSec, "conn/s")} | ${
          cell(row.adapterConnPerSec, "conn/s")
        } | ${ratio(row.connRatio)} |`,
      );
    }
  }
  const ok = results.filter((r) => !r.error);
  const notes = [];
  if (ok.length > 0) {
    // The method lines are the same everywhere except the raw API and the load.
    const m = ok[0].method;
    notes.push(m[1], m[3], m[4], m[5]);
    for (const r of ok) notes.push(`${r.runtime}: ${r.method[0]} ${r.method[2]}`);
  }
  process.stdout.write(
    "\n" + lines.join("\n") + "\n\n" + notes.map((n) => `- ${n}`).join("\n") + "\n",
  );
  for (const r of ok) {
    for (const row of r.rows) {
      const s = row.samples;
      process.stdout.write(
        `- ${row.runtime} ${row.backend} runs: raw MB/s [${s.rawMBps.join(", ")}], adapter MB/s [${
          s.adapterMBps.join(", ")
        }], raw conn/s [${s.rawConnPerSec.join(", ")}], adapter conn/s [${s.adapterConnPerSec.join(", ")}]\n`,
      );
    }
  }
}
process.exitCode = results.some((r) => r.error) ? 1 : 0;
