/**
 * One benchmark answer scored by this project's verifier: the same rules and preset as SFT filtering
 * and the RL reward (core/verify), then the deployed judge for what the rules leave undecided, gated
 * exactly as the verify step gates it (core/stages/verify-traces.ts): a prediction longer than
 * `verification.judge.maxPredictionChars` is never sent. The evaluate image's verifier service
 * (batch-images/evaluate/src/verify-entry.ts) answers each lmms-eval `process_results` call with this.
 */
import type { RunConfig } from "../config/schema.ts";
import type { Judge } from "../stages/verify-traces.ts";
import { verify } from "../verify/index.ts";

export interface EvalCase {
  response: string;
  /** The gold answer (a letter when `choices` are given). */
  answer: string;
  choices?: string[] | null;
  answerType?: string | null;
  /** The question as shown, for the judge. */
  question?: string;
}

export interface EvalVerdict {
  correct: boolean;
  format: number;
  reason: string;
  extracted: string | null;
  /** The judge decided it (asked and answered). */
  judged: boolean;
}

export async function scoreAnswer(
  c: EvalCase,
  verification: RunConfig["verification"],
  judge: Judge | undefined,
): Promise<EvalVerdict> {
  const judgeOn = verification.judge.enabled && judge !== undefined;
  const v = verify(
    { response: c.response, answer: c.answer, choices: c.choices, answerType: c.answerType },
    {
      preset: verification.extractionPreset,
      judge: judgeOn,
      relativeTolerance: verification.numericRelativeTolerance,
      stepBudget: verification.itemStepBudget,
      hangGuardMs: verification.hangGuardMs,
    },
  );
  const out: EvalVerdict = {
    correct: v.correct,
    format: v.format,
    reason: v.reason,
    extracted: v.extracted,
    judged: false,
  };
  if (!v.undecided || !judgeOn || !judge) return out;
  const prediction = v.extracted ?? c.response;
  if (prediction.length > verification.judge.maxPredictionChars) {
    // Never sent: a long prediction is where instructions to the judge would hide.
    return { ...out, reason: "judge_prediction_too_long" };
  }
  try {
    const j = await judge({ question: c.question ?? "", gold: c.answer, prediction });
    return { ...out, correct: j.verdict, reason: j.verdict ? "match_judge" : "judge_mismatch", judged: true };
  } catch (err) {
    return { ...out, correct: false, reason: `judge_unavailable: ${(err as Error).message}` };
  }
}
