/**
 * finish-stage: after a stage's Map or Batch job, checks that every shard of its manifest has a result,
 * sums the shard stats and writes `_SUCCESS` last.
 */
import { z } from "zod";
import { STAGES } from "../../core/layout/index.ts";
import { checkIngestYield } from "../../core/pipeline/steps.ts";
import { markStageDone } from "../../core/stages/stage.ts";
import { handler, publishStage, runStore } from "../shared/runtime.ts";

export const Event = z.object({
  runId: z.string(),
  stage: z.enum(STAGES),
  /** The manifest whose items are the stage's shards (each item has `shard`). */
  manifest: z.string().optional(),
});

export const handle = handler("finish-stage", Event, async ({ runId, stage, manifest }) => {
  // A source none of whose rows made it through ingest fails here, naming the reason and column.
  if (manifest && (stage === "ingest-sft" || stage === "ingest-rl"))
    await checkIngestYield(runStore(), runId, stage, manifest);
  const s = await markStageDone(runStore(), runId, stage, manifest);
  publishStage(s);
  return { stage, shards: s.shards, in: s.in, out: s.out, rejected: s.rejected };
});
