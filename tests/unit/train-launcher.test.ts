import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveRunConfig } from "../../core/config/index.ts";
import { keys } from "../../core/layout/index.ts";
import { validateConfig } from "../../core/pipeline/steps.ts";
import { listAll } from "../../core/shards/byte-store.ts";
import type { FsStore } from "../../core/shards/fs-store.ts";
import { verlOverrides } from "../../core/train/verl.ts";
import { runDirect } from "../../local/direct-run.ts";
import { fakeGenerate, sampleContext } from "../helpers/pipeline.ts";

async function runWithRlDataset() {
  const ctx = await sampleContext({ rl: { passRateBand: { enabled: false } }, training: { enabled: true } });
  await validateConfig(ctx.store, ctx.runId);
  await runDirect(ctx, (c, plan, out) => fakeGenerate(c, plan, out, 2).then(() => undefined));
  return ctx;
}

function launch(store: FsStore, runId: string, args: string[], extra: Record<string, string> = {}) {
  return spawnSync(process.execPath, ["--import", "tsx", "batch-images/train-rl/src/main.ts", ...args], {
    env: {
      ...process.env,
      RECIPE_BUCKET: `file://${store.root}`,
      RECIPE_RUN_ID: runId,
      RECIPE_WORKDIR: mkdtempSync(join(tmpdir(), "train-")),
      RECIPE_VERIFY_CMD: `${process.execPath} ${resolve("bin/recipe.mjs")} verify`,
      ...extra,
    },
    encoding: "utf8",
    timeout: 120_000,
  });
}

describe("verl GSPO configuration", () => {
  it("renders the recipe's GSPO settings as verl overrides", () => {
    const config = resolveRunConfig({
      runId: "r",
      sources: { rl: [{ name: "a", uri: "s3://b/a/", format: "parquet", domain: "puzzle", license: "x" }] },
    });

    const o = verlOverrides(config, {
      trainFiles: ["/d/a.parquet"],
      checkpointDir: "/ck",
      rewardPath: "/r.py",
      modelPath: "m",
    });

    expect(o).toEqual(
      expect.arrayContaining([
        "algorithm.adv_estimator=grpo",
        "actor_rollout_ref.actor.policy_loss.loss_mode=gspo",
        "actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean",
        "actor_rollout_ref.rollout.n=16",
        "actor_rollout_ref.actor.clip_ratio_low=0.0003",
        "actor_rollout_ref.actor.clip_ratio_high=0.0004",
        "actor_rollout_ref.actor.optim.lr=0.000001",
        "actor_rollout_ref.actor.optim.lr_warmup_steps=25",
        "actor_rollout_ref.actor.optim.weight_decay=0.1",
        "actor_rollout_ref.actor.use_kl_loss=False",
        "algorithm.use_kl_in_reward=False",
        "data.train_batch_size=128",
        "actor_rollout_ref.actor.ppo_mini_batch_size=128",
        "data.max_prompt_length=4096",
        "data.max_response_length=28696",
        "trainer.total_training_steps=1500",
        "trainer.save_freq=16",
        "trainer.resume_mode=auto",
        "custom_reward_function.path=/r.py",
      ]),
    );
  });
});

describe("train-rl launcher", () => {
  it("--dry-run validates the dataset and the reward on N rows and prints the exact verl command", async () => {
    const ctx = await runWithRlDataset();

    const r = launch(ctx.store as FsStore, ctx.runId, ["--dry-run", "--rows", "4"]);

    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("4 row(s) checked");
    expect(r.stdout).toContain("perfect answers score 1, empty responses 0");
    expect(r.stdout).toContain("python3 -m verl.trainer.main_ppo");
    expect(r.stdout).toContain("actor_rollout_ref.actor.policy_loss.loss_mode=gspo");
  });

  it("exits 3 when there is no RL dataset to train on", async () => {
    const ctx = await sampleContext();
    await validateConfig(ctx.store, ctx.runId);

    const r = launch(ctx.store as FsStore, ctx.runId, ["--dry-run"]);

    expect(r.status).toBe(3);
  });

  it("copies checkpoints to S3 and, after a restart on a fresh machine, resumes from the newest", async () => {
    const ctx = await runWithRlDataset();
    const fakeVerl = { RECIPE_VERL_CMD: `${process.execPath} ${resolve("tests/helpers/fake-verl.mjs")}` };

    const first = launch(ctx.store as FsStore, ctx.runId, [], fakeVerl);
    const second = launch(ctx.store as FsStore, ctx.runId, [], fakeVerl);

    expect(first.status, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toContain('"resumedFrom":0');
    expect(second.stdout).toContain("resuming from global_step_16");
    expect(second.stdout).toContain('"resumedFrom":16');
    const saved = await listAll(ctx.store, `${keys.stagePrefix(ctx.runId, "train-rl")}checkpoints/`);
    expect(saved).toEqual(
      expect.arrayContaining([
        `${keys.stagePrefix(ctx.runId, "train-rl")}checkpoints/global_step_16/_COMPLETE`,
        `${keys.stagePrefix(ctx.runId, "train-rl")}checkpoints/global_step_32/_COMPLETE`,
        `${keys.stagePrefix(ctx.runId, "train-rl")}checkpoints/global_step_32/actor/weights.bin`,
      ]),
    );
    expect(await ctx.store.exists(keys.success(ctx.runId, "train-rl"))).toBe(true);
  });
});
