/** verify-shard: verifier and quality filters over one trace shard (a Distributed Map child). */
import { z } from "zod";
import { verifyShard } from "../../core/pipeline/verify-step.ts";
import { shardResult } from "../shared/items.ts";
import { judgeApiKey, openAiJudge } from "../shared/judge.ts";
import { handler, runContext } from "../shared/runtime.ts";

const Slice = z.object({
  questions: z.string(),
  skip: z.number().int().min(0),
  take: z.number().int().min(0),
});

export const Event = z.object({
  runId: z.string(),
  stage: z.enum(["verify-traces", "filter-rl"]),
  mode: z.enum(["sft", "rollouts"]),
  item: z.object({
    shard: z.number().int().min(0),
    traces: z.string(),
    questions: Slice,
    passRatesFromSource: z.boolean().optional(),
  }),
});

export const handle = handler("verify-shard", Event, async ({ runId, stage, mode, item }) => {
  const apiKey = await judgeApiKey();
  const ctx = await runContext(runId, (c) => openAiJudge(c.verification.judge, apiKey));
  return shardResult(item.shard, await verifyShard(ctx, item, stage, mode));
});
