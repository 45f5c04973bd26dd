import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { modelMergerCommand } from "../../batch-images/train-rl/src/launcher.ts";
import { keys } from "../../core/layout/index.ts";
import { validateConfig } from "../../core/pipeline/steps.ts";
import { listAll, readJson } from "../../core/shards/byte-store.ts";
import type { FsStore } from "../../core/shards/fs-store.ts";
import { runDirect } from "../../local/direct-run.ts";
import { fakeGenerate, sampleContext } from "../helpers/pipeline.ts";

function launch(store: FsStore, runId: string, merger: string) {
  return spawnSync(process.execPath, ["--import", "tsx", "batch-images/train-rl/src/main.ts"], {
    env: {
      ...process.env,
      RECIPE_BUCKET: `file://${store.root}`,
      RECIPE_RUN_ID: runId,
      RECIPE_WORKDIR: mkdtempSync(join(tmpdir(), "train-")),
      RECIPE_VERIFY_CMD: `${process.execPath} ${resolve("bin/recipe.mjs")} verify`,
      RECIPE_VERL_CMD: `${process.execPath} ${resolve("tests/helpers/fake-verl.mjs")}`,
      RECIPE_MERGE_CMD: `${process.execPath} ${resolve(merger)}`,
    },
    encoding: "utf8",
    timeout: 120_000,
  });
}

async function rlRun() {
  const ctx = await sampleContext({
    rl: { passRateBand: { enabled: false } },
    training: { rl: { enabled: true, trainBatchSize: 2, ppoMiniBatchSize: 2 } },
  });
  await validateConfig(ctx.store, ctx.runId);
  await runDirect(ctx, (c, plan, out) => fakeGenerate(c, plan, out, 2).then(() => undefined));
  return ctx;
}

describe("the RL model's Hugging Face export (train-rl, for the evaluate job)", () => {
  it("is verl 0.6.1's model merger over the FSDP actor of a checkpoint", () => {
    expect(modelMergerCommand("python3", "/w/checkpoints/global_step_32/actor", "/w/model-rl")).toEqual([
      "python3",
      "-m",
      "verl.model_merger",
      "merge",
      "--backend",
      "fsdp",
      "--local_dir",
      "/w/checkpoints/global_step_32/actor",
      "--target_dir",
      "/w/model-rl",
    ]);
  });

  it("merges the newest complete checkpoint after training and writes it to runs/<id>/models/rl/, then _SUCCESS", async () => {
    const ctx = await rlRun();
    const r = launch(ctx.store as FsStore, ctx.runId, "tests/helpers/fake-model-merger.mjs");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("exporting global_step_16:");
    const prefix = keys.modelPrefix(ctx.runId, "rl");
    expect((await listAll(ctx.store, prefix)).sort()).toEqual(
      [`${prefix}config.json`, `${prefix}model.safetensors`, `${prefix}nested/chat_template.jinja`].sort(),
    );
    const merged = await readJson<{ mergedFrom: string }>(ctx.store, `${prefix}config.json`);
    expect(merged?.mergedFrom).toMatch(/checkpoints\/global_step_16\/actor$/);
    // The merged weights are the checkpoint's (the fake merger copies the actor's shard).
    expect(readFileSync(join((ctx.store as FsStore).root, prefix, "model.safetensors"), "utf8")).toBe(
      "weights after 16 steps",
    );
    const success = await readJson<{ model: string; extra: { exportedStep: number } }>(
      ctx.store,
      keys.success(ctx.runId, "train-rl"),
    );
    expect(success).toMatchObject({ model: prefix, extra: { exportedStep: 16 } });
  });

  it("a failed merge is transient and writes neither the model nor _SUCCESS; the checkpoints stay", async () => {
    const ctx = await rlRun();
    const r = launch(ctx.store as FsStore, ctx.runId, "tests/helpers/fake-verl-failing-merger.mjs");
    expect(r.status).toBe(75);
    expect(r.stdout).toContain("model merger exited with 1");
    expect(await listAll(ctx.store, keys.modelPrefix(ctx.runId, "rl"))).toEqual([]);
    expect(await ctx.store.exists(keys.success(ctx.runId, "train-rl"))).toBe(false);
    expect(
      await ctx.store.exists(
        `${keys.stagePrefix(ctx.runId, "train-rl")}checkpoints/global_step_16/_COMPLETE`,
      ),
    ).toBe(true);
  });
});
