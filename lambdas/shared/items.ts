/** Map item schemas that more than one step receives. */
import { z } from "zod";

/** One ingest shard (the ingest Map's item, and the dedup apply Map's item). */
export const IngestItem = z.object({
  branch: z.enum(["sft", "rl"]),
  shard: z.number().int().min(0),
  sourceIndex: z.number().int().min(0),
  source: z.string(),
  file: z.string(),
});
