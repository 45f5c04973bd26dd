import { describe, expect, it } from "vitest";
import { checkRow } from "../../batch-images/train-sft/src/launcher.ts";
import { modelCard, sampleCurve, sparkline } from "../../batch-images/train-sft/src/model-card.ts";
import { resolveRunConfig } from "../../core/config/index.ts";
import { lmmsCheckpoint, newestCompleteStep, nodeRanks } from "../../core/train/checkpoints.ts";
import { nodeRole, trainingEnv } from "../../core/train/cluster.ts";
import {
  lmmsEngineConfig,
  lmmsEngineEnv,
  parseMetricsLine,
  torchrunCommand,
  torchrunNodeRank,
  toYaml,
} from "../../core/train/lmms-engine.ts";

const config = resolveRunConfig({
  runId: "r",
  sources: { sft: [{ name: "a", uri: "s3://b/a/", format: "jsonl", domain: "general_vqa", license: "x" }] },
  training: { sft: { enabled: true } },
} as never);
const paths = {
  datasets: [
    { path: "/w/data/sft/lmms-engine/sft-00000-00000.parquet", dataFolder: "/w/data/sft" },
    { path: "/w/data/sft/lmms-engine/sft-00001-00000.parquet", dataFolder: "/w/data/sft" },
  ],
  modelPath: "/w/model",
  outputDir: "/w/output",
};

