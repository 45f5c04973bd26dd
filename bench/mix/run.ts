/**
 * bench/mix: select-and-mix and the SFT writer as the fan-outs the state machine runs (select per
 * verified shard, plan once, apply per shard, finish; then an SFT part per mix shard and the joining
 * step), over generated verified traces, on a filesystem store. Each phase runs in its own process;
 * its wall time and peak RSS bound what one
 * Lambda of that phase needs (the per-shard phases run every child one after another, so their
 * figures are for all children together: an upper bound for one child).
 *
 *   npm run bench -- mix [--traces 1000000] [--shard 16000]
 *
 * Targets: every phase within Lambda's limits (3,008 MB by default, 15 minutes). The plan is the one
 * step that sees every trace (8 bytes each); its projection to the recipe's 874K rows from x8
 * sampling (about 7M verified traces) is printed from the measured per-trace cost.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { resolveRunConfig } from "../../core/config/index.ts";
import type { RunConfigInput } from "../../core/config/schema.ts";
import type { RunContext } from "../../core/pipeline/context.ts";
import { finishSftDataset, writeSftPart } from "../../core/pipeline/outputs.ts";
import { applyMixShard, finishMix, planMixStep, selectShard } from "../../core/pipeline/verify-step.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { ShardRun } from "../../core/stages/stage.ts";
import type { VerifiedTrace } from "../../core/stages/verify-traces.ts";
import { BenchReport, fmt, seeded } from "../lib/stats.ts";
import { runStepHere, runStepProcess } from "../lib/steps.ts";

const { values: args } = parseArgs({
  options: {
    traces: { type: "string", default: "1000000" },
    shard: { type: "string", default: "16000" },
    step: { type: "string" },
    dir: { type: "string" },
  },
});
const N = Number(args.traces);
const PER_SHARD = Number(args.shard);
const SHARDS = Math.ceil(N / PER_SHARD);
const LAMBDA_MB = 3008;
const LAMBDA_SECONDS = 900;
const RECIPE_TRACES = 874_000 * 8;
const dir = args.dir ?? (await mkdtemp(join(tmpdir(), "recipe-mix-")));
const store = new FsStore(dir);
const input = {
  runId: "bench",
  sources: { sft: [{ name: "g", uri: "g/", format: "jsonl", domain: "text_math", license: "CC0-1.0" }] },
  // The recipe's mix: shares of the three domain groups, a total that the traces can fill.
  mixing: {
    tracesPerQuestion: 8,
    ratios: { general_vqa: 0.659, text_math: 0.236, chart: 0.105 },
    totalRows: Math.floor(N / 8),
  },
} as RunConfigInput;
const config = resolveRunConfig(input);
const ctx: RunContext = { store, runId: config.runId, config, sources: (uri) => ({ store, key: uri }) };

async function runStep(name: string): Promise<unknown> {
  switch (name) {
    case "select":
      for (let i = 0; i < SHARDS; i++) await selectShard(ctx, "verify-traces", i);
      return null;
    case "plan":
      return (await planMixStep(ctx, SHARDS)).targets;
    case "apply":
      for (let i = 0; i < SHARDS; i++) await applyMixShard(ctx, i);
      return null;
    case "finish": {
      const s = await finishMix(ctx, SHARDS);
      return { in: s.in, out: s.out, rejected: s.rejected };
    }
    case "sft-parts":
      for (let i = 0; i < SHARDS; i++) await writeSftPart(ctx, i);
      return null;
    case "sft-finish": {
      const s = (await finishSftDataset(ctx, SHARDS)) as { out: number };
      return { rows: s.out };
    }
    default:
      throw new Error(`unknown step ${name}`);
  }
}
if (args.step) await runStepHere(() => runStep(args.step!));

// Verified traces as verify-traces writes them: 8 samples per question, distinct responses.
const rand = seeded(7);
const domains = ["general_vqa", "text_math", "chart"] as const;
const words = ["the", "sum", "of", "area", "bar", "chart", "so", "angle", "then", "total", "we", "get"];
const t0 = performance.now();
for (let shard = 0; shard < SHARDS; shard++) {
  const run = new ShardRun(store, config.runId, "verify-traces", shard);
  for (let i = shard * PER_SHARD; i < Math.min(N, (shard + 1) * PER_SHARD); i++) {
    const q = Math.floor(i / 8);
    const text = Array.from({ length: 60 }, () => words[Math.floor(rand() * words.length)]).join(" ");
    const questionId = createHash("sha256").update(`q${q}`).digest("hex");
    const answer = String(q % 97);
    const trace: VerifiedTrace = {
      questionId,
      sampleIndex: i % 8,
      model: "bench-teacher",
      messages: [{ role: "user", content: `question ${q}` }],
      response: `<think>${text}</think><answer>${answer}</answer>`,
      finishReason: "stop",
      usage: { promptTokens: 20, completionTokens: 80 },
      verdict: {
        questionId,
        sampleIndex: i % 8,
        correct: true,
        extracted: answer,
        reason: "match_exact",
        format: 1,
      },
      domain: domains[q % 3]!,
      source: "g",
    };
    run.seen();
    await run.emit(trace);
  }
  await run.finish();
}
console.log(`wrote ${N} verified traces in ${SHARDS} shards in ${fmt((performance.now() - t0) / 1000)} s`);

const report = new BenchReport("mix", { traces: N, tracesPerShard: PER_SHARD, shards: SHARDS });
const results: Record<string, unknown> = {};
for (const name of ["select", "plan", "apply", "finish", "sft-parts", "sft-finish"]) {
  const out = runStepProcess(fileURLToPath(import.meta.url), name, [
    "--dir",
    dir,
    "--traces",
    String(N),
    "--shard",
    String(PER_SHARD),
  ]);
  results[name] = out.result;
  const perChild = name === "select" || name === "apply" || name === "sft-parts" ? SHARDS : 1;
  report.figure(
    `${name}: peak RSS (${perChild === 1 ? "one step" : `${perChild} children in one process`})`,
    out.peakRssMiB,
    "MiB",
    {
      kind: "max",
      limit: LAMBDA_MB,
    },
  );
  report.figure(`${name}: wall time per child`, out.seconds / perChild, "s", {
    kind: "max",
    limit: LAMBDA_SECONDS,
  });
  if (name === "sft-finish") {
    // The joining step streams every part's bytes once: its time grows with the rows.
    const rows = (out.result as { rows: number }).rows;
    report.figure(
      "sft-finish projected to the recipe's 874K rows: wall time",
      (out.seconds / rows) * 874_000,
      "s",
      {
        kind: "max",
        limit: LAMBDA_SECONDS,
      },
    );
  }
  if (name === "plan") {
    const projected = (out.seconds / N) * RECIPE_TRACES;
    report.figure("plan projected to the recipe's ~7M traces: wall time", projected, "s", {
      kind: "max",
      limit: LAMBDA_SECONDS,
    });
    // 8 bytes per trace in typed arrays, plus the process's fixed cost measured here.
    report.figure("plan projected to ~7M traces: key arrays", (RECIPE_TRACES * 8 * 2) / 2 ** 20, "MiB", {
      kind: "max",
      limit: LAMBDA_MB,
    });
  }
}
report.details({ targets: results.plan, summary: results.finish, sft: results["sft-finish"] });
await rm(dir, { recursive: true, force: true });
console.log(`select-and-mix fan-out: ${N} traces in ${SHARDS} shards -> ${JSON.stringify(results.finish)}`);
report.finish();
