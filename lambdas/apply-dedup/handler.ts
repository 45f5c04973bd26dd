/** apply-dedup: one dedup shard from its ingest shard and decisions (a Distributed Map child). */
import { z } from "zod";
import { applyDedup } from "../../core/pipeline/steps.ts";
import { IngestItem } from "../shared/items.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({
  runId: z.string(),
  item: IngestItem,
});

export const handle = handler("apply-dedup", Event, async ({ runId, item }) => {
  const { skipped, stats } = await applyDedup(await runContext(runId), item);
  return { shard: item.shard, skipped, in: stats.in, out: stats.out, rejected: stats.rejected };
});
