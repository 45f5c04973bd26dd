/**
 * A run for the evaluate launcher's CPU check (tests/images/evaluate): the published config
 * (examples/openmmreasoner.run.json) resolved with evaluation on over the given tasks and the judge at
 * the given URL, written where validate-config writes it in a file:// bucket, plus an exported SFT
 * model folder (a config.json) so the default model list is base and sft.
 *   node --import tsx tests/images/evaluate/make_run.ts <bucket dir> <run id> <judge url> <task,...> [model,...]
 */
import { readFileSync } from "node:fs";
import { resolveRunConfig } from "../../../core/config/index.ts";
import { keys } from "../../../core/layout/index.ts";
import { writeJson } from "../../../core/shards/byte-store.ts";
import { FsStore } from "../../../core/shards/fs-store.ts";

const [dir, runId, judgeUrl, tasks, models] = process.argv.slice(2);
if (!dir || !runId || !judgeUrl || !tasks)
  throw new Error("usage: make_run.ts <bucket dir> <run id> <judge url> <tasks>");
type Section = Record<string, unknown>;
const input = JSON.parse(readFileSync("examples/openmmreasoner.run.json", "utf8")) as Section;
const verification = (input.verification ?? {}) as Section;
input.runId = runId;
input.evaluation = {
  ...((input.evaluation ?? {}) as Section),
  enabled: true,
  tasks: tasks.split(","),
  batchSize: 4,
  ...(models ? { models: models.split(",") } : {}),
};
input.verification = {
  ...verification,
  judge: { ...((verification.judge ?? {}) as Section), enabled: true, endpoint: { url: judgeUrl } },
};
const config = resolveRunConfig(input);
const store = new FsStore(dir);
await writeJson(store, keys.resolvedConfig(runId), config);
await writeJson(store, `${keys.modelPrefix(runId, "sft")}config.json`, {
  architectures: ["Qwen2_5_VLForConditionalGeneration"],
  num_attention_heads: 28,
});
// A 7B's weights in bf16, as its safetensors index states them (the serving plan sizes by it).
await writeJson(store, `${keys.modelPrefix(runId, "sft")}model.safetensors.index.json`, {
  metadata: { total_size: 16_584_333_312 },
  weight_map: {},
});
process.stdout.write(
  `${JSON.stringify({ runId, judgeModel: config.verification.judge.model, maxNewTokens: config.evaluation.maxNewTokens, preset: config.verification.extractionPreset, systemPrompt: config.teacher.systemPrompt })}\n`,
);
