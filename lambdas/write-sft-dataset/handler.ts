/** write-sft-dataset: chat JSONL + Parquet (images embedded) + data card. */
import { z } from "zod";
import { writeSftDatasetStep } from "../../core/pipeline/outputs.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string(), shards: z.number().int().min(0) });

export const handle = handler("write-sft-dataset", Event, async ({ runId, shards }) => {
  const s = (await writeSftDatasetStep(await runContext(runId), shards)) as { out: number };
  return { rows: s.out };
});
