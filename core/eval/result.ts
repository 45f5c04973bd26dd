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
  "paper: the average over its 12 benchmark columns (shared/RECIPE.md; no per-benchmark numbers there), not over the tasks above";

export interface EvalTableRow {
  /** The task, or "average". */
  task: string;
  /** Accuracy in percent by model; null where that model was not evaluated on it. */
  scores: Partial<Record<EvalModel, number | null>>;
  /** The paper's number in percent by model, where it publishes one. */
  paper: Partial<Record<EvalModel, number>>;
  /** Ours minus the paper's, in points, where both exist. */
  difference: Partial<Record<EvalModel, number>>;
}

export interface EvalTable {
  models: EvalModel[];
  rows: EvalTableRow[];
  note: string;
}

const pct = (x: number) => Math.round(x * 1000) / 10;
const round1 = (x: number) => Math.round(x * 10) / 10;

/**
 * The report's table: each benchmark by model (accuracy, percent), then the average over the tasks
 * every listed model has, beside the paper's published averages and the difference. Pure.
 */
export function evalTable(results: readonly EvalResult[], modelOrder: readonly EvalModel[]): EvalTable {
  const models = modelOrder.filter((m) => results.some((r) => r.model === m));
  const tasks = [...new Set(results.map((r) => r.task))].sort();
  const byKey = new Map(results.map((r) => [`${r.model}\u0000${r.task}`, r]));
  const rows: EvalTableRow[] = tasks.map((task) => ({
    task,
    scores: Object.fromEntries(
      models.map((m) => {
        const r = byKey.get(`${m}\u0000${task}`);
        return [m, r ? pct(r.accuracy) : null];
      }),
    ),
    paper: {},
    difference: {},
  }));
  // The average over the tasks every model has, so the models compare on the same questions.
  const common = tasks.filter((t) => models.every((m) => byKey.has(`${m}\u0000${t}`)));
  if (common.length > 0 && models.length > 0) {
    const scores: Partial<Record<EvalModel, number>> = {};
    const paper: Partial<Record<EvalModel, number>> = {};
    const difference: Partial<Record<EvalModel, number>> = {};
    for (const m of models) {
      const mean = common.reduce((s, t) => s + byKey.get(`${m}\u0000${t}`)!.accuracy, 0) / common.length;
      scores[m] = pct(mean);
      const published = PUBLISHED_AVERAGES[m];
      if (published !== undefined) {
        paper[m] = published;
        difference[m] = round1(pct(mean) - published);
      }
    }
    rows.push({ task: "average", scores, paper, difference });
  }
  return { models, rows, note: PUBLISHED_NOTE };
}
