/**
 * lmms-engine SFT configuration from run.json (RECIPE.md stage 1b; the recipe repository's
 * examples/openmmreasoner/sft_example_config.yaml): the one YAML `lmms_engine.launch.cli` reads with
 * `config_yaml=<file>`, and the `torchrun` command that starts it on every node. Pure: the train-sft
 * launcher writes and runs what this returns, and its dry run prints it.
 *
 * lmms-engine 0.1.2's cli merges `config_yaml` into its defaults one top-level key at a time
 * (`config.update(yaml)`), so every section here is complete: what it leaves out takes the pydantic
 * / TrainingArguments default, never a default_config.yaml value.
 */
import type { RunConfig } from "../config/schema.ts";
import type { NodeRole } from "./cluster.ts";

type Sft = RunConfig["training"]["sft"];

export interface LmmsPaths {
  /** The SFT set's Parquet files (lmms-engine layout), each with the folder its image paths are relative to. */
  datasets: { path: string; dataFolder: string }[];
  /** The model to train: a local Hugging Face folder or a model id. */
  modelPath: string;
  /** Where the processor (tokenizer, image processor, chat template) is read from; the model's by default. */
  processorPath?: string;
  /** lmms-engine's `output_dir`: its `checkpoint-<step>/` folders go here. */
  outputDir: string;
}

/**
 * Where the job runs. `cuda` is the image (the recipe's settings as published); `cpu` is this
 * project's local check of the same lmms-engine code (gloo, one process; no flash-attention, liger
 * kernels or remove-padding, which need CUDA): CPU_OVERRIDES.
 */
export type LmmsDevice = "cuda" | "cpu";

/** The lmms-engine trainer argument names a CPU run changes, and why (the note and the dry run print them). */
export const CPU_OVERRIDES: Record<string, string> = {
  use_cpu: "gloo instead of NCCL",
  use_liger_kernel: "liger's Triton kernels need a GPU",
  use_rmpad: "remove-padding runs flash-attention's varlen kernels",
  attn_implementation: "sdpa instead of flash_attention_2",
  dataloader_num_workers: "0: the loader runs in the training process",
};

export interface LmmsEngineConfig {
  trainer_type: "fsdp2_trainer";
  dataset_config: Record<string, unknown>;
  model_config: Record<string, unknown>;
  trainer_args: Record<string, unknown>;
}

/** The architecture the rendered config trains (config.json `architectures[0]`). */
export const QWEN25VL_ARCHITECTURE = "Qwen2_5_VLForConditionalGeneration";
/** The repository's FSDP2 wrap unit for Qwen2.5-VL. */
export const QWEN25VL_DECODER_LAYER = "Qwen2_5_VLDecoderLayer";

export function lmmsEngineConfig(
  sft: Sft,
  paths: LmmsPaths,
  options: { device?: LmmsDevice; runName?: string } = {},
): LmmsEngineConfig {
  const cpu = options.device === "cpu";
  return {
    trainer_type: "fsdp2_trainer",
    dataset_config: {
      dataset_type: "vision_iterable",
      dataset_format: "yaml",
      datasets: paths.datasets.map((d) => ({
        path: d.path,
        data_folder: d.dataFolder,
        data_type: "parquet",
      })),
      processor_config: {
        processor_name: paths.processorPath ?? paths.modelPath,
        processor_type: "qwen2_5_vl",
        // lmms-engine's Qwen2.5-VL processor reads image_max_pixels from the *processor's* extra_kwargs
        // (datasets/processor/qwen2_5_vl_processor.py); the repository's YAML puts it under
        // dataset_config.extra_kwargs, where nothing reads it. Both places carry it here.
        extra_kwargs: { image_max_pixels: sft.imageMaxPixels },
      },
      extra_kwargs: { image_max_pixels: sft.imageMaxPixels },
      shuffle: true,
      data_seed: 42,
      eval_dataset_path: null,
      object_storage: "none",
      packing: true,
      packing_strategy: "first_fit",
      packing_length: sft.packingLength,
      filter_overlong: true,
      filter_overlong_workers: 8,
      fps: 1,
      video_backend: "qwen_vl_utils",
    },
    model_config: {
      load_from_pretrained_path: paths.modelPath,
      attn_implementation: cpu ? "sdpa" : "flash_attention_2",
    },
    trainer_args: {
      per_device_train_batch_size: sft.perDeviceBatchSize,
      learning_rate: sft.learningRate,
      weight_decay: sft.weightDecay,
      gradient_accumulation_steps: sft.gradientAccumulationSteps,
      gradient_checkpointing: sft.gradientCheckpointing,
      max_steps: sft.maxSteps,
      num_train_epochs: sft.epochs,
      save_steps: sft.saveSteps,
      save_total_limit: sft.saveTotalLimit,
      report_to: "none",
      output_dir: paths.outputDir,
      warmup_ratio: sft.warmupRatio,
      run_name: options.runName ?? "recipe-sft",
      eval_strategy: "no",
      logging_steps: 1,
      group_by_length: false,
      dataloader_num_workers: cpu ? 0 : 4,
      ...(cpu ? {} : { dataloader_prefetch_factor: 4 }),
      bf16: true,
      lr_scheduler_type: sft.lrScheduler,
      use_liger_kernel: cpu ? false : sft.useLiger,
      use_rmpad: cpu ? false : sft.useRmpad,
      use_cpu: cpu,
      fsdp2: true,
      fsdp_config: { transformer_layer_cls_to_wrap: [QWEN25VL_DECODER_LAYER], reshard_after_forward: false },
      sp_ulysses_degree: sft.sequenceParallelSize,
    },
  };
}

