/** ingest-source: one shard of one source into canonical Questions (a Distributed Map child). */
import { z } from "zod";
import { ingestShard } from "../../core/pipeline/steps.ts";
import { IngestItem } from "../shared/items.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({
  runId: z.string(),
  item: IngestItem,
});

export const handle = handler("ingest-source", Event, async ({ runId, item }) => {
  const { skipped, stats } = await ingestShard(await runContext(runId), item);
  return { shard: item.shard, skipped, in: stats.in, out: stats.out, rejected: stats.rejected };
});
