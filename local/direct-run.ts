/**
 * Runs the pipeline's steps in process, in the order the state machine runs them, with the GPU jobs
 * supplied by the caller. Used by tests and benchmarks of the CPU path; `npm start` runs the real
 * state machine instead.
 */

import { INGEST_STAGE, keys, type Stage } from "../core/layout/index.ts";
import type { RunContext } from "../core/pipeline/context.ts";
import { readManifest } from "../core/pipeline/context.ts";
import { writeRlDatasetStep, writeSftDatasetStep } from "../core/pipeline/outputs.ts";
import { writeReport } from "../core/pipeline/report.ts";
import {
  dedupBranch,
  type IngestItem,
  ingestShard,
  planGeneration,
  planIngest,
  planVerify,
  selectAndMix,
  type VerifyItem,
  verifyShard,
} from "../core/pipeline/steps.ts";
import { markStageDone } from "../core/stages/stage.ts";

export type GenerateJob = (ctx: RunContext, planStage: Stage, outStage: Stage) => Promise<void>;

export interface DirectRunResult {
  seconds: Record<string, number>;
}

export async function runDirect(ctx: RunContext, generate: GenerateJob): Promise<DirectRunResult> {
  const seconds: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    seconds[name] = (seconds[name] ?? 0) + (performance.now() - t0) / 1000;
    return r;
  };
  const branches = (["sft", "rl"] as const).filter(
    (b) => ctx.config.sources[b].length > 0 && (b === "sft" || ctx.config.rl.enabled),
  );
  for (const branch of branches) {
    const stage = INGEST_STAGE[branch];
    await timed(stage, async () => {
      await planIngest(ctx, branch);
      for (const item of await readManifest<IngestItem>(ctx.store, keys.manifest(ctx.runId, stage)))
        await ingestShard(ctx, item);
      await markStageDone(ctx.store, ctx.runId, stage);
    });
  }
  if (branches.includes("sft")) {
    await timed("dedup-sft", () => dedupBranch(ctx, "sft"));
    await timed("plan-distill", () => planGeneration(ctx, "sft", "plan-distill"));
    await timed("distill", () => generate(ctx, "plan-distill", "distill"));
    await markStageDone(ctx.store, ctx.runId, "distill");
    const { shards } = await timed("verify-traces", async () => {
      const plan = await planVerify(ctx, "plan-distill", "distill", "verify-traces", "sft");
      for (const item of await readManifest<VerifyItem>(ctx.store, plan.manifest))
        await verifyShard(ctx, item, "verify-traces", "sft");
      await markStageDone(ctx.store, ctx.runId, "verify-traces");
      return plan;
    });
    await timed("select-and-mix", () => selectAndMix(ctx, "verify-traces", shards));
    await timed("write-sft-dataset", () => writeSftDatasetStep(ctx, shards));
  }
  if (branches.includes("rl")) {
    await timed("dedup-rl", () => dedupBranch(ctx, "rl"));
    await timed("plan-rollouts", () => planGeneration(ctx, "rl", "plan-rollouts"));
    await timed("estimate-difficulty", () => generate(ctx, "plan-rollouts", "estimate-difficulty"));
    await markStageDone(ctx.store, ctx.runId, "estimate-difficulty");
    await timed("filter-rl", async () => {
      const plan = await planVerify(ctx, "plan-rollouts", "estimate-difficulty", "filter-rl", "rl");
      for (const item of await readManifest<VerifyItem>(ctx.store, plan.manifest))
        await verifyShard(ctx, item, "filter-rl", "rollouts");
      await markStageDone(ctx.store, ctx.runId, "filter-rl");
    });
    await timed("write-rl-dataset", () => writeRlDatasetStep(ctx));
  }
  await timed("report", () => writeReport(ctx));
  return { seconds };
}
