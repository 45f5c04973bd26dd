/**
 * The only place S3 keys are built (DESIGN.md "S3 layout"). Deterministic: the same run config
 * writes the same keys, which is what makes reruns skip finished work.
 */
import { InvariantError } from "../errors.ts";

export const STAGES = [
  "validate-config",
  "ingest-sft",
  "ingest-rl",
  "dedup-sft",
  "dedup-rl",
  "plan-distill",
  "distill",
  "verify-traces",
  "select-and-mix",
  "write-sft-dataset",
  "train-sft",
  "plan-rollouts",
  "estimate-difficulty",
  "filter-rl",
  "write-rl-dataset",
  "train-rl",
  "evaluate",
  "report",
] as const;
export type Stage = (typeof STAGES)[number];

export type Branch = "sft" | "rl";
/** The ingest and dedup stages of each branch. */
export const INGEST_STAGE: Record<Branch, Stage> = { sft: "ingest-sft", rl: "ingest-rl" };
export const DEDUP_STAGE: Record<Branch, Stage> = { sft: "dedup-sft", rl: "dedup-rl" };

/** The models a run trains, each exported under `runs/<id>/models/<model>/`. */
export const TRAINED_MODELS = ["sft", "rl"] as const;
export type TrainedModel = (typeof TRAINED_MODELS)[number];
/** The models a run evaluates: the base model and those it trains. */
export const EVAL_MODELS = ["base", ...TRAINED_MODELS] as const;
export type EvalModel = (typeof EVAL_MODELS)[number];

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/;

/**
 * Executions of a run: the first is named after the run id, a start after a failure `<run-id>.2`,
 * `<run-id>.3`, ... (a run id cannot hold a '.', so no other run's name looks like an attempt).
 */
export function attemptName(runId: string, attempt: number): string {
  return attempt === 1 ? runId : `${runId}.${attempt}`;
}

/** Execution states of a run that ended without finishing: it may be started again. */
export const CLOSED_UNSUCCESSFULLY: ReadonlySet<string> = new Set(["FAILED", "TIMED_OUT", "ABORTED"]);

/** The attempt an execution name stands for: `<run-id>` (or no name) is 1, `<run-id>.<n>` is n. */
export function attemptOf(runId: string, execution: string | undefined): number {
  return execution && isAttemptOf(execution, runId) && execution !== runId
    ? Number(execution.slice(runId.length + 1))
    : 1;
}

/** Whether an execution name is one of the run's attempts. */
export function isAttemptOf(name: string, runId: string): boolean {
  return name === runId || (name.startsWith(`${runId}.`) && /^\d+$/.test(name.slice(runId.length + 1)));
}

/** Whether a string is a valid run id (the schema's rule): callers check user input with it. */
export function isRunId(value: string): boolean {
  return RUN_ID.test(value);
}
const SHA256 = /^[0-9a-f]{64}$/;
export const SHARD_DIGITS = 5;
export const MAX_SHARDS = 10 ** SHARD_DIGITS;

function assertRunId(runId: string): void {
  if (!RUN_ID.test(runId)) throw new InvariantError(`not a valid run id: ${JSON.stringify(runId)}`);
}

function assertStage(stage: string): asserts stage is Stage {
  if (!(STAGES as readonly string[]).includes(stage)) throw new InvariantError(`unknown stage: ${stage}`);
}

export function shardName(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_SHARDS) {
    throw new InvariantError(`shard index out of range: ${index}`);
  }
  return String(index).padStart(SHARD_DIGITS, "0");
}

export function runPrefix(runId: string): string {
  assertRunId(runId);
  return `runs/${runId}/`;
}

