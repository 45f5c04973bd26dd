/**
 * bench/generate: the generate worker against a fake OpenAI-compatible server with a fixed latency per
 * request, compared in the same run with a raw load generator (plain fetch) at the same concurrency.
 *
 *   npm run bench -- generate [--questions 10000] [--concurrency 256] [--latency-ms 400]
 *
 * The default latency (400 ms, shorter than a real generation) keeps both sides latency-bound, as
 * against a GPU server; at 50 ms both become CPU-bound on a 2-core machine that also runs the fake
 * server, and the worker's per-request work (cache probe and write, the openai client) shows.
 *
 * Targets (issue 7): worker throughput >= 95 % of the raw generator at 256 in flight; peak RSS of the
 * worker process <= 300 MB for a 10k-question shard.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import { resolveRunConfig } from "../../core/config/index.ts";
import { keys } from "../../core/layout/index.ts";
import { writeManifest } from "../../core/pipeline/context.ts";
import { type Question, questionId } from "../../core/records/index.ts";
import { writeJson } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { writeShard } from "../../core/shards/jsonl.ts";
import { BenchReport, fmt } from "../lib/stats.ts";

const { values: args } = parseArgs({
  options: {
    questions: { type: "string", default: "10000" },
    concurrency: { type: "string", default: "256" },
    "latency-ms": { type: "string", default: "400" },
  },
});
const N = Number(args.questions);
const C = Number(args.concurrency);

const server = spawn(process.execPath, ["--import", "tsx", "bench/generate/server.ts", args["latency-ms"]!], {
  stdio: ["ignore", "pipe", "inherit"],
});
const url = await new Promise<string>((resolve) =>
  createInterface({ input: server.stdout! }).once("line", resolve),
);
const dir = await mkdtemp(join(tmpdir(), "bench-generate-"));
const store = new FsStore(dir);
const raw = {
  runId: "gen",
  sources: { sft: [{ name: "g", uri: "s3://b/g/", format: "jsonl", domain: "text_math", license: "x" }] },
  teacher: { model: "bench/model", samplesPerQuestion: 1, requestConcurrency: C },
};
await writeJson(store, keys.resolvedConfig("gen"), resolveRunConfig(raw));
const questions: Question[] = Array.from({ length: N }, (_, i) => {
  const text = `What is ${i} + ${i}? Explain step by step.`;
  return {
    id: questionId(text, []),
    source: "g",
    domain: "text_math",
    question: text,
    images: [],
    answer: String(2 * i),
    answerType: "numeric",
  };
});
await writeShard(store, keys.shard("gen", "dedup-sft", 0), questions);
await writeManifest(store, keys.manifest("gen", "plan-distill"), [
  { shard: 0, questions: keys.shard("gen", "dedup-sft", 0), skip: 0, take: N },
]);

// Both sides run as child processes, so both pay the same process start-up.
const timeChild = async (cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env) => {
  const t0 = performance.now();
  let last = "";
  const child = spawn(cmd, argv, { env, stdio: ["ignore", "pipe", "inherit"] });
  createInterface({ input: child.stdout! }).on("line", (l) => {
    last = l;
  });
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  return { seconds: (performance.now() - t0) / 1000, code, last };
};
const rawRun = await timeChild(process.execPath, ["bench/generate/raw.mjs", url, String(N), String(C)]);
const rawSeconds = rawRun.seconds;
// The worker as the image runs it: the esbuild bundle of batch-images/generate/src/main.ts.
const bundle = join(dir, "generate.mjs");
await build({
  entryPoints: ["batch-images/generate/src/main.ts"],
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  outfile: bundle,
  banner: { js: "import{createRequire}from'module';const require=createRequire(import.meta.url);" },
  logLevel: "error",
});
const workerRun = await timeChild(process.execPath, [bundle], {
  ...process.env,
  RECIPE_BUCKET: `file://${dir}`,
  RECIPE_RUN_ID: "gen",
  RECIPE_MODE: "distill",
  OPENAI_BASE_URL: url,
  RECIPE_CONCURRENCY: String(C),
});
const summary = JSON.parse(workerRun.last) as { exitCode: number; maxRssMB: number };
const w = { seconds: workerRun.seconds, peak: summary.maxRssMB * 1e6, exit: summary.exitCode };
server.kill("SIGTERM");
await rm(dir, { recursive: true, force: true });

const rawRate = N / rawSeconds;
const workerRate = N / w.seconds;
console.log(`generate bench: ${N} requests, ${C} in flight, ${args["latency-ms"]} ms per request`);
console.log(`  raw fetch generator  ${fmt(rawRate)} req/s (${fmt(rawSeconds)} s)`);
console.log(
  `  generate worker      ${fmt(workerRate)} req/s (${fmt(w.seconds)} s, exit ${w.exit}, incl. cache writes and the output shard), peak RSS ${fmt(w.peak / 1e6)} MB`,
);
new BenchReport("generate", { requests: N, concurrency: C, latencyMs: Number(args["latency-ms"]) })
  .figure("worker exit code", w.exit, "code", { kind: "max", limit: 0 })
  .figure("raw generator", rawRate, "requests/s")
  .figure("generate worker", workerRate, "requests/s")
  .figure("worker throughput / raw generator", workerRate / rawRate, "ratio", { kind: "min", limit: 0.95 })
  .figure("worker peak RSS, 10k-question shard", w.peak / 1e6, "MB", { kind: "max", limit: 300 })
  .finish();
