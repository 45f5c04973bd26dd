/** write-rl-dataset: pass-rate band over the difficulty rollouts, verl Parquet, data card. */
import { z } from "zod";
import { writeRlDatasetStep } from "../../core/pipeline/outputs.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string() });

export const handle = handler("write-rl-dataset", Event, async ({ runId }) => {
  const s = (await writeRlDatasetStep(await runContext(runId))) as {
    out: number;
    files?: { parquet: string[] };
  };
  return { rows: s.out, parquet: s.files?.parquet ?? [] };
});
