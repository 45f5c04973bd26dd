/** The image's entrypoint.sh, run natively with stand-ins for `vllm` and `nvidia-smi` on PATH. */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
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

function fakeBin(): string {
  const dir = mkdtempSync(join(tmpdir(), "fake-bin-"));
  writeFileSync(
    join(dir, "vllm"),
    `#!/bin/sh\nexec "${process.execPath}" "${resolve("tests/helpers/fake-vllm.mjs")}" "$@"\n`,
  );
  writeFileSync(
    join(dir, "nvidia-smi"),
    "#!/bin/sh\necho 'GPU 0: NVIDIA L40S (UUID: a)'\necho 'GPU 1: NVIDIA L40S (UUID: b)'\n",
  );
  chmodSync(join(dir, "vllm"), 0o755);
  chmodSync(join(dir, "nvidia-smi"), 0o755);
  return dir;
}

describe("generate entrypoint.sh", () => {
  it("starts vLLM with tensor parallelism from the GPU count, waits for health, runs the worker, exits 0", async () => {
    const ctx = await sampleContext({ teacher: { samplesPerQuestion: 1 } });
    await validateConfig(ctx.store, ctx.runId);
    await planIngest(ctx, "sft");
    for (const it of await readManifest<IngestItem>(ctx.store, keys.manifest(ctx.runId, "ingest-sft")))
      await ingestShard(ctx, it);
    await dedupBranch(ctx, "sft");
    await planGeneration(ctx, "sft", "plan-distill");
    const bin = fakeBin();
    const argsFile = join(bin, "args.json");

    const r = spawnSync("bash", ["batch-images/generate/entrypoint.sh"], {
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH}`,
        FAKE_VLLM_ARGS: argsFile,
        RECIPE_SERVING: "batch",
        RECIPE_SERVE_MODEL: "Qwen/Qwen3-VL-235B-A22B-Instruct",
        RECIPE_VLLM_PORT: "18431",
        RECIPE_WORKER_CMD: `${process.execPath} --import tsx batch-images/generate/src/main.ts`,
        RECIPE_BUCKET: `file://${(ctx.store as FsStore).root}`,
        RECIPE_RUN_ID: ctx.runId,
        RECIPE_MODE: "distill",
        AWS_BATCH_JOB_ARRAY_INDEX: "0",
      },
      encoding: "utf8",
      timeout: 60_000,
    });

    expect(r.status, r.stdout + r.stderr).toBe(0);
    const args = JSON.parse(readFileSync(argsFile, "utf8")) as string[];
    expect(args.slice(0, 2)).toEqual(["serve", "Qwen/Qwen3-VL-235B-A22B-Instruct"]);
    expect(args[args.indexOf("--tensor-parallel-size") + 1]).toBe("2");
    expect(args[args.indexOf("--limit-mm-per-prompt") + 1]).toBe('{"image": 8}');
    expect(await ctx.store.exists(keys.shard(ctx.runId, "distill", 0))).toBe(true);
  });

  it("exits 3 when the model to serve is not given", () => {
    const r = spawnSync("bash", ["batch-images/generate/entrypoint.sh"], {
      env: { ...process.env, RECIPE_SERVING: "batch", RECIPE_SERVE_MODEL: "" },
      encoding: "utf8",
    });

    expect(r.status).toBe(3);
  });
});
