/** resolve-duplicates: checks the candidate pairs, joins groups, writes each shard's drops and quota. */
import { z } from "zod";
import { resolveDuplicates } from "../../core/pipeline/steps.ts";
import { handler, logger, runContext } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string(), branch: z.enum(["sft", "rl"]) });

export const handle = handler("resolve-duplicates", Event, async ({ runId, branch }) => {
  const summary = await resolveDuplicates(await runContext(runId), branch);
  logger.info("duplicates resolved", { ...summary });
  return summary;
});
