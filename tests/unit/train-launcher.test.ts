import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveRunConfig } from "../../core/config/index.ts";
import { keys } from "../../core/layout/index.ts";
import { validateConfig } from "../../core/pipeline/steps.ts";
import { listAll } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { readParquetRows } from "../../core/shards/parquet.ts";
import { DEFAULT_SOCKET_IFNAME, glooInterface } from "../../core/train/cluster.ts";
import { heldOutRows, validationCount } from "../../core/train/validation.ts";
import { verlOverrides } from "../../core/train/verl.ts";
import { runDirect } from "../../local/direct-run.ts";
import { fakeGenerate, sampleContext } from "../helpers/pipeline.ts";

async function runWithRlDataset(
  training: Record<string, unknown> = {},
  more: Record<string, unknown> = {},
  sft: Record<string, unknown> = {},
) {
  const ctx = await sampleContext({
    ...more,
    rl: { passRateBand: { enabled: false } },
    // The sample's RL set is 7 prompts: batches of 2 give verl steps to take.
    training: { sft, rl: { enabled: true, trainBatchSize: 2, ppoMiniBatchSize: 2, ...training } },
  });
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
      // After training, the RL model's export (verl's model merger; tests/unit/evaluate-rl-export.test.ts).
      RECIPE_MERGE_CMD: `${process.execPath} ${resolve("tests/helpers/fake-model-merger.mjs")}`,
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
      valFiles: ["/d/val.parquet"],
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
        "data.val_files=[/d/val.parquet]",
        "data.val_batch_size=64",
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

  it("downloads an s3:// start model to local disk and hands verl the folder (verl copies only hdfs://)", async () => {
    const ctx = await runWithRlDataset({ startModel: "s3://pipeline/models/sft-cold-start/" });
    for (const [name, body] of [
      ["config.json", "{}"],
      ["model-00001-of-00002.safetensors", "w1"],
      ["model-00002-of-00002.safetensors", "w2"],
    ])
      await ctx.store.write(`models/sft-cold-start/${name!}`, body!);
    const fakeVerl = { RECIPE_VERL_CMD: `${process.execPath} ${resolve("tests/helpers/fake-verl.mjs")}` };

    const r = launch(ctx.store as FsStore, ctx.runId, [], fakeVerl);

    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/start model: s3:\/\/pipeline\/models\/sft-cold-start\/ \(3 files/);
    expect(r.stdout).toMatch(/"model":"\/[^"]+\/model"/);
  });

  it("starts from this run's SFT model when train-sft runs and no startModel is given", async () => {
    const ctx = await runWithRlDataset({}, {}, { enabled: true });
    const sft = `s3://pipeline/${keys.modelPrefix(ctx.runId, "sft")}`;
    const fakeVerl = { RECIPE_VERL_CMD: `${process.execPath} ${resolve("tests/helpers/fake-verl.mjs")}` };

    // Not exported (yet): a dry run says so and checks the rest; a real run fails, naming it.
    const dry = launch(ctx.store as FsStore, ctx.runId, ["--dry-run"]);
    expect(dry.status, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`start model, this run's SFT model (train-sft's output): ${sft}`);
    expect(dry.stdout).toContain(
      `start model: ${sft} has no model yet (train-sft ran as a dry run?): not checked`,
    );
    const missing = launch(ctx.store as FsStore, ctx.runId, [], fakeVerl);
    expect(missing.status).toBe(3);
    expect(missing.stdout).toContain(
      `this run's SFT model (train-sft's output) ${sft}: no config.json under it`,
    );

    // Exported: staged to the node like any s3:// start model.
    for (const [name, body] of [
      ["config.json", '{"architectures":["Qwen2_5_VLForConditionalGeneration"]}'],
      ["model.safetensors", "w"],
    ])
      await ctx.store.write(`${keys.modelPrefix(ctx.runId, "sft")}${name!}`, body!);
    const r = launch(ctx.store as FsStore, ctx.runId, [], fakeVerl);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`start model: ${sft} (2 files`);
  });

  it("refuses an s3:// start model that is not a model folder, naming it", async () => {
    const ctx = await runWithRlDataset({ startModel: "s3://pipeline/models/missing" });

    const r = launch(ctx.store as FsStore, ctx.runId, ["--dry-run"]);

    expect(r.status).toBe(3);
    expect(r.stdout).toContain(
      "training.rl.startModel s3://pipeline/models/missing: no config.json under it",
    );
  });

  it("refuses an s3:// start model whose config.json names an architecture the image cannot load", async () => {
    const ctx = await runWithRlDataset({ startModel: "s3://pipeline/models/sft-cold-start/" });
    await ctx.store.write(
      "models/sft-cold-start/config.json",
      JSON.stringify({ architectures: ["Qwen3OmniMoeForConditionalGeneration"] }),
    );

    const r = launch(ctx.store as FsStore, ctx.runId, ["--dry-run"]);

    expect(r.status).toBe(3);
    expect(r.stdout).toContain(
      "training.rl.startModel s3://pipeline/models/sft-cold-start/ is a Qwen3OmniMoeForConditionalGeneration, which the train-rl image cannot load: not in both its transformers 4.57.1 and vLLM 0.11.0",
    );
  });

  it("refuses a set smaller than one batch, which would train 0 steps", async () => {
    const ctx = await runWithRlDataset({ trainBatchSize: 128, ppoMiniBatchSize: 128 });

    const r = launch(ctx.store as FsStore, ctx.runId, ["--dry-run"]);

    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(
      /problem: the RL set has \d+ prompts, fewer than one batch \(training\.rl\.trainBatchSize 128\)/,
    );
  });

  it("says when the epochs end training before totalSteps", async () => {
    const ctx = await runWithRlDataset({ trainBatchSize: 2, ppoMiniBatchSize: 2, epochs: 3 });

    const r = launch(ctx.store as FsStore, ctx.runId, ["--dry-run", "--rows", "2"]);

    expect(r.stdout).toMatch(
      /steps: \d+ \(3 epochs of \d+ steps over \d+ prompts end training before totalSteps 1500\)/,
    );
  });
});

