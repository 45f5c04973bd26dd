/**
 * bench/rl: the RL writer as the fan-out the state machine runs (the plan once, a part per filter-rl
 * shard, the finish), over generated RL questions with one image each and their pass rates, on a
 * filesystem store. Each phase runs in its own process; its wall time and peak RSS bound what one
 * Lambda of that phase needs (the parts run one after another in one process, so their figures
 * are for all children together: an upper bound for one child).
 *
 *   npm run bench -- rl [--questions 74000] [--shard 2000] [--image-kib 16]
 *
 * Targets: every phase within Lambda's limits (3,008 MB by default, 15 minutes). The plan is the one
 * step that reads every question's pass rate (one short line each); it is projected to 1M questions.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { resolveRunConfig } from "../../core/config/index.ts";
import type { RunConfigInput } from "../../core/config/schema.ts";
import { keys } from "../../core/layout/index.ts";
import type { RunContext } from "../../core/pipeline/context.ts";
import { writeManifest } from "../../core/pipeline/context.ts";
import { finishRlDataset, planRlDataset, writeRlPart } from "../../core/pipeline/outputs.ts";
import type { VerifyItem } from "../../core/pipeline/verify-step.ts";
import type { Question } from "../../core/records/index.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { ShardRun } from "../../core/stages/stage.ts";
import type { QuestionCount } from "../../core/stages/verify-traces.ts";
import { BenchReport, fmt, seeded } from "../lib/stats.ts";
import { runStepHere, runStepProcess } from "../lib/steps.ts";

const { values: args } = parseArgs({
  options: {
    questions: { type: "string", default: "74000" },
    shard: { type: "string", default: "2000" },
    "image-kib": { type: "string", default: "16" },
    step: { type: "string" },
    dir: { type: "string" },
  },
});
const N = Number(args.questions);
const PER_SHARD = Number(args.shard);
const SHARDS = Math.ceil(N / PER_SHARD);
const LAMBDA_MB = 3008;
const LAMBDA_SECONDS = 900;
const dir = args.dir ?? (await mkdtemp(join(tmpdir(), "recipe-rl-")));
const store = new FsStore(dir);
const input = {
  runId: "bench",
  sources: { rl: [{ name: "r", uri: "r/", format: "jsonl", domain: "image_math", license: "CC0-1.0" }] },
} as RunConfigInput;
const config = resolveRunConfig(input);
const ctx: RunContext = { store, runId: config.runId, config, sources: (uri) => ({ store, key: uri }) };

async function runStep(name: string): Promise<unknown> {
  switch (name) {
    case "plan":
      return { rows: (await planRlDataset(ctx)).rows };
    case "parts":
      for (let i = 0; i < SHARDS; i++) await writeRlPart(ctx, i);
      return null;
    case "finish": {
      const s = (await finishRlDataset(ctx)) as { in: number; out: number; files: { parquet: string[] } };
      return { in: s.in, out: s.out, parquetFiles: s.files.parquet.length };
    }
    default:
      throw new Error(`unknown step ${name}`);
  }
}
if (args.step) await runStepHere(() => runStep(args.step!));

// 64 distinct images (each question embeds one), questions in dedup-rl shards, a filter-rl item and
// its pass-rate counts per shard: a fifth always solved, a tenth never (the band drops them).
const rand = seeded(11);
const images = Array.from({ length: 64 }, () => randomBytes(Number(args["image-kib"]) * 1024));
const refs = [];
for (const bytes of images) {
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  await store.write(keys.image(sha256), bytes);
  refs.push({
    sha256,
    mediaType: "image/png" as const,
    width: 64,
    height: 64,
    bytes: bytes.length,
    dhash: null,
  });
}
const t0 = performance.now();
const items: VerifyItem[] = [];
for (let shard = 0; shard < SHARDS; shard++) {
  const run = new ShardRun(store, config.runId, "dedup-rl", shard);
  const counts = run.side("counts");
  let take = 0;
  for (let i = shard * PER_SHARD; i < Math.min(N, (shard + 1) * PER_SHARD); i++) {
    const id = createHash("sha256").update(`rl${i}`).digest("hex");
    const q: Question = {
      id,
      source: "r",
      domain: "image_math",
      question: `In the figure, the shaded region covers ${i % 89} squares of a grid of ${(i % 13) + 10}. What fraction is shaded?`,
      images: [refs[i % refs.length]!],
      answer: String(i % 89),
      answerType: "numeric",
    };
    const r = rand();
    const passRate = r < 0.2 ? 1 : r < 0.3 ? 0 : Math.round(rand() * 15 + 1) / 16;
    const c: QuestionCount = {
      questionId: id,
      domain: q.domain,
      source: "r",
      samples: 16,
      correct: passRate * 16,
      passRate,
    };
    run.seen();
    await run.emit(q);
    await counts.write(c);
    take++;
  }
  await run.finish();
  // The counts as filter-rl writes them, beside the questions they describe.
  await store.write(
    keys.side(config.runId, "filter-rl", "counts", shard),
    (await store.readBytes(keys.side(config.runId, "dedup-rl", "counts", shard))) ?? "",
  );
  items.push({
    shard,
    traces: keys.shard(config.runId, "estimate-difficulty", shard),
    questions: { questions: keys.shard(config.runId, "dedup-rl", shard), skip: 0, take },
  });
}
await writeManifest(store, keys.manifest(config.runId, "filter-rl"), items);
console.log(`wrote ${N} RL questions in ${SHARDS} shards in ${fmt((performance.now() - t0) / 1000)} s`);

const report = new BenchReport("rl", {
  questions: N,
  questionsPerShard: PER_SHARD,
  shards: SHARDS,
  imageKiB: Number(args["image-kib"]),
});
const results: Record<string, unknown> = {};
for (const name of ["plan", "parts", "finish"]) {
  const out = runStepProcess(fileURLToPath(import.meta.url), name, [
    "--dir",
    dir,
    "--questions",
    String(N),
    "--shard",
    String(PER_SHARD),
    "--image-kib",
    String(args["image-kib"]),
  ]);
  results[name] = out.result;
  const perChild = name === "parts" ? SHARDS : 1;
  report.figure(
    `${name}: peak RSS (${perChild === 1 ? "one step" : `${perChild} children in one process`})`,
    out.peakRssMiB,
    "MiB",
    { kind: "max", limit: LAMBDA_MB },
  );
  report.figure(`${name}: wall time per child`, out.seconds / perChild, "s", {
    kind: "max",
    limit: LAMBDA_SECONDS,
  });
  if (name === "plan")
    report.figure("plan projected to 1M questions: wall time", (out.seconds / N) * 1_000_000, "s", {
      kind: "max",
      limit: LAMBDA_SECONDS,
    });
}
report.details(results);
await rm(dir, { recursive: true, force: true });
console.log(`RL writer fan-out: ${N} questions in ${SHARDS} shards -> ${JSON.stringify(results.finish)}`);
report.finish();
