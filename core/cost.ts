/**
 * The cost model behind `recipe estimate` and the report: GPU hours from token counts and a serving
 * throughput per instance type, at public on-demand list prices. It is an estimate, labelled as one
 * everywhere it is shown; every assumption is an input.
 */
import type { RunConfig } from "./config/schema.ts";

/** us-east-1 on-demand list prices (USD per hour), as published in mid-2025. Spot is usually far lower. */
export const ON_DEMAND_USD_PER_HOUR: Record<string, number> = {
  "g6e.xlarge": 1.861,
  "g6e.2xlarge": 2.242,
  "g6e.12xlarge": 10.493,
  "g6e.24xlarge": 15.066,
  "g6e.48xlarge": 30.131,
  "p4d.24xlarge": 21.958,
  "p5.48xlarge": 55.04,
};

/** Assumed output tokens per second one job's vLLM server sustains, by instance type (override per run). */
export const ASSUMED_TOKENS_PER_SECOND: Record<string, number> = {
  "g6e.xlarge": 800,
  "g6e.2xlarge": 900,
  "g6e.12xlarge": 2500,
  "g6e.24xlarge": 3000,
  "g6e.48xlarge": 5000,
  "p4d.24xlarge": 6000,
  "p5.48xlarge": 12000,
};

export const SPOT_DISCOUNT = 0.6;

/**
 * SFT training throughput assumed per GPU (p5-class H100, a 7B vision-language model, packed
 * sequences, gradient checkpointing): each step trains one `packingLength` pack per GPU, so a step
 * takes packingLength / this many seconds whatever the GPU count. The recipe publishes no wall time.
 */
export const SFT_TOKENS_PER_GPU_SECOND = 4000;
/** Evaluation: output tokens per second of one job (vLLM, a 7B model, 8 data-parallel replicas). */
export const EVAL_TOKENS_PER_SECOND = 20000;
/** Questions per benchmark when evaluation.limit is not set (MathVista testmini: 1,000; MMMU val: 900). */
export const EVAL_QUESTIONS_PER_TASK = 1000;
/** Average tokens of an evaluated answer (reasoning, up to evaluation.maxNewTokens). */
export const EVAL_ANSWER_TOKENS = 3000;
/** Loading and serving one model in the evaluate job (staging the weights, vLLM's start), hours. */
const EVAL_MODEL_LOAD_HOURS = 0.25;
const LAMBDA_USD_PER_GB_SECOND = 0.0000133334; // arm64
const S3_USD_PER_GB_MONTH = 0.023;

/**
 * The instance a generate job runs on when none is named: the default teacher (Qwen3-VL-235B, ~470 GB
 * of BF16 weights) needs 8 x 80 GB, which of the stack's default instance types only p5.48xlarge has.
 */
export const DEFAULT_ESTIMATE_INSTANCE = "p5.48xlarge";

export type Capacity = "spot" | "on-demand" | "spot-then-on-demand";

export interface EstimateInput {
  /** The instance type the distill jobs run on (of the queue that holds the teacher). @default p5.48xlarge */
  instanceType?: string;
  /** The instance type the rollout jobs run on (of the queue that holds the policy). @default instanceType */
  rolloutInstanceType?: string;
  /** Which capacity prices the GPU hours; the deployed queue tries spot first. @default spot-then-on-demand (priced on demand) */
  capacity?: Capacity;
  sftQuestions: number;
  rlQuestions: number;
  avgTeacherTokens: number;
  avgRolloutTokens: number;
  tokensPerSecond?: number;
  /** Questions per evaluated benchmark. @default evaluation.limit, else EVAL_QUESTIONS_PER_TASK */
  evalQuestionsPerTask?: number;
}

export interface CostLine {
  stage: string;
  what: string;
  hours: number;
  usd: number;
}

export interface Estimate {
  label: string;
  instanceType: string;
  rolloutInstanceType: string;
  lines: CostLine[];
  totalUsd: number;
  assumptions: Record<string, number | string>;
}