describe("the validation split", () => {
  it("holds out a seeded sample: the same seed picks the same prompts, another seed others", () => {
    const a = heldOutRows(5000, validationCount(5000, 256), 42);
    const b = heldOutRows(5000, validationCount(5000, 256), 42);
    const c = heldOutRows(5000, validationCount(5000, 256), 7);

    expect(a.size).toBe(256);
    expect([...a].sort()).toEqual([...b].sort());
    expect([...a].sort()).not.toEqual([...c].sort());
    expect([...a].every((i) => i >= 0 && i < 5000)).toBe(true);
  });

  it("holds out at most a tenth of a small set, so it still trains", () => {
    expect(validationCount(40, 256)).toBe(4);
    expect(validationCount(7, 256)).toBe(1);
    expect(validationCount(1, 256)).toBe(0);
  });

  async function rlRows(file: string) {
    const ids: string[] = [];
    for await (const row of readParquetRows(new FsStore("/"), file.slice(1)))
      ids.push((row.extra_info as { question_id: string }).question_id);
    return ids;
  }

  it("validates verl on held-out prompts of the RL set, never on the prompts it trains on", async () => {
    const ctx = await runWithRlDataset();
    const fakeVerl = { RECIPE_VERL_CMD: `${process.execPath} ${resolve("tests/helpers/fake-verl.mjs")}` };

    const r = launch(ctx.store as FsStore, ctx.runId, [], fakeVerl);

    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("validation: 1 of 7 prompts held out (seed 42), 6 to train on");
    const verl = JSON.parse(r.stdout.split("\n").find((l) => l.startsWith('{"resumedFrom"'))!) as {
      trainFiles: string;
      valFiles: string;
    };
    const files = (list: string) => list.slice(1, -1).split(",");
    const train = (await Promise.all(files(verl.trainFiles).map(rlRows))).flat();
    const val = (await Promise.all(files(verl.valFiles).map(rlRows))).flat();
    expect(val).toHaveLength(1);
    expect(train).toHaveLength(6);
    expect(train).not.toContain(val[0]);
  });
});

