#!/usr/bin/env node
// `npm run bench [-- name ...]`: runs the named benchmarks (default: all) with their targets.
import { spawnSync } from "node:child_process";

const BENCHES = {
  verifier: "bench/verifier/run.ts",
  shards: "bench/shards/run.ts",
  dedup: "bench/dedup/run.ts",
  "dedup-fanout": "bench/dedup/fanout.ts",
  mix: "bench/mix/run.ts",
  rl: "bench/rl/run.ts",
  stages: "bench/stages/run.ts",
  generate: "bench/generate/run.ts",
};
// Bench names come first; everything from the first --flag on is passed to each bench.
const argv = process.argv.slice(2);
const firstFlag = argv.findIndex((a) => a.startsWith("-"));
const names = firstFlag < 0 ? argv : argv.slice(0, firstFlag);
const flags = firstFlag < 0 ? [] : argv.slice(firstFlag);
let failed = 0;
for (const name of names.length ? names : Object.keys(BENCHES)) {
  if (!BENCHES[name]) {
    console.error(`unknown bench ${name}; known: ${Object.keys(BENCHES).join(", ")}`);
    process.exit(2);
  }
  console.log(`\n=== bench ${name} ===`);
  const r = spawnSync(process.execPath, ["--import", "tsx", BENCHES[name], ...flags], {
    stdio: "inherit",
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  });
  if (r.status !== 0) failed += 1;
}
process.exit(failed ? 1 : 0);
