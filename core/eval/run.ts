/**
 * What the evaluate job runs, pure: which models (base, SFT, RL) it evaluates and where each comes
 * from, the `vllm serve` arguments for one, and the lmms-eval command for one (model, task). The
 * launcher (batch-images/evaluate/src/launcher.ts) executes these; tests check them.
 */
import type { RunConfig } from "../config/schema.ts";
import { InputContractError } from "../errors.ts";
import { EVAL_MODELS, type EvalModel, keys, type TrainedModel } from "../layout/index.ts";
import { type EvalBenchmark, evalBenchmark, unknownTasks } from "./tasks.ts";

export interface EvalTarget {
  model: EvalModel;
  /** A model id (the Hub) or an `s3://bucket/prefix/` Hugging Face folder. */
  uri: string;
}

/**
 * The evaluated `base`: `training.sft.baseModel`, the model the recipe starts from, whether or not
 * SFT trains here (an RL start model given explicitly is a trained checkpoint, not the base).
 */
export function baseModelOf(config: RunConfig): string {
  return config.training.sft.baseModel;
}

/** `s3://<bucket>/runs/<id>/models/<m>/`, the folder train-sft and train-rl export to. */
export function trainedModelUri(bucket: string, runId: string, model: TrainedModel): string {
  return `s3://${bucket}/${keys.modelPrefix(runId, model)}`;
}

/**
 * The models to evaluate: `evaluation.models`, or by default every one the run has (base always; sft
 * and rl when their folder holds a config.json). A model named explicitly that the run has not
 * exported is refused rather than skipped.
 */
export function evalTargets(
  config: RunConfig,
  bucket: string,
  runId: string,
  exported: ReadonlySet<TrainedModel>,
): EvalTarget[] {
  const asked = config.evaluation.models;
  const models = asked ?? EVAL_MODELS.filter((m) => m === "base" || exported.has(m as TrainedModel));
  const missing = models.filter((m) => m !== "base" && !exported.has(m as TrainedModel));
  if (missing.length > 0)
    throw new InputContractError(
      `evaluation.models names ${missing.join(", ")}, but ${missing.map((m) => keys.modelPrefix(runId, m as TrainedModel)).join(", ")} has no config.json: that training has not exported a model`,
    );
  return EVAL_MODELS.filter((m) => models.includes(m)).map((model) => ({
    model,
    uri: model === "base" ? baseModelOf(config) : trainedModelUri(bucket, runId, model as TrainedModel),
  }));
}

/** The run's benchmarks, refusing any this project has no definition for. */
export function evalBenchmarks(config: RunConfig): EvalBenchmark[] {
  const problems = unknownTasks(config.evaluation.tasks);
  if (problems.length > 0) throw new InputContractError(problems.join("; "));
  return config.evaluation.tasks.map((t) => evalBenchmark(t)!);
}

/** Images one prompt may carry across the benchmarks (vLLM's `--limit-mm-per-prompt`). */
export function maxImagesPerPrompt(benchmarks: readonly EvalBenchmark[]): number {
  return Math.max(1, ...benchmarks.map((b) => b.columns.images.length));
}

export interface LmmsEvalPaths {
  /** The run_lmms_eval.py entry (lmms-eval's CLI with the job's model type registered). */
  entry: string;
  /** The rendered task folder (--include_path). */
  tasksDir: string;
  /** lmms-eval's --output_path for this (model, task). */
  outputDir: string;
}

/**
 * The lmms-eval command for one (model, task): its OpenAI-compatible model type against `baseUrl`
 * (vLLM in the job, or any endpoint), `--log_samples`, greedy, the run's generation limit and
 * requests in flight.
 */
export function lmmsEvalCommand(
  python: string,
  config: RunConfig,
  target: { served: string; baseUrl: string },
  task: string,
  paths: LmmsEvalPaths,
): string[] {
  const e = config.evaluation;
  const modelArgs = [
    `model_version=${target.served}`,
    `base_url=${target.baseUrl}`,
    "api_key=EMPTY",
    `max_new_tokens=${e.maxNewTokens}`,
    "max_retries=5",
    // lmms-eval's pause between retries (s); the HTTP timeout of one answer is request_timeout (s).
    "timeout=10",
    "request_timeout=3600",
  ].join(",");
  return [
    python,
    paths.entry,
    "--model",
    "recipe_openai_compatible",
    "--model_args",
    modelArgs,
    "--tasks",
    task,
    "--include_path",
    paths.tasksDir,
    // The model type's requests in flight per batch (lmms-eval passes --batch_size to the model).
    "--batch_size",
    String(e.batchSize),
    "--output_path",
    paths.outputDir,
    "--log_samples",
    "--verbosity",
    "INFO",
    ...(e.limit !== undefined ? ["--limit", String(e.limit)] : []),
  ];
}

/** The `vllm serve` arguments beyond the plan's (core/generate/serve-plan.ts) for one model. */
export function vllmServeArgs(
  modelPath: string,
  served: string,
  port: number,
  config: RunConfig,
  planArgs: readonly string[],
): string[] {
  return [
    "serve",
    modelPath,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--served-model-name",
    served,
    "--gpu-memory-utilization",
    String(config.evaluation.gpuMemoryUtilization),
    ...planArgs,
  ];
}
