#!/usr/bin/env node
// `npm run bench [-- name ...]`: runs the named benchmarks (default: all) with their targets.
import { spawnSync } from "node:child_process";

const BENCHES = { verifier: "bench/verifier/run.ts", shards: "bench/shards/run.ts" };
const names = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const flags = process.argv.slice(2).filter((a) => a.startsWith("-"));
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
