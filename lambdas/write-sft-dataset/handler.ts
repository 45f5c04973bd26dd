/**
 * write-sft-dataset, as a fan-out: `part` per mix shard (Distributed Map children), `finish` once
 * (one chat JSONL from the parts, data card, `_SUCCESS`).
 */
import { z } from "zod";
import { finishSftDataset, writeSftPart } from "../../core/pipeline/outputs.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = z.discriminatedUnion("phase", [
  z.object({
    runId: z.string(),
    phase: z.literal("part"),
    item: z.object({ shard: z.number().int().min(0) }),
  }),
  z.object({ runId: z.string(), phase: z.literal("finish"), shards: z.number().int().min(0) }),
]);

export const handle = handler("write-sft-dataset", Event, async (event) => {
  const ctx = await runContext(event.runId);
  if (event.phase === "part") {
    await writeSftPart(ctx, event.item.shard);
    return { shard: event.item.shard };
  }
  const s = (await finishSftDataset(ctx, event.shards)) as { out: number };
  return { rows: s.out };
});
