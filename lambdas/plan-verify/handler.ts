/** plan-verify: the manifest of trace shards (generate output and trace sources) for a verify Map. */
import { z } from "zod";
import { planVerify } from "../../core/pipeline/verify-step.ts";
import { bucket, handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({
  runId: z.string(),
  branch: z.enum(["sft", "rl"]),
  planStage: z.enum(["plan-distill", "plan-rollouts"]),
  generateStage: z.enum(["distill", "estimate-difficulty"]),
  stage: z.enum(["verify-traces", "filter-rl"]),
});

export const handle = handler("plan-verify", Event, async (e) => {
  const plan = await planVerify(await runContext(e.runId), e.planStage, e.generateStage, e.stage, e.branch);
  return { manifest: { bucket: bucket(), key: plan.manifest }, shards: plan.shards };
});