describe("lmms-engine SFT configuration", () => {
  // RECIPE.md "Stage 1b", and the repository's examples/openmmreasoner/sft_example_config.yaml.
  it("renders the recipe's stage 1b settings, field by field", () => {
    const c = lmmsEngineConfig(config.training.sft, paths);
    expect(c.trainer_type).toBe("fsdp2_trainer");
    const d = c.dataset_config;
    expect(d.dataset_type).toBe("vision_iterable");
    expect(d.dataset_format).toBe("yaml");
    expect(d.datasets).toEqual(
      paths.datasets.map((p) => ({ path: p.path, data_folder: p.dataFolder, data_type: "parquet" })),
    );
    expect(d.processor_config).toEqual({
      processor_name: "/w/model",
      processor_type: "qwen2_5_vl",
      extra_kwargs: { image_max_pixels: 4_194_304 },
    });
    expect(d.extra_kwargs).toEqual({ image_max_pixels: 4_194_304 });
    expect(d.packing).toBe(true);
    expect(d.packing_strategy).toBe("first_fit");
    expect(d.packing_length).toBe(61_440);
    expect(d.filter_overlong).toBe(true);
    expect(d.shuffle).toBe(true);
    expect(c.model_config).toEqual({
      load_from_pretrained_path: "/w/model",
      attn_implementation: "flash_attention_2",
    });
    const t = c.trainer_args;
    expect(t.learning_rate).toBe(5e-5);
    expect(t.lr_scheduler_type).toBe("cosine");
    expect(t.warmup_ratio).toBe(0.1);
    expect(t.weight_decay).toBe(0);
    expect(t.per_device_train_batch_size).toBe(1);
    expect(t.gradient_accumulation_steps).toBe(1);
    expect(t.max_steps).toBe(4300);
    expect(t.num_train_epochs).toBe(1);
    expect(t.bf16).toBe(true);
    expect(t.gradient_checkpointing).toBe(true);
    expect(t.use_liger_kernel).toBe(true);
    expect(t.use_rmpad).toBe(true);
    expect(t.fsdp2).toBe(true);
    expect(t.fsdp_config).toEqual({
      transformer_layer_cls_to_wrap: ["Qwen2_5_VLDecoderLayer"],
      reshard_after_forward: false,
    });
    expect(t.sp_ulysses_degree).toBe(1);
    expect(t.save_steps).toBe(2000);
    expect(t.save_total_limit).toBe(3);
    expect(t.output_dir).toBe("/w/output");
    expect(t.use_cpu).toBe(false);
    expect(t.report_to).toBe("none");
    // The published scale: 4 nodes of 8 GPUs.
    expect(config.training.sft.nodes * config.training.sft.gpusPerNode).toBe(32);
  });

  it("a CPU run changes only what needs CUDA", () => {
    const gpu = lmmsEngineConfig(config.training.sft, paths);
    const cpu = lmmsEngineConfig(config.training.sft, paths, { device: "cpu" });
    expect(cpu.dataset_config).toEqual(gpu.dataset_config);
    expect(cpu.model_config.attn_implementation).toBe("sdpa");
    const changed = Object.keys({ ...gpu.trainer_args, ...cpu.trainer_args }).filter(
      (k) => JSON.stringify(gpu.trainer_args[k]) !== JSON.stringify(cpu.trainer_args[k]),
    );
    expect(changed.sort()).toEqual(
      [
        "dataloader_num_workers",
        "dataloader_prefetch_factor",
        "use_cpu",
        "use_liger_kernel",
        "use_rmpad",
      ].sort(),
    );
  });

  it("writes YAML whose floats PyYAML reads as floats (a dot and a signed exponent)", () => {
    expect(toYaml({ a: 5e-5, b: 1e-7, c: 0.1, d: 4300, e: 1.5e21, f: "x", g: [true, null] })).toBe(
      '{\n  "a": 5.0e-5,\n  "b": 1.0e-7,\n  "c": 1.0e-1,\n  "d": 4300,\n  "e": 1.5e+21,\n  "f": "x",\n  "g": [\n    true,\n    null\n  ]\n}\n',
    );
    expect(() => toYaml({ a: Number.NaN })).toThrow(/finite/);
  });

  it("starts torchrun from Batch's node variables, the main node as rank 0", () => {
    const single = torchrunCommand("python3", nodeRole({}), 8, "/w/c.yaml");
    expect(single).toEqual([
      "python3",
      "-m",
      "torch.distributed.run",
      "--standalone",
      "--nnodes=1",
      "--nproc_per_node=8",
      "-m",
      "lmms_engine.launch.cli",
      "config_yaml=/w/c.yaml",
    ]);
    const env = {
      AWS_BATCH_JOB_NUM_NODES: "4",
      AWS_BATCH_JOB_MAIN_NODE_INDEX: "1",
      AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS: "10.0.0.7",
    };
    const main = nodeRole({ ...env, AWS_BATCH_JOB_NODE_INDEX: "1" });
    const other = nodeRole({ ...env, AWS_BATCH_JOB_NODE_INDEX: "0" });
    expect(torchrunNodeRank(main)).toBe(0);
    expect(torchrunNodeRank(other)).toBe(3);
    expect(torchrunCommand("python3", other, 8, "/c")).toEqual(
      expect.arrayContaining([
        "--nnodes=4",
        "--node_rank=3",
        "--master_addr=10.0.0.7",
        "--master_port=29500",
        "--nproc_per_node=8",
      ]),
    );
    expect(torchrunCommand("python3", main, 8, "/c")).toContain("--master_addr=127.0.0.1");
    expect(nodeRanks(3, 8)).toEqual([24, 25, 26, 27, 28, 29, 30, 31]);
  });

  it("sets the repository's launch environment and the socket interfaces", () => {
    const nics = {
      lo: [{ family: "IPv4", internal: true }],
      docker0: [{ family: "IPv4", internal: false }],
      "ecs-eth0": [{ family: "IPv4", internal: false }],
      eth0: [{ family: "IPv4", internal: false }],
    };
    // Gloo takes names, not NCCL's exclusion list: the list picks the interface (trainingEnv, for
    // both trainers), and a plain name given wins.
    expect(lmmsEngineEnv(trainingEnv({}, { verifyPreset: "strict" }, nics))).toMatchObject({
      NCCL_SOCKET_IFNAME: "^lo,docker,ecs",
      GLOO_SOCKET_IFNAME: "eth0",
    });
    expect(
      trainingEnv({ GLOO_SOCKET_IFNAME: "ens5" }, { verifyPreset: "strict" }, nics).GLOO_SOCKET_IFNAME,
    ).toBe("ens5");
    // No interface but loopback: Gloo is left to resolve the host name itself.
    expect(trainingEnv({}, { verifyPreset: "strict" }, { lo: nics.lo })).not.toHaveProperty(
      "GLOO_SOCKET_IFNAME",
    );
    expect(lmmsEngineEnv({ NCCL_SOCKET_IFNAME: "eth0", GLOO_SOCKET_IFNAME: "eth0" })).toMatchObject({
      HF_HUB_OFFLINE: "1",
      NCCL_BLOCKING_WAIT: "0",
      TOKENIZERS_PARALLELISM: "false",
      FORCE_QWENVL_VIDEO_READER: "decord",
      NCCL_SOCKET_IFNAME: "eth0",
      GLOO_SOCKET_IFNAME: "eth0",
    });
  });

  it("reads lmms-engine's console metrics", () => {
    expect(
      parseMetricsLine(
        "{'train/loss': 6.2383, 'train/lr': 5e-05, 'train/grad_norm': 3.12, 'train/mfu': 0.0, 'train/total_tokens': '1.2K'}, step=3",
      ),
    ).toEqual({ step: 3, loss: 6.2383, lr: 5e-5, gradNorm: 3.12 });
    expect(parseMetricsLine("Training:  50%|#####     | 1/2")).toBeNull();
  });
});

