/** plan-dedup: the manifests of a branch's dedup fan-out (shards to sign, partitions, shards to apply). */
import { z } from "zod";
import { planDedup } from "../../core/pipeline/steps.ts";
import { bucket, handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string(), branch: z.enum(["sft", "rl"]) });

export const handle = handler("plan-dedup", Event, async ({ runId, branch }) => {
  const plan = await planDedup(await runContext(runId), branch);
  const at = (key: string) => ({ bucket: bucket(), key });
  return {
    done: plan.done,
    sign: at(plan.sign),
    partitions: at(plan.partitions),
    apply: at(plan.apply),
    partitionCount: plan.partitionCount,
    questions: plan.questions,
  };
});