export const keys = {
  runConfig: (runId: string) => `${runPrefix(runId)}run.json`,
  resolvedConfig: (runId: string) => `${runPrefix(runId)}config.json`,
  failure: (runId: string) => `${runPrefix(runId)}failure.json`,
  /** Where an attempt's failure.json is kept once a later attempt starts (and as it is written). */
  attemptFailure: (runId: string, attempt: number) => `${runPrefix(runId)}attempts/${attempt}/failure.json`,
  stagePrefix(runId: string, stage: Stage): string {
    assertStage(stage);
    return `${runPrefix(runId)}${stage}/`;
  },
  shard: (runId: string, stage: Stage, index: number) =>
    `${keys.stagePrefix(runId, stage)}shards/${shardName(index)}.jsonl.gz`,
  shardsPrefix: (runId: string, stage: Stage) => `${keys.stagePrefix(runId, stage)}shards/`,
  rejects: (runId: string, stage: Stage, index: number) =>
    `${keys.stagePrefix(runId, stage)}rejects/${shardName(index)}.jsonl.gz`,
  stats: (runId: string, stage: Stage, index: number) =>
    `${keys.stagePrefix(runId, stage)}stats/${shardName(index)}.json`,
  statsPrefix: (runId: string, stage: Stage) => `${keys.stagePrefix(runId, stage)}stats/`,
  /** A second record stream of a stage (e.g. the traces that trace-kind sources carry into ingest). */
  side: (runId: string, stage: Stage, stream: "traces" | "index" | "counts", index: number) =>
    `${keys.stagePrefix(runId, stage)}${stream}/${shardName(index)}.jsonl.gz`,
  sidePrefix: (runId: string, stage: Stage, stream: "traces" | "index" | "counts") =>
    `${keys.stagePrefix(runId, stage)}${stream}/`,
  /**
   * A stage's internal files, kept for audit and redrive (the dedup fan-out's band rows, candidate
   * pairs and per-shard decisions, the SFT writer's per-shard parts): `work/<file>` or
   * `work/<bands|pairs|decisions|parts>/<file>`.
   */
  work: (runId: string, stage: Stage, file: string) => {
    if (!/^(?:(?:bands|pairs|decisions|parts)\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file))
      throw new InvariantError(`bad work file name: ${file}`);
    return `${keys.stagePrefix(runId, stage)}work/${file}`;
  },
  manifest: (runId: string, stage: Stage) => `${keys.stagePrefix(runId, stage)}manifest.json`,
  success: (runId: string, stage: Stage) => `${keys.stagePrefix(runId, stage)}_SUCCESS`,
  dataset: (runId: string, branch: "sft" | "rl", file: string) => {
    if (!/^(?:images\/|lmms-engine\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file))
      throw new InvariantError(`bad dataset file name: ${file}`);
    return `${runPrefix(runId)}datasets/${branch}/${file}`;
  },
  /**
   * A trained model exported as a Hugging Face folder (config.json, weights, tokenizer and processor,
   * README.md model card): `models/sft/` from train-sft, `models/rl/` from train-rl.
   */
  modelPrefix: (runId: string, model: TrainedModel) => {
    if (!TRAINED_MODELS.includes(model)) throw new InvariantError(`not a trained model: ${model}`);
    return `${runPrefix(runId)}models/${model}/`;
  },
  /** One benchmark's score for one model (core/eval/result.ts EvalResult). */
  evalResult: (runId: string, model: EvalModel, task: string) => `${evalPrefix(runId, model, task)}.json`,
  /** lmms-eval's logged samples of that benchmark, one JSON object a line (gzip). */
  evalSamples: (runId: string, model: EvalModel, task: string) =>
    `${evalPrefix(runId, model, task)}.samples.jsonl.gz`,
  report: (runId: string, file: "report.json" | "report.html") => `${runPrefix(runId)}report/${file}`,
  /** Images are stored once by content hash, shared by all runs. */
  image: (sha256: string) => {
    if (!SHA256.test(sha256)) throw new InvariantError(`not a sha256: ${sha256}`);
    return `images/${sha256.slice(0, 2)}/${sha256}`;
  },
  /** One model response, keyed by what determines it (DESIGN.md generation cache). */
  generationCache: (sha256: string) => {
    if (!SHA256.test(sha256)) throw new InvariantError(`not a sha256: ${sha256}`);
    return `cache/generate/${sha256.slice(0, 2)}/${sha256}.json`;
  },
} as const;

function evalPrefix(runId: string, model: EvalModel, task: string): string {
  if (!EVAL_MODELS.includes(model)) throw new InvariantError(`not an evaluated model: ${model}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(task)) throw new InvariantError(`bad task name: ${task}`);
  return `${runPrefix(runId)}eval/${model}/${task}`;
}

/** Parses a `runs/<id>/run.json` key (the S3 trigger); null for any other key. */
export function runIdFromConfigKey(key: string): string | null {
  const m = /^runs\/([^/]+)\/run\.json$/.exec(key);
  return m && RUN_ID.test(m[1]!) ? m[1]! : null;
}