export function estimateCost(config: RunConfig, input: EstimateInput): Estimate {
  const instanceType = input.instanceType ?? DEFAULT_ESTIMATE_INSTANCE;
  const rolloutInstanceType = input.rolloutInstanceType ?? instanceType;
  const capacity = input.capacity ?? "spot-then-on-demand";
  const hourly = (type: string) => {
    const price = ON_DEMAND_USD_PER_HOUR[type] ?? 30;
    return capacity === "spot" ? price * (1 - SPOT_DISCOUNT) : price;
  };
  const throughput = (type: string) => input.tokensPerSecond ?? ASSUMED_TOKENS_PER_SECOND[type] ?? 3000;
  const effective = hourly(instanceType);
  const tps = throughput(instanceType);
  const teacherTokens = input.sftQuestions * config.teacher.samplesPerQuestion * input.avgTeacherTokens;
  const rolloutTokens = config.rl.enabled
    ? input.rlQuestions * config.rl.rolloutsPerQuestion * input.avgRolloutTokens
    : 0;
  const lines: CostLine[] = [];
  const gpu = (stage: string, tokens: number, type: string, what: string) => {
    const hours = tokens / throughput(type) / 3600;
    lines.push({ stage, what, hours, usd: hours * hourly(type) });
  };
  gpu(
    "distill",
    teacherTokens,
    instanceType,
    `${teacherTokens.toExponential(2)} teacher tokens on ${instanceType}`,
  );
  gpu(
    "estimate-difficulty",
    rolloutTokens,
    rolloutInstanceType,
    `${rolloutTokens.toExponential(2)} rollout tokens on ${rolloutInstanceType}`,
  );
  const evalAssumptions: Record<string, number | string> = {};
  const sft = config.training.sft;
  if (sft.enabled) {
    // One pack per GPU per step, gradient accumulation and batch per device as configured.
    const stepSeconds =
      (sft.packingLength * sft.perDeviceBatchSize * sft.gradientAccumulationSteps) /
      SFT_TOKENS_PER_GPU_SECOND;
    const hours = (sft.maxSteps * stepSeconds) / 3600;
    const nodePrice = ON_DEMAND_USD_PER_HOUR["p5.48xlarge"]!;
    lines.push({
      stage: "train-sft",
      what: `${sft.maxSteps} SFT steps on ${sft.nodes} x ${sft.gpusPerNode} GPUs (${(hours * sft.nodes * sft.gpusPerNode).toFixed(0)} GPU hours, ${sft.packingLength}-token packs)`,
      hours,
      usd: hours * nodePrice * sft.nodes,
    });
    evalAssumptions["SFT tokens per GPU per second"] = SFT_TOKENS_PER_GPU_SECOND;
  }
  const rl = config.training.rl;
  if (rl.enabled) {
    // An RL step's time grows with rollouts x response length (the same for each algorithm); 10 minutes per step on the published 64 GPUs.
    const gpus = rl.nodes * rl.gpusPerNode;
    const hours = (rl.totalSteps * 10 * (64 / gpus)) / 60;
    const nodePrice = ON_DEMAND_USD_PER_HOUR["p5.48xlarge"]!;
    lines.push({
      stage: "train-rl",
      what: `${rl.totalSteps} ${rl.algorithm.toUpperCase()} steps on ${rl.nodes} x 8 GPU nodes`,
      hours,
      usd: hours * nodePrice * rl.nodes,
    });
  }
  const evaluation = config.evaluation;
  if (evaluation.enabled) {
    // Every model the run has unless the config names them (the job's own default).
    const models =
      evaluation.models ??
      (["base", ...(sft.enabled ? ["sft"] : []), ...(config.training.rl.enabled ? ["rl"] : [])] as const);
    const questions = input.evalQuestionsPerTask ?? evaluation.limit ?? EVAL_QUESTIONS_PER_TASK;
    const answerTokens = Math.min(EVAL_ANSWER_TOKENS, evaluation.maxNewTokens);
    const perModelHours =
      (evaluation.tasks.length * questions * answerTokens) / EVAL_TOKENS_PER_SECOND / 3600 +
      EVAL_MODEL_LOAD_HOURS;
    const hours = models.length * perModelHours;
    lines.push({
      stage: "evaluate",
      what: `${models.length} model(s) (${models.join(", ")}) x ${evaluation.tasks.length} benchmark(s) x ${questions} questions, ${(perModelHours / evaluation.tasks.length).toFixed(2)} h per model per benchmark on 1 x 8 GPU node`,
      hours,
      usd: hours * hourly("p5.48xlarge"),
    });
    evalAssumptions["evaluation questions per benchmark"] = questions;
    evalAssumptions["evaluation tokens per answer"] = answerTokens;
    evalAssumptions["evaluation output tokens per second"] = EVAL_TOKENS_PER_SECOND;
  }
  const records =
    input.sftQuestions * config.teacher.samplesPerQuestion +
    input.rlQuestions * config.rl.rolloutsPerQuestion;
  const lambdaGbSeconds = records * 0.002 * 2; // ~2 ms per record at 2 GB
  lines.push({
    stage: "lambdas",
    what: `${lambdaGbSeconds.toFixed(0)} GB-seconds`,
    hours: 0,
    usd: lambdaGbSeconds * LAMBDA_USD_PER_GB_SECOND,
  });
  const gb = (teacherTokens + rolloutTokens) * 4 * 1.2e-9 + records * 2e-6;
  lines.push({
    stage: "s3",
    what: `${gb.toFixed(1)} GB for a month`,
    hours: 0,
    usd: gb * S3_USD_PER_GB_MONTH,
  });
  return {
    label: "ESTIMATE: list prices and assumed throughput, not a quote",
    instanceType,
    rolloutInstanceType,
    lines,
    totalUsd: lines.reduce((a, l) => a + l.usd, 0),
    assumptions: {
      "USD per instance hour": effective,
      "output tokens per second per job": tps,
      "average teacher tokens per response": input.avgTeacherTokens,
      "average rollout tokens": input.avgRolloutTokens,
      "instance type": instanceType,
      "rollout instance type": rolloutInstanceType,
      ...evalAssumptions,
      capacity:
        capacity === "spot"
          ? `spot (list price less ${SPOT_DISCOUNT * 100}%)`
          : `${capacity} (priced on demand; spot is usually far lower)`,
    },
  };
}
