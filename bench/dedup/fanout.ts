/**
 * bench/dedup-fanout: the same 1M questions as bench/dedup through the pipeline's dedup fan-out
 * (core/pipeline/dedup-step.ts: plan, sign per shard, group per partition, resolve, apply per
 * shard) on a filesystem store, one child at a time. Each step's peak RSS bounds what one Lambda
 * child of that step needs.
 *
 *   npm run bench -- dedup-fanout [--questions 1000000] [--planted 50000] [--shard 50000]
 *
 * Targets: the (10 minutes, recall >= 0.95, precision >= 0.99), and peak RSS of every
 * step at most 2 GiB.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { resolveRunConfig } from "../../core/config/index.ts";
import type { RunConfigInput } from "../../core/config/schema.ts";
import { keys } from "../../core/layout/index.ts";
import { type RunContext, readManifest, writeManifest } from "../../core/pipeline/context.ts";
import {
  applyDedup,
  groupPartition,
  type IngestItem,
  type PartitionItem,
  planDedup,
  resolveDuplicates,
  type SignItem,
  signQuestions,
} from "../../core/pipeline/steps.ts";
import { type Question, questionId } from "../../core/records/index.ts";
import { listAll } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { readShard } from "../../core/shards/jsonl.ts";
import { markStageDone, ShardRun } from "../../core/stages/stage.ts";
import { BenchReport, fmt } from "../lib/stats.ts";
import { runStepHere, runStepProcess } from "../lib/steps.ts";
import { generate, SETTINGS, score, THRESHOLD } from "./workload.ts";

const { values: args } = parseArgs({
  options: {
    questions: { type: "string", default: "1000000" },
    planted: { type: "string", default: "50000" },
    shard: { type: "string", default: "50000" },
    step: { type: "string" },
    dir: { type: "string" },
  },
});
const N = Number(args.questions);
const PER_SHARD = Number(args.shard);
const dir = args.dir ?? (await mkdtemp(join(tmpdir(), "recipe-dedup-fanout-")));
const store = new FsStore(dir);
const input = {
  runId: "bench",
  sources: {
    sft: [{ name: "generated", uri: "generated/", format: "jsonl", domain: "text_math", license: "CC0-1.0" }],
  },
  dedup: {
    nearDuplicateThreshold: SETTINGS.nearDuplicateThreshold,
    minhashPermutations: SETTINGS.minhashPermutations,
    lshBands: SETTINGS.lshBands,
    shingleSize: SETTINGS.shingleSize,
  },
} as RunConfigInput;
const config = resolveRunConfig(input);
const ctx: RunContext = {
  store,
  runId: config.runId,
  config,
  sources: (uri) => ({ store, key: uri }),
};

/** Child mode: one step's children, one after another, in a fresh process (as Lambda runs them). */
async function runStep(name: string): Promise<unknown> {
  const plan = await planDedup(ctx, "sft");
  switch (name) {
    case "plan":
      return plan;
    case "sign":
      for (const item of await readManifest<SignItem>(store, plan.sign)) await signQuestions(ctx, item);
      return null;
    case "group":
      for (const item of await readManifest<PartitionItem>(store, plan.partitions))
        await groupPartition(ctx, item);
      return null;
    case "resolve":
      return resolveDuplicates(ctx, "sft");
    case "apply":
      for (const item of await readManifest<IngestItem>(store, plan.apply)) await applyDedup(ctx, item);
      return markStageDone(store, config.runId, "dedup-sft");
    default:
      throw new Error(`unknown step ${name}`);
  }
}
if (args.step) await runStepHere(() => runStep(args.step!));

// The ingest stage's output, written as ingest would: shards, stats, manifest, _SUCCESS.
const items: IngestItem[] = [];
const positionOf = new Map<string, number>();
let run: ShardRun | null = null;
const t0 = performance.now();
const workload = await generate(N, Number(args.planted), async (i, text) => {
  if (i % PER_SHARD === 0) {
    if (run) await run.finish();
    items.push({
      branch: "sft",
      shard: items.length,
      sourceIndex: 0,
      source: "generated",
      file: `g${items.length}`,
    });
    run = new ShardRun(store, config.runId, "ingest-sft", items.length - 1);
  }
  const q: Question = {
    id: questionId(text, []),
    source: "generated",
    domain: "text_math",
    question: text,
    images: [],
    answer: "1",
    answerType: "numeric",
  };
  run!.seen();
  await run!.emit(q);
});
if (run) await (run as ShardRun).finish();
await writeManifest(store, keys.manifest(config.runId, "ingest-sft"), items);
await markStageDone(store, config.runId, "ingest-sft");
for (const i of workload.texts.keys()) positionOf.set(questionId(workload.texts.get(i)!, []), i);
console.log(
  `wrote ${N} questions in ${items.length} ingest shards in ${fmt((performance.now() - t0) / 1000)} s`,
);

