/**
 * Prints the `vllm serve` arguments for this job, one per line, from the model's config files (a
 * folder holding its config.json and, when published, model.safetensors.index.json), the GPUs of the
 * instance and the run's settings (runs/<id>/config.json: teacher.* for distill, rl.* for rollouts).
 * Exits 3 with a message when the model cannot run here (a TP that does not divide its heads,
 * weights that do not fit). Called by entrypoint.sh before it starts vLLM.
 *
 * Environment: RECIPE_BUCKET, RECIPE_RUN_ID, RECIPE_MODE, RECIPE_GPUS, RECIPE_GPU_MEMORY_MIB.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { modelFacts, PROMPT_TOKENS, planServe } from "../../../core/generate/serve-plan.ts";
import { loadConfig } from "../../../core/pipeline/context.ts";
import { FsStore } from "../../../core/shards/fs-store.ts";
import { createS3Client, S3Store } from "../../../core/shards/s3-store.ts";

const EXIT_BAD_INPUT = 3;
function fail(message: string): never {
  console.error(JSON.stringify({ level: "ERROR", message }));
  process.exit(EXIT_BAD_INPUT);
}

const metaDir = process.argv[2];
if (!metaDir) fail("usage: serve-args <folder with the model's config.json>");
const json = (name: string) =>
  existsSync(join(metaDir, name))
    ? (JSON.parse(readFileSync(join(metaDir, name), "utf8")) as Record<string, unknown>)
    : null;
const config = json("config.json");
if (!config) fail(`no config.json in ${metaDir}`);
const bucket = process.env.RECIPE_BUCKET ?? fail("RECIPE_BUCKET is not set");
const store = bucket.startsWith("file://")
  ? new FsStore(bucket.slice(7))
  : new S3Store(createS3Client(), bucket);
const run = await loadConfig(store, process.env.RECIPE_RUN_ID ?? fail("RECIPE_RUN_ID is not set"));
const distill = (process.env.RECIPE_MODE ?? "distill") === "distill";
const mib = Number(process.env.RECIPE_GPU_MEMORY_MIB);

let facts: ReturnType<typeof modelFacts>;
try {
  facts = modelFacts(config, json("model.safetensors.index.json"));
} catch (err) {
  fail((err as Error).message);
}
const plan = planServe(facts, {
  gpus: Number(process.env.RECIPE_GPUS ?? 1),
  gpuMemoryBytes: Number.isFinite(mib) && mib > 0 ? mib * 2 ** 20 : null,
  tensorParallel: distill ? run.teacher.tensorParallelSize : undefined,
  maxModelLen: distill
    ? (run.teacher.maxModelLen ?? run.teacher.maxTokens + PROMPT_TOKENS)
    : run.rl.maxTokens + PROMPT_TOKENS,
  maxImages: run.teacher.maxImagesPerPrompt,
});
if (!plan.ok) fail(plan.problem);
console.error(
  JSON.stringify({
    level: "INFO",
    message: "vLLM plan",
    tensorParallel: plan.tensorParallel,
    dataParallel: plan.dataParallel,
    moe: facts.moe,
    attentionHeads: facts.attentionHeads,
  }),
);
process.stdout.write(`${plan.args.join("\n")}\n`);
