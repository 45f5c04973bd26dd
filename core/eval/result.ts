/**
 * What the evaluate job writes for one benchmark and one model (`runs/<id>/eval/<model>/<task>.json`,
 * keys.evalResult) and the report reads. Scores are the means the recipe's repository reports:
 * `accuracy` (acc_score) and `format` (format_score), each in [0, 1], every answer scored by this
 * project's verifier (core/verify) with the run's extraction preset, the judge deciding what it leaves
 * undecided.
 */
import type { EvalModel } from "../layout/index.ts";

export interface EvalResult {
  /** Which of the run's models: the base model, the SFT cold start or the RL policy. */
  model: EvalModel;
  /** What was served: a model id or the s3:// folder it was staged from. */
  modelUri: string;
  /** The task's name (lmms-eval's), also the file's name. */
  task: string;
  /** Questions scored. */
  samples: number;
  /** Mean accuracy (acc_score), 0..1. */
  accuracy: number;
  /** Mean format score (format_score), 0..1. */
  format: number;
  /** Answers the verifier left to the judge, and how many of those it judged correct. */
  judged: { asked: number; correct: number };
  /** The verifier's extraction preset (verification.extractionPreset). */
  preset: string;
  /** Where the logged samples are (keys.evalSamples). */
  samplesKey: string;
  /** The pinned tools that produced it. */
  tools: { lmmsEval: string; vllm?: string };
  /** Seconds the benchmark took (generation and scoring). */
  seconds: number;
}
