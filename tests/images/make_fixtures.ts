/**
 * This project's real outputs, for the GPU images' own tools to read on CPU (tests/images):
 * - the sample run's RL Parquet (write-rl-dataset), a part with several images per row written by the
 *   same writer (verlRow, ParquetParts, VERL_SCHEMA), and the train-rl launcher's validation split of both;
 * - the exact `vllm serve` commands the generate image's entrypoint.sh runs for the published config's
 *   teacher and policy (a stand-in `vllm` records them), and the worker's actual chat request bodies.
 * Prints a JSON manifest of where each is.
 *   node --import tsx tests/images/make_fixtures.ts <out-dir>
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { splitValidation } from "../../batch-images/train-rl/src/launcher.ts";
import { ParquetParts, VERL_SCHEMA, verlRow } from "../../core/datasets/index.ts";
import { keys } from "../../core/layout/index.ts";
import { readManifest } from "../../core/pipeline/context.ts";
import {
  dedupBranch,
  type IngestItem,
  ingestShard,
  planGeneration,
  planIngest,
  validateConfig,
} from "../../core/pipeline/steps.ts";
import type { Question } from "../../core/records/index.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { runDirect } from "../../local/direct-run.ts";
import { fakeGenerate, sampleContext } from "../helpers/pipeline.ts";

const out = resolve(process.argv[2] ?? "");
if (!process.argv[2]) throw new Error("usage: make_fixtures.ts <out-dir>");
mkdirSync(out, { recursive: true });
const published = JSON.parse(readFileSync("examples/openmmreasoner.run.json", "utf8")) as {
  teacher: Record<string, unknown>;
  rl: Record<string, unknown>;
  verification: Record<string, unknown>;
};

// 1. The sample run's RL set, as write-rl-dataset writes it.
const sample = await sampleContext({ runId: "images" }, join(out, "sample"));
await validateConfig(sample.store, sample.runId);
await runDirect(sample, (c, plan, stage) => fakeGenerate(c, plan, stage, 4).then(() => undefined));
const rlDir = join(out, "sample", "runs", "images", "datasets", "rl");
const sampleParts = readdirSync(rlDir)
  .filter((f) => f.endsWith(".parquet"))
  .map((f) => join(rlDir, f));

// 2. Rows with several images each (PNG and JPEG, different sizes), through the RL writer's own code.
function png(w: number, h: number, shade: number): Uint8Array {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < p.data.length; i += 4) p.data.set([shade, (i / 4) % 256, 255 - shade, 255], i);
  return new Uint8Array(PNG.sync.write(p));
}
function jpg(w: number, h: number, shade: number): Uint8Array {
  const data = Buffer.alloc(w * h * 4);
  for (let i = 0; i < data.length; i += 4) data.set([shade, 255 - shade, (i / 4) % 256, 255], i);
  return new Uint8Array(jpeg.encode({ data, width: w, height: h }, 90).data);
}
const multiDir = join(out, "multi");
const multi = new ParquetParts(new FsStore(multiDir), (p) => `rl-multi-${p}.parquet`, VERL_SCHEMA);
const shapes: [string, Uint8Array[]][] = [
  ["Which of the two charts shows the larger total?", [png(64, 48, 10), jpg(120, 90, 200)]],
  [
    "The three figures are rotated copies. Which one differs?",
    [png(56, 56, 30), png(84, 56, 60), jpg(56, 84, 90)],
  ],
  [
    "Compare the four panels and give the number of triangles.",
    [1, 2, 3, 4].map((k) => png(40 + 8 * k, 40, 40 * k)),
  ],
  ["Read the value on the gauge.", [jpg(300, 200, 128)]],
];
for (const [i, [question, images]] of shapes.entries()) {
  const q = {
    id: `${i}`.padStart(64, "0"),
    source: "multi-image-fixture",
    domain: "general_vqa",
    question,
    images: images.map((_, k) => ({ sha256: `${i}${k}`.padStart(64, "0"), mediaType: "image/png" })),
    answer: `${i + 2}`,
    answerType: "numeric",
  } as unknown as Question;
  const row = verlRow(
    q,
    i,
    "You are a helpful assistant.",
    images.map((bytes) => ({ bytes, path: null })),
    0.5,
  );
  await multi.add(
    row,
    images.reduce((n, b) => n + b.length, 0),
  );
}
await multi.flush();
const multiParts = multi.parts.map((p) => join(multiDir, p.key));

// 3. The launcher's validation split of both (what verl is handed).
const splitSrc = join(out, "split");
mkdirSync(splitSrc, { recursive: true });
const names: string[] = [];
for (const f of [...sampleParts, ...multiParts]) {
  const name = f.slice(f.lastIndexOf("/") + 1);
  writeFileSync(join(splitSrc, name), readFileSync(f));
  names.push(name);
}
const split = await splitValidation({ out: () => {} }, splitSrc, names, {
  validationPrompts: 256,
  validationSeed: 42,
});

// 4. The generate image's entrypoint.sh with stand-ins for `vllm` (records its arguments and the worker's
// requests) and `nvidia-smi` (8 x 80 GB), for the published teacher (distill, the real worker) and policy.
const gen = await sampleContext(
  {
    runId: "serve",
    teacher: published.teacher,
    rl: published.rl,
    verification: published.verification,
  } as never,
  join(out, "serve"),
);
await validateConfig(gen.store, gen.runId);
await planIngest(gen, "sft");
for (const it of await readManifest<IngestItem>(gen.store, keys.manifest(gen.runId, "ingest-sft")))
  await ingestShard(gen, it);
await dedupBranch(gen, "sft");
await planGeneration(gen, "sft", "plan-distill");
const bin = join(out, "bin");
mkdirSync(bin, { recursive: true });
writeFileSync(
  join(bin, "vllm"),
  `#!/bin/sh\nexec "${process.execPath}" "${resolve("tests/helpers/fake-vllm.mjs")}" "$@"\n`,
);
writeFileSync(
  join(bin, "nvidia-smi"),
  `#!/bin/sh\nif [ "$1" = -L ]; then for i in 0 1 2 3 4 5 6 7; do echo "GPU $i: NVIDIA H100 80GB HBM3 (UUID: $i)"; done; else for i in 0 1 2 3 4 5 6 7; do echo 81559; done; fi\n`,
);
chmodSync(join(bin, "vllm"), 0o755);
chmodSync(join(bin, "nvidia-smi"), 0o755);
function modelMeta(name: string, config: unknown, totalSize: number): string {
  const dir = join(out, "meta", name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  writeFileSync(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: { total_size: totalSize } }),
  );
  return dir;
}
// Their config.json's serving facts: Qwen3-VL-235B-A22B (64 heads, 128 experts, ~471 GB in BF16) and
// Qwen2.5-VL-7B (28 heads, ~16.6 GB).
const models = {
  teacher: {
    model: String(published.teacher.model),
    mode: "distill",
    meta: modelMeta(
      "teacher",
      {
        architectures: ["Qwen3VLMoeForConditionalGeneration"],
        model_type: "qwen3_vl_moe",
        text_config: { num_attention_heads: 64, num_experts: 128 },
      },
      471_000_000_000,
    ),
  },
  policy: {
    model: String(published.rl.policyModel),
    mode: "rollouts",
    meta: modelMeta(
      "policy",
      {
        architectures: ["Qwen2_5_VLForConditionalGeneration"],
        model_type: "qwen2_5_vl",
        num_attention_heads: 28,
      },
      16_584_333_312,
    ),
  },
};
const serve: Record<string, string[]> = {};
const requests = join(out, "requests.jsonl");
writeFileSync(requests, "");
for (const [role, m] of Object.entries(models)) {
  const argsFile = join(out, `serve-${role}.json`);
  const r = spawnSync("bash", ["batch-images/generate/entrypoint.sh"], {
    env: {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      FAKE_VLLM_ARGS: argsFile,
      FAKE_VLLM_REQUESTS: requests,
      RECIPE_SERVING: "batch",
      RECIPE_SERVE_MODEL: m.model,
      RECIPE_MODEL_META_CMD: `sh -c "echo ${m.meta}" --`,
      RECIPE_SERVE_ARGS_CMD: `${process.execPath} --import tsx batch-images/generate/src/serve-args.ts`,
      RECIPE_BUCKET: `file://${(gen.store as FsStore).root}`,
      RECIPE_RUN_ID: gen.runId,
      RECIPE_MODE: m.mode,
      RECIPE_VLLM_PORT: role === "teacher" ? "18531" : "18532",
      // The teacher answers the run's first distill shard through the real worker; the policy only starts.
      RECIPE_WORKER_CMD:
        role === "teacher" ? `${process.execPath} --import tsx batch-images/generate/src/main.ts` : "true",
      AWS_BATCH_JOB_ARRAY_INDEX: "0",
    },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`entrypoint.sh (${role}) exited ${r.status}: ${r.stdout}${r.stderr}`);
  serve[role] = JSON.parse(readFileSync(argsFile, "utf8")) as string[];
}

console.log(
  JSON.stringify({
    rl: { sample: sampleParts, multi: multiParts },
    split: { train: split.trainFiles, val: split.valFiles },
    serve,
    meta: { teacher: models.teacher.meta, policy: models.policy.meta },
    requests,
    verifyPreset: published.verification.extractionPreset,
  }),
);