describe("multi-node training (an AWS Batch multi-node parallel job)", () => {
  /** One node of a job: the launcher as a child process with the environment Batch gives that node. */
  function node(store: FsStore, runId: string, index: number, nodes: number, args: string[], extra = {}) {
    const child = spawn(process.execPath, ["--import", "tsx", "batch-images/train-rl/src/main.ts", ...args], {
      env: {
        ...process.env,
        RECIPE_BUCKET: `file://${store.root}`,
        RECIPE_RUN_ID: runId,
        RECIPE_WORKDIR: mkdtempSync(join(tmpdir(), `train-node${index}-`)),
        RECIPE_VERIFY_CMD: `${process.execPath} ${resolve("bin/recipe.mjs")} verify`,
        RECIPE_MERGE_CMD: `${process.execPath} ${resolve("tests/helpers/fake-model-merger.mjs")}`,
        AWS_BATCH_JOB_ID: `job-1#${index}`,
        AWS_BATCH_JOB_ATTEMPT: "1",
        AWS_BATCH_JOB_NUM_NODES: String(nodes),
        AWS_BATCH_JOB_NODE_INDEX: String(index),
        AWS_BATCH_JOB_MAIN_NODE_INDEX: "0",
        ...(index === 0 ? {} : { AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS: "10.0.0.5" }),
        RECIPE_CLUSTER_POLL_MS: "100",
        ...extra,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    return new Promise<{ code: number | null; out: string }>((r) =>
      child.on("exit", (code) => r({ code, out })),
    );
  }

  it("a two-node dry run starts a head and a worker, and verl is told both nodes", async () => {
    const ctx = await runWithRlDataset({ nodes: 2 });

    const [main, worker] = await Promise.all([
      node(ctx.store as FsStore, ctx.runId, 0, 2, ["--dry-run", "--rows", "2"]),
      node(ctx.store as FsStore, ctx.runId, 1, 2, ["--dry-run"]),
    ]);

    expect(main.code, main.out).toBe(0);
    expect(worker.code, worker.out).toBe(0);
    expect(main.out).toContain("node 0: ray start --head --port=6379 --num-gpus=8");
    expect(main.out).toContain("cluster: 2 nodes joined the Ray head on node 0");
    expect(main.out).toContain("trainer.nnodes=2");
    expect(worker.out).toContain("node 1: ray start --address=10.0.0.5:6379 --num-gpus=8");
    expect(worker.out).toContain("the main node reports training succeeded");
  }, 60_000);

  it("fails the attempt as transient, naming the node that never joined", async () => {
    const ctx = await runWithRlDataset({ nodes: 2 });

    const main = await node(ctx.store as FsStore, ctx.runId, 0, 2, ["--dry-run"], {
      RECIPE_CLUSTER_JOIN_TIMEOUT_S: "1",
    });

    expect(main.code).toBe(75);
    expect(main.out).toContain("node(s) 1 never joined");
  }, 60_000);

  it("refuses a job whose node count is not training.rl.nodes", async () => {
    const ctx = await runWithRlDataset({ nodes: 4 });

    const main = await node(ctx.store as FsStore, ctx.runId, 0, 2, ["--dry-run"]);

    expect(main.code).toBe(3);
    expect(main.out).toContain("the job runs on 2 node(s) but training.rl.nodes is 4");
  }, 60_000);

  it("uploads every node's checkpoint shards and marks a step complete only when all nodes have", async () => {
    const ctx = await runWithRlDataset({ nodes: 2 });
    const fakeVerl = { RECIPE_VERL_CMD: `${process.execPath} ${resolve("tests/helpers/fake-verl.mjs")}` };
    // No Ray here: \`ray start\` stands in as a command that exits 0 (its arguments are checked above).
    const noRay = { RECIPE_RAY_CMD: `${process.execPath} -e 0`, RECIPE_CLUSTER_JOIN_TIMEOUT_S: "40" };
    // Worker shards: what verl's FSDP workers on node 1 write to that node's own disk.
    const workerDir = mkdtempSync(join(tmpdir(), "train-node1-"));
    mkdirSync(join(workerDir, "checkpoints", "global_step_16", "actor"), { recursive: true });
    writeFileSync(join(workerDir, "checkpoints", "global_step_16", "actor", "rank_8.pt"), "rank 8 shard");

    const [main, worker] = await Promise.all([
      node(ctx.store as FsStore, ctx.runId, 0, 2, [], { ...fakeVerl, ...noRay }),
      node(ctx.store as FsStore, ctx.runId, 1, 2, [], { RECIPE_WORKDIR: workerDir, ...noRay }),
    ]);

    expect(main.code, main.out).toBe(0);
    expect(worker.code, worker.out).toBe(0);
    const prefix = `${keys.stagePrefix(ctx.runId, "train-rl")}checkpoints/global_step_16/`;
    const saved = await listAll(ctx.store, prefix);
    expect(saved).toEqual(
      expect.arrayContaining([
        `${prefix}actor/weights.bin`,
        `${prefix}actor/rank_8.pt`,
        `${prefix}_NODE_0`,
        `${prefix}_NODE_1`,
        `${prefix}_COMPLETE`,
      ]),
    );
  }, 60_000);
  it("every node's `ray start` and verl's Ray workers get the run's verifier preset and NCCL's and Gloo's interfaces", async () => {
    const ctx = await runWithRlDataset({ nodes: 2 }, { verification: { extractionPreset: "recipe" } });
    const record = join(mkdtempSync(join(tmpdir(), "ray-")), "ray.jsonl");
    const ray = {
      RECIPE_RAY_CMD: `${process.execPath} ${resolve("tests/helpers/record-ray.mjs")}`,
      RECIPE_RAY_RECORD: record,
      RECIPE_CLUSTER_JOIN_TIMEOUT_S: "40",
      // The job's own value (a submission's container override) wins over the default.
      NCCL_SOCKET_IFNAME: "eth0",
      GLOO_SOCKET_IFNAME: "",
    };
    const fakeVerl = { RECIPE_VERL_CMD: `${process.execPath} ${resolve("tests/helpers/fake-verl.mjs")}` };

    // verl writes each node's shards of a checkpoint on that node: the worker's of the step the fake
    // verl saves on the main node, so the step completes and the main node can export the model.
    const workerDir = mkdtempSync(join(tmpdir(), "train-node1-"));
    mkdirSync(join(workerDir, "checkpoints", "global_step_16", "actor"), { recursive: true });
    writeFileSync(join(workerDir, "checkpoints", "global_step_16", "actor", "shard-1.bin"), "rank 1");

    const [main, worker] = await Promise.all([
      node(ctx.store as FsStore, ctx.runId, 0, 2, [], { ...fakeVerl, ...ray }),
      node(ctx.store as FsStore, ctx.runId, 1, 2, [], { ...ray, RECIPE_WORKDIR: workerDir }),
    ]);

    expect(main.code, main.out).toBe(0);
    expect(worker.code, worker.out).toBe(0);
    const starts = readFileSync(record, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(starts.map((s) => s.argv[1])).toEqual(
      expect.arrayContaining(["--head", "--address=10.0.0.5:6379"]),
    );
    // Gloo takes an interface name, not NCCL's exclusion list: the default list picks this host's.
    const gloo = glooInterface(DEFAULT_SOCKET_IFNAME, networkInterfaces());
    const glooEnv = gloo ? { GLOO_SOCKET_IFNAME: gloo } : {};
    for (const s of starts)
      expect(s.env).toEqual({ NCCL_SOCKET_IFNAME: "eth0", ...glooEnv, RECIPE_VERIFY_PRESET: "recipe" });
    const verl = JSON.parse(main.out.split("\n").find((l) => l.startsWith('{"resumedFrom"'))!);
    expect(verl.env.RECIPE_VERIFY_PRESET).toBe("recipe");
    expect(verl.runtimeEnv).toEqual({
      NCCL_SOCKET_IFNAME: "eth0",
      ...glooEnv,
      RECIPE_VERIFY_PRESET: "recipe",
    });
  }, 60_000);

  it("every node keeps at most training.rl.maxCheckpointsToKeep checkpoints on its disk; S3 has them all", async () => {
    const ctx = await runWithRlDataset({ nodes: 2, maxCheckpointsToKeep: 1 });
    const fakeVerl = { RECIPE_VERL_CMD: `${process.execPath} ${resolve("tests/helpers/fake-verl.mjs")}` };
    const noRay = { RECIPE_RAY_CMD: `${process.execPath} -e 0`, RECIPE_CLUSTER_JOIN_TIMEOUT_S: "40" };
    // Three saves' shards on node 1's own disk (verl deletes old ones on rank 0, node 0, only).
    const workerDir = mkdtempSync(join(tmpdir(), "train-node1-"));
    for (const step of [16, 32, 48]) {
      mkdirSync(join(workerDir, "checkpoints", `global_step_${step}`, "actor"), { recursive: true });
      writeFileSync(join(workerDir, "checkpoints", `global_step_${step}`, "actor", "rank_8.pt"), `${step}`);
    }

    const [main, worker] = await Promise.all([
      node(ctx.store as FsStore, ctx.runId, 0, 2, [], { ...fakeVerl, ...noRay }),
      node(ctx.store as FsStore, ctx.runId, 1, 2, [], { RECIPE_WORKDIR: workerDir, ...noRay }),
    ]);

    expect(main.code, main.out).toBe(0);
    expect(worker.code, worker.out).toBe(0);
    expect(readdirSync(join(workerDir, "checkpoints")).filter((d) => d.startsWith("global_step_"))).toEqual([
      "global_step_48",
    ]);
    const saved = await listAll(ctx.store, `${keys.stagePrefix(ctx.runId, "train-rl")}checkpoints/`);
    for (const step of [16, 32, 48])
      expect(saved).toContain(
        `${keys.stagePrefix(ctx.runId, "train-rl")}checkpoints/global_step_${step}/actor/rank_8.pt`,
      );
  }, 60_000);
});