/**
 * YAML that PyYAML's safe_load reads back as the same values: JSON flow style, with every
 * non-integer number written with a dot and a signed exponent (PyYAML's YAML 1.1 float rule reads
 * `1e-07` as a string, which TrainingArguments would then refuse).
 */
export function toYaml(value: unknown): string {
  const render = (v: unknown, indent: string): string => {
    if (v === null || v === undefined) return "null";
    if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new Error(`not a finite number: ${v}`);
      if (Number.isInteger(v)) return String(v);
      const [mantissa, exp] = v.toExponential().split("e") as [string, string];
      return `${mantissa.includes(".") ? mantissa : `${mantissa}.0`}e${exp.startsWith("-") ? exp : `+${exp.replace("+", "")}`}`;
    }
    if (typeof v === "string" || typeof v === "boolean") return JSON.stringify(v);
    const inner = `${indent}  `;
    if (Array.isArray(v))
      return v.length === 0 ? "[]" : `[\n${v.map((x) => inner + render(x, inner)).join(",\n")}\n${indent}]`;
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    if (entries.length === 0) return "{}";
    return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${render(x, inner)}`).join(",\n")}\n${indent}}`;
  };
  return `${render(value, "")}\n`;
}

/** The rendezvous port of the main node's torchrun (static rendezvous, as the repository's launch script). */
export const TORCHRUN_PORT = 29500;

/**
 * torchrun's node rank: the main node is 0 (it hosts the rendezvous store), the others follow in
 * Batch's node order.
 */
export function torchrunNodeRank(role: NodeRole): number {
  return (role.index - role.mainIndex + role.nodes) % role.nodes;
}

/**
 * `python -m torch.distributed.run` (torchrun) of `lmms_engine.launch.cli` on this node. One process
 * per GPU; on a multi-node job the main node's private address (Batch gives it to the other nodes;
 * the main node uses its own loopback) is the rendezvous.
 */
export function torchrunCommand(
  python: string,
  role: NodeRole,
  procsPerNode: number,
  configPath: string,
): string[] {
  const rendezvous =
    role.nodes > 1
      ? [
          `--nnodes=${role.nodes}`,
          `--node_rank=${torchrunNodeRank(role)}`,
          `--master_addr=${role.isMain ? "127.0.0.1" : (role.mainAddress ?? "")}`,
          `--master_port=${TORCHRUN_PORT}`,
        ]
      : ["--standalone", "--nnodes=1"];
  return [
    python,
    "-m",
    "torch.distributed.run",
    ...rendezvous,
    `--nproc_per_node=${procsPerNode}`,
    "-m",
    "lmms_engine.launch.cli",
    `config_yaml=${configPath}`,
  ];
}

/**
 * The environment of every lmms-engine process (the repository's launch script's, plus the network
 * interfaces of core/train/cluster.ts trainingEnv: NCCL's exclusion list, Gloo's resolved name).
 */
export function lmmsEngineEnv(clusterEnv: Record<string, string>): Record<string, string> {
  const gloo = clusterEnv.GLOO_SOCKET_IFNAME;
  return {
    HF_HUB_OFFLINE: "1",
    NCCL_BLOCKING_WAIT: "0",
    TOKENIZERS_PARALLELISM: "false",
    FORCE_QWENVL_VIDEO_READER: "decord",
    NCCL_SOCKET_IFNAME: clusterEnv.NCCL_SOCKET_IFNAME ?? "",
    ...(gloo ? { GLOO_SOCKET_IFNAME: gloo } : {}),
    // lmms-engine prints every step's metrics; no wandb login in a Batch job.
    WANDB_MODE: "disabled",
  };
}

/** lmms-engine's checkpoint folders: `checkpoint-<step>`. */
export function checkpointStep(dir: string): number | null {
  const m = /(?:^|\/)checkpoint-(\d+)(?:\/|$)/.exec(dir);
  return m ? Number(m[1]) : null;
}

/** One step's metrics as lmms-engine's console tracker prints them: `{'train/loss': 1.2, ...}, step=3`. */
export interface StepMetrics {
  step: number;
  loss: number;
  lr?: number;
  gradNorm?: number;
}

/** Parses one line of lmms-engine's output; null for any other line. */
export function parseMetricsLine(line: string): StepMetrics | null {
  const m = /^\{.*'train\/loss':\s*([-+0-9.eE]+|nan|inf).*\},\s*step=(\d+)\s*$/.exec(line.trim());
  if (!m) return null;
  const num = (name: string) => {
    const r = new RegExp(`'${name}':\\s*([-+0-9.eE]+)`).exec(line);
    return r ? Number(r[1]) : undefined;
  };
  return { step: Number(m[2]), loss: Number(m[1]), lr: num("train/lr"), gradNorm: num("train/grad_norm") };
}