// Each step in its own process: its wall time and peak RSS are what one Lambda of that step needs
// (an upper bound: the process runs every child of the step, one after another).
const steps: { name: string; seconds: number; peakRssMiB: number; children: number }[] = [];
const results: Record<string, unknown> = {};
const started = performance.now();
for (const name of ["plan", "sign", "group", "resolve", "apply"]) {
  const out = runStepProcess(fileURLToPath(import.meta.url), name, ["--dir", dir]);
  results[name] = out.result;
  steps.push({ name, seconds: out.seconds, peakRssMiB: out.peakRssMiB, children: 0 });
}
const seconds = (performance.now() - started) / 1000;
const plan = results.plan as Awaited<ReturnType<typeof planDedup>>;
const resolved = results.resolve as Awaited<ReturnType<typeof resolveDuplicates>>;
for (const st of steps)
  st.children =
    st.name === "sign"
      ? items.length
      : st.name === "group"
        ? plan.partitionCount
        : st.name === "apply"
          ? items.length
          : 1;

let bandBytes = 0;
for (const key of await listAll(store, keys.stagePrefix(config.runId, "dedup-sft")))
  if (key.endsWith(".bin") && key.includes("/bands/")) bandBytes += (await store.size(key)) ?? 0;

const drops = new Map<number, number>();
let unknownDrops = 0;
for (const item of items)
  for await (const l of readShard(store, keys.rejects(config.runId, "dedup-sft", item.shard))) {
    const r = l.ok ? (l.value as { questionId: string; duplicateOf: string }) : null;
    const i = r ? positionOf.get(r.questionId) : undefined;
    const of = r ? positionOf.get(r.duplicateOf) : undefined;
    if (i === undefined || of === undefined) unknownDrops += 1;
    else drops.set(i, of);
  }
// A drop outside the planted pairs is a false positive: count it against precision.
for (let k = 0; k < unknownDrops; k++) drops.set(-1 - k, -1);
const s = score(workload, drops);
await rm(dir, { recursive: true, force: true });

console.log(
  `dedup fan-out: ${N} questions in ${items.length} shards, ${plan.partitionCount} partitions, ` +
    `band files ${fmt(bandBytes / 2 ** 20)} MiB, ${resolved.candidatePairs} candidate pairs over ${resolved.questionsInPairs} questions`,
);
for (const st of steps)
  console.log(
    `  ${st.name.padEnd(8)} ${fmt(st.seconds).padStart(7)} s  peak RSS ${fmt(st.peakRssMiB).padStart(6)} MiB  (${st.children} ${st.children === 1 ? "step" : "children, one at a time"})`,
  );
console.log(
  `  total ${fmt(seconds)} s, dropped ${s.dropped}, recall ${s.recall.toFixed(4)}, precision ${s.precision.toFixed(4)} (planted at J >= ${THRESHOLD}: ${s.positives})`,
);
const worst = Math.max(...steps.map((x) => x.peakRssMiB));
new BenchReport("dedup-fanout", { questions: N, shards: items.length, partitions: plan.partitionCount })
  .figure("wall time of the dedup steps, process starts included", seconds, "s", { kind: "max", limit: 600 })
  .figure("peak RSS of any step", worst, "MiB", { kind: "max", limit: 2048 })
  .figure("recall on planted pairs at J >= 0.8", s.recall, "fraction", { kind: "min", limit: 0.95 })
  .figure("precision of drops", s.precision, "fraction", { kind: "min", limit: 0.99 })
  .figure("band files", bandBytes / 2 ** 20, "MiB")
  .details({ resolved, steps, dropped: s.dropped })
  .finish();
