/** apply-dedup: one dedup shard from its ingest shard and decisions (a Distributed Map child). */
import { applyDedup } from "../../core/pipeline/steps.ts";
import { IngestItemEvent, shardResult } from "../shared/items.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = IngestItemEvent;

export const handle = handler("apply-dedup", Event, async ({ runId, item }) =>
  shardResult(item.shard, await applyDedup(await runContext(runId), item)),
);
