/** sign-questions: MinHash band rows of one question shard, by partition (a Distributed Map child). */
import { z } from "zod";
import { signQuestions } from "../../core/pipeline/steps.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({
  runId: z.string(),
  item: z.object({
    branch: z.enum(["sft", "rl"]),
    index: z.number().int().min(0),
    questions: z.string().min(1),
    reference: z.boolean(),
    partitions: z.number().int().min(1),
    shard: z.number().int().min(0).optional(),
    sourceIndex: z.number().int().min(0).optional(),
  }),
});

export const handle = handler("sign-questions", Event, async ({ runId, item }) => {
  const r = await signQuestions(await runContext(runId), item);
  return { index: item.index, ...r };
});
