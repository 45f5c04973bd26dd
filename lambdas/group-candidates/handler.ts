/** group-candidates: the candidate pairs of one band partition's buckets (a Distributed Map child). */
import { z } from "zod";
import { groupPartition } from "../../core/pipeline/steps.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({
  runId: z.string(),
  item: z.object({
    branch: z.enum(["sft", "rl"]),
    partition: z.number().int().min(0),
    partitions: z.number().int().min(1),
  }),
});

export const handle = handler("group-candidates", Event, async ({ runId, item }) => {
  const r = await groupPartition(await runContext(runId), item);
  return { partition: item.partition, ...r };
});
