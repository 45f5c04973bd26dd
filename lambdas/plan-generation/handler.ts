/** plan-generation: the manifest the `generate` Batch array job reads (array size = its length). */
import { z } from "zod";
import { planGeneration } from "../../core/pipeline/steps.ts";
import { bucket, handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({
  runId: z.string(),
  branch: z.enum(["sft", "rl"]),
  planStage: z.enum(["plan-distill", "plan-rollouts"]),
});

export const handle = handler("plan-generation", Event, async ({ runId, branch, planStage }) => {
  const plan = await planGeneration(await runContext(runId), branch, planStage);
  // A Batch array job needs at least 2 children; a single slice runs as a plain job (arraySize 0).
  return {
    manifest: { bucket: bucket(), key: plan.manifest },
    arraySize: plan.arraySize,
    questions: plan.questions,
    isArray: plan.arraySize >= 2,
    hasWork: plan.arraySize > 0,
  };
});
