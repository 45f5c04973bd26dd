/** Map item schemas and results that more than one step shares. */
import { z } from "zod";
import type { ShardStats } from "../../core/stages/stage.ts";

/** One ingest shard (the ingest Map's item, and the dedup apply Map's item). */
export const IngestItem = z.object({
  branch: z.enum(["sft", "rl"]),
  shard: z.number().int().min(0),
  sourceIndex: z.number().int().min(0),
  source: z.string(),
  file: z.string(),
});

/** The event of a Map child over ingest shards. */
export const IngestItemEvent = z.object({ runId: z.string(), item: IngestItem });

/** What a Map child that wrote one shard returns (small: Map results are kept in S3). */
export function shardResult(shard: number, r: { skipped: boolean; stats: ShardStats }) {
  return { shard, skipped: r.skipped, in: r.stats.in, out: r.stats.out, rejected: r.stats.rejected };
}
