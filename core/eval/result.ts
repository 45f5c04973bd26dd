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

/** One scored answer as the evaluate job logs it (lmms-eval's `verdict` metric of a sample). */
export interface SampleVerdict {
  correct: boolean;
  format: number;
  judged: boolean;
}

/**
 * The means and judge counts of one benchmark's scored answers (what `EvalResult` carries besides
 * where it came from). No answers is an error, not a 0 score: a benchmark that loaded nothing says
 * nothing about the model.
 */
export function aggregateVerdicts(verdicts: readonly SampleVerdict[]): {
  samples: number;
  accuracy: number;
  format: number;
  judged: { asked: number; correct: number };
} {
  if (verdicts.length === 0) throw new Error("no scored answers to aggregate");
  let correct = 0;
  let format = 0;
  let asked = 0;
  let judgedCorrect = 0;
  for (const v of verdicts) {
    if (v.correct) correct += 1;
    format += v.format;
    if (v.judged) {
      asked += 1;
      if (v.correct) judgedCorrect += 1;
    }
  }
  return {
    samples: verdicts.length,
    accuracy: correct / verdicts.length,
    format: format / verdicts.length,
    judged: { asked, correct: judgedCorrect },
  };
}

/**
 * What the recipe publishes to compare with (shared/RECIPE.md, "Results to reproduce"): averages
 * only, in percent. RECIPE.md has no per-benchmark number, and its averages are over "12 benchmark
 * columns" it does not name, so they compare with our average only loosely (`note` says so).
 */
export const PUBLISHED_AVERAGES: Partial<Record<EvalModel, number>> = {
  /** The cold start (SFT) model: "cold start 49.4". */
  sft: 49.4,
  /** GSPO x16, the recipe's RL model: 54.3. */
  rl: 54.3,
};
export const PUBLISHED_NOTE =
  "paper average: the paper's average over its 12 benchmark columns (shared/RECIPE.md; no per-benchmark numbers there), not over the tasks above";
