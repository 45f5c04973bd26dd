/** plan-ingest: lists a branch's source files into the manifest its ingest Distributed Map reads. */
import { z } from "zod";
import { planIngest } from "../../core/pipeline/steps.ts";
import { bucket, handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string(), branch: z.enum(["sft", "rl"]) });

export const handle = handler("plan-ingest", Event, async ({ runId, branch }) => {
  const { manifest, shards } = await planIngest(await runContext(runId), branch);
  return { manifest: { bucket: bucket(), key: manifest }, shards };
});
