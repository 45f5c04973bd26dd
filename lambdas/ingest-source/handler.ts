/** ingest-source: one shard of one source into canonical Questions (a Distributed Map child). */
import { ingestShard } from "../../core/pipeline/steps.ts";
import { IngestItemEvent, shardResult } from "../shared/items.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = IngestItemEvent;

export const handle = handler("ingest-source", Event, async ({ runId, item }) =>
  shardResult(item.shard, await ingestShard(await runContext(runId), item)),
);
