/** The image's entrypoint.sh, run natively with stand-ins for `vllm` and `nvidia-smi` on PATH. */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
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
import type { FsStore } from "../../core/shards/fs-store.ts";
import { sampleContext } from "../helpers/pipeline.ts";

/** A folder with a model's config.json and safetensors index, as the entrypoint downloads them. */
function modelMeta(config: unknown, totalSize: number): string {
  const dir = mkdtempSync(join(tmpdir(), "model-meta-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  writeFileSync(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: { total_size: totalSize } }),
  );
  return dir;
}
// Qwen2.5-VL-7B: 28 attention heads, about 16.6 GB of BF16 weights. Qwen3-VL-235B-A22B: 64 heads,
// 128 experts, about 471 GB.
const QWEN25_VL_7B = modelMeta({ model_type: "qwen2_5_vl", num_attention_heads: 28 }, 16_584_333_312);
const QWEN3_VL_235B = modelMeta(
  { model_type: "qwen3_vl_moe", text_config: { num_attention_heads: 64, num_experts: 128 } },
  471_000_000_000,
);

function fakeBin(): string {
  const dir = mkdtempSync(join(tmpdir(), "fake-bin-"));
  writeFileSync(
    join(dir, "vllm"),
    `#!/bin/sh\nexec "${process.execPath}" "${resolve("tests/helpers/fake-vllm.mjs")}" "$@"\n`,
  );
  // Two L40S (46,068 MiB each): `-L` lists them, `--query-gpu=memory.total` gives their memory.
  writeFileSync(
    join(dir, "nvidia-smi"),
    "#!/bin/sh\nif [ \"$1\" = -L ]; then echo 'GPU 0: NVIDIA L40S (UUID: a)'; echo 'GPU 1: NVIDIA L40S (UUID: b)'; else echo 46068; echo 46068; fi\n",
  );
  chmodSync(join(dir, "vllm"), 0o755);
  chmodSync(join(dir, "nvidia-smi"), 0o755);
  return dir;
}

/** Runs entrypoint.sh in batch serving for `model` (its config folder), with the stand-ins on PATH. */
function runEntrypoint(
  store: FsStore,
  runId: string,
  model: string,
  meta: string,
  extra: Record<string, string> = {},
) {
  const bin = fakeBin();
  const argsFile = join(bin, "args.json");
  const r = spawnSync("bash", ["batch-images/generate/entrypoint.sh"], {
    env: {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      FAKE_VLLM_ARGS: argsFile,
      RECIPE_SERVING: "batch",
      RECIPE_SERVE_MODEL: model,
      RECIPE_MODEL_META_CMD: `sh -c "echo ${meta}" --`,
      RECIPE_SERVE_ARGS_CMD: `${process.execPath} --import tsx batch-images/generate/src/serve-args.ts`,
      RECIPE_BUCKET: `file://${store.root}`,
      RECIPE_RUN_ID: runId,
      RECIPE_MODE: "distill",
      ...extra,
    },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { r, argsFile };
}

describe("generate entrypoint.sh", () => {
  it("starts vLLM with a TP that divides the model's heads and data parallelism over the other GPUs, waits for health, runs the worker, exits 0", async () => {
    const ctx = await sampleContext({ teacher: { samplesPerQuestion: 1 } });
    await validateConfig(ctx.store, ctx.runId);
    await planIngest(ctx, "sft");
    for (const it of await readManifest<IngestItem>(ctx.store, keys.manifest(ctx.runId, "ingest-sft")))
      await ingestShard(ctx, it);
    await dedupBranch(ctx, "sft");
    await planGeneration(ctx, "sft", "plan-distill");
    const { r, argsFile } = runEntrypoint(
      ctx.store as FsStore,
      ctx.runId,
      "Qwen/Qwen2.5-VL-7B-Instruct",
      QWEN25_VL_7B,
      {
        RECIPE_VLLM_PORT: "18431",
        RECIPE_WORKER_CMD: `${process.execPath} --import tsx batch-images/generate/src/main.ts`,
        AWS_BATCH_JOB_ARRAY_INDEX: "0",
      },
    );

    expect(r.status, r.stdout + r.stderr).toBe(0);
    const args = JSON.parse(readFileSync(argsFile, "utf8")) as string[];
    expect(args.slice(0, 2)).toEqual(["serve", "Qwen/Qwen2.5-VL-7B-Instruct"]);
    const value = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
    // 28 heads: TP 2 would work on 2 GPUs, but the weights fit on one, so two engines serve.
    expect([value("--tensor-parallel-size"), value("--data-parallel-size")]).toEqual(["1", "2"]);
    expect(value("--max-model-len")).toBe(String(16_384 + 16_384));
    expect(value("--limit-mm-per-prompt")).toBe('{"image":8,"video":0}');
    expect(args).not.toContain("--enable-expert-parallel");
    expect(await ctx.store.exists(keys.shard(ctx.runId, "distill", 0))).toBe(true);
  });

  it("serves weights staged in S3 from the host's disk, under the model's own name, without asking the Hub", async () => {
    const ctx = await sampleContext({ teacher: { samplesPerQuestion: 1 } });
    await validateConfig(ctx.store, ctx.runId);
    for (const f of ["config.json", "model.safetensors.index.json"])
      await ctx.store.write(`models/qwen7b/${f}`, readFileSync(join(QWEN25_VL_7B, f)));
    const weights = mkdtempSync(join(tmpdir(), "weights-"));
    const stage = `${process.execPath} --import tsx batch-images/generate/src/stage-weights.ts`;
    const { r, argsFile } = runEntrypoint(
      ctx.store as FsStore,
      ctx.runId,
      "Qwen/Qwen2.5-VL-7B-Instruct",
      "/nonexistent",
      {
        RECIPE_VLLM_PORT: "18432",
        RECIPE_WEIGHTS_URI: "s3://pipeline/models/qwen7b/",
        RECIPE_STAGE_WEIGHTS_CMD: stage,
        RECIPE_WEIGHTS_ROOT: weights,
        // The Hub is not asked: this would fail the job.
        RECIPE_MODEL_META_CMD: "false",
        RECIPE_WORKER_CMD: "true",
      },
    );

    expect(r.status, r.stdout + r.stderr).toBe(0);
    const args = JSON.parse(readFileSync(argsFile, "utf8")) as string[];
    expect(args[1]!.startsWith(weights)).toBe(true);
    expect(existsSync(join(args[1]!, "config.json"))).toBe(true);
    expect(args[args.indexOf("--served-model-name") + 1]).toBe("Qwen/Qwen2.5-VL-7B-Instruct");
    expect(args[args.indexOf("--tensor-parallel-size") + 1]).toBe("1");
  });

  it("exits 3 when the staged S3 folder is not a model folder", async () => {
    const ctx = await sampleContext();
    await validateConfig(ctx.store, ctx.runId);
    const { r, argsFile } = runEntrypoint(
      ctx.store as FsStore,
      ctx.runId,
      "Qwen/Qwen2.5-VL-7B-Instruct",
      "/x",
      {
        RECIPE_WEIGHTS_URI: "s3://pipeline/models/absent/",
        RECIPE_STAGE_WEIGHTS_CMD: `${process.execPath} --import tsx batch-images/generate/src/stage-weights.ts`,
        RECIPE_WEIGHTS_ROOT: mkdtempSync(join(tmpdir(), "weights-")),
      },
    );

    expect(r.status).toBe(3);
    expect(r.stderr + r.stdout).toContain("s3://pipeline/models/absent/: no config.json under it");
    expect(existsSync(argsFile)).toBe(false);
  });

  it("exits 3 naming the problem when the model's weights cannot fit on the instance", async () => {
    const ctx = await sampleContext({ teacher: { samplesPerQuestion: 1 } });
    await validateConfig(ctx.store, ctx.runId);
    const { r, argsFile } = runEntrypoint(
      ctx.store as FsStore,
      ctx.runId,
      "Qwen/Qwen3-VL-235B-A22B-Instruct",
      QWEN3_VL_235B,
    );

    expect(r.status, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toMatch(/weights \(439 GiB\) do not fit on 2 GPUs of 45 GiB/);
    expect(existsSync(argsFile)).toBe(false); // vLLM never started
  });

  it("exits 3 when the model to serve is not given", () => {
    const r = spawnSync("bash", ["batch-images/generate/entrypoint.sh"], {
      env: { ...process.env, RECIPE_SERVING: "batch", RECIPE_SERVE_MODEL: "" },
      encoding: "utf8",
    });

    expect(r.status).toBe(3);
  });
});
