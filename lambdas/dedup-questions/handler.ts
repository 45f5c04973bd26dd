/** dedup-questions: exact and near-duplicate removal in source order, decontamination, SFT overlap (RL). */
import { z } from "zod";
import { dedupBranch } from "../../core/pipeline/steps.ts";
import { handler, publishStage, runContext } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string(), branch: z.enum(["sft", "rl"]) });

export const handle = handler("dedup-questions", Event, async ({ runId, branch }) => {
  const s = await dedupBranch(await runContext(runId), branch);
  publishStage(s);
  return { stage: s.stage, in: s.in, out: s.out, rejected: s.rejected };
});
