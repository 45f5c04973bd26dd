/**
 * write-rl-dataset, as a fan-out: `plan` once (rows per filter-rl shard, so that extra_info.index
 * runs on across parts), `part` per filter-rl shard (Distributed Map children: the band, verl
 * Parquet with embedded images), `finish` once (summary, data card, `_SUCCESS`).
 */
import { z } from "zod";
import { finishRlDataset, planRlDataset, writeRlPart } from "../../core/pipeline/outputs.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = z.discriminatedUnion("phase", [
  z.object({ runId: z.string(), phase: z.literal("plan") }),
  z.object({
    runId: z.string(),
    phase: z.literal("part"),
    item: z.object({ shard: z.number().int().min(0) }),
  }),
  z.object({ runId: z.string(), phase: z.literal("finish") }),
]);

export const handle = handler("write-rl-dataset", Event, async (event) => {
  const ctx = await runContext(event.runId);
  if (event.phase === "plan") {
    const plan = await planRlDataset(ctx);
    return { rows: plan.rows, shards: plan.shards.length };
  }
  if (event.phase === "part") {
    await writeRlPart(ctx, event.item.shard);
    return { shard: event.item.shard };
  }
  const s = (await finishRlDataset(ctx)) as { out: number; files?: { parquet: string[] } };
  // The file list stays in _SUCCESS: at the recipe's scale it would not fit a state's 256 KiB.
  return { rows: s.out, parquetFiles: s.files?.parquet.length ?? 0 };
});