describe("train-sft checkpoints", () => {
  it("resumes only from a step with _COMPLETE", () => {
    const p = "runs/r/train-sft/checkpoints/";
    expect(newestCompleteStep([`${p}2000/_COMPLETE`, `${p}4000/_NODE_0`, `${p}4000/config.json`], p)).toBe(
      2000,
    );
    expect(newestCompleteStep([`${p}4000/_NODE_0`], p)).toBeNull();
  });

  it("a node restores only its own ranks' shards", () => {
    expect(lmmsCheckpoint.wanted("pytorch_model_fsdp_0/model_world_size_32_rank_9.pt", [8, 9])).toBe(true);
    expect(lmmsCheckpoint.wanted("optimizer/optimizer_world_size_32_rank_10.pt", [8, 9])).toBe(false);
    expect(lmmsCheckpoint.wanted("config.json", [8, 9])).toBe(true);
    expect(lmmsCheckpoint.worldSize(["config.json", "extra_state/extra_state_world_size_16_rank_0.pt"])).toBe(
      16,
    );
  });
});

describe("the SFT rows and the model card", () => {
  it("checks the lmms-engine layout's rows", () => {
    const good = {
      id: "a",
      messages: [
        { role: "system", content: [{ type: "text", text: "s", image_url: null }] },
        {
          role: "user",
          content: [
            { type: "image_url", text: null, image_url: { url: "images/x.png" } },
            { type: "text", text: "q" },
          ],
        },
        { role: "assistant", content: [{ type: "text", text: "<think>t</think><answer>1</answer>" }] },
      ],
    };
    expect(checkRow(good, "r")).toEqual({ problems: [], images: ["images/x.png"] });
    const bad = {
      id: "",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "../x.png" } }] }],
    };
    expect(checkRow(bad, "r").problems).toEqual([
      "r: id is missing",
      "r: image path ../x.png is not relative to the dataset folder",
      "r: the last turn is not the assistant's",
    ]);
  });

  it("writes the settings, steps, loss curve, wall time and GPU hours", () => {
    const metrics = Array.from({ length: 100 }, (_, i) => ({ step: i + 1, loss: 2 - i / 100, lr: 5e-5 }));
    expect(sampleCurve(metrics, 5).map((m) => m.step)).toEqual([1, 26, 51, 75, 100]);
    expect(sparkline([1, 2, 3])).toBe("▁▅█");
    const card = modelCard({
      runId: "r",
      bucket: "pipeline-bucket",
      dataCard: "runs/r/datasets/sft/README.md",
      sft: config.training.sft,
      device: "cuda",
      lmmsEngineVersion: "0.1.2",
      steps: 4300,
      rows: 874_357,
      nodes: 4,
      procsPerNode: 8,
      log: {
        attempts: [
          { startedAt: "t0", seconds: 3600, fromStep: 0 },
          { startedAt: "t1", seconds: 7200, fromStep: 2000 },
        ],
        metrics,
      },
    });
    expect(card).toContain("s3://pipeline-bucket/runs/r/datasets/sft/README.md");
    expect(card).toContain("- Steps: 4300 (2 attempts; resumed from step 2000)");
    expect(card).toContain("- GPU hours: 96.0");
    expect(card).toContain("| `packingLength` | 61440 |");
    expect(card).toContain("| 100 | 1.0100 | 5.000e-5 |  |");
  });
});
