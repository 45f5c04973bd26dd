/** select-and-mix: verified traces per question, near copies out, domains mixed by a seeded sampler. */
import { z } from "zod";
import { selectAndMix } from "../../core/pipeline/verify-step.ts";
import { handler, publishStage, runContext } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string(), shards: z.number().int().min(0) });

export const handle = handler("select-and-mix", Event, async ({ runId, shards }) => {
  const s = await selectAndMix(await runContext(runId), "verify-traces", shards);
  publishStage(s);
  return { stage: s.stage, in: s.in, out: s.out, rejected: s.rejected };
});
