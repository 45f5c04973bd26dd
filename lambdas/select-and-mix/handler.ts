/**
 * select-and-mix, as a fan-out: `select` and `apply` run per verified shard (Distributed Map
 * children), `plan` and `finish` once between and after them (core/pipeline/verify-step.ts).
 */
import { z } from "zod";
import { applyMixShard, finishMix, planMixStep, selectShard } from "../../core/pipeline/verify-step.ts";
import { handler, publishStage, runContext } from "../shared/runtime.ts";

const Item = z.object({ shard: z.number().int().min(0) });

export const Event = z.discriminatedUnion("phase", [
  z.object({ runId: z.string(), phase: z.literal("select"), item: Item }),
  z.object({ runId: z.string(), phase: z.literal("plan"), shards: z.number().int().min(0) }),
  z.object({ runId: z.string(), phase: z.literal("apply"), item: Item }),
  z.object({ runId: z.string(), phase: z.literal("finish"), shards: z.number().int().min(0) }),
]);

export const handle = handler("select-and-mix", Event, async (event) => {
  const ctx = await runContext(event.runId);
  switch (event.phase) {
    case "select":
      await selectShard(ctx, "verify-traces", event.item.shard);
      return { shard: event.item.shard };
    case "apply":
      await applyMixShard(ctx, event.item.shard);
      return { shard: event.item.shard };
    case "plan": {
      const plan = await planMixStep(ctx, event.shards);
      return { targets: plan.targets };
    }
    case "finish": {
      const s = await finishMix(ctx, event.shards);
      publishStage(s);
      return { stage: s.stage, in: s.in, out: s.out, rejected: s.rejected };
    }
  }
});
