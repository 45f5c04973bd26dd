/**
 * verify-traces: the verifier and the quality filters over one shard of traces. Accepted traces go
 * on with their verdict; every other trace is a reject with the first reason that dropped it; per
 * question counts (samples, correct) feed pass rates and the report.
 *
 * In `rollouts` mode (difficulty estimation) no trace is filtered: every rollout is scored and only
 * the per-question counts matter.
 */
import { z } from "zod";
import type { RunConfig } from "../config/schema.ts";
import { Question, Trace, Verdict } from "../records/index.ts";
import { verify } from "../verify/index.ts";
import type { SourceRow } from "./ingest.ts";
import { parseRecord, type ShardRun } from "./stage.ts";

export const VerifiedTrace = Trace.extend({
  verdict: Verdict,
  domain: Question.shape.domain,
  source: z.string(),
});
export type VerifiedTrace = z.infer<typeof VerifiedTrace>;

/**
 * What a person needs to judge a reject without opening the shards: the question and gold answer
 * (clipped) and the end of the response, where the answer is. The whole trace stays in distill's
 * shard, at the reject's origin.
 */
export function rejectExample(
  q: { question: string; answer: string },
  response: string,
): { question: string; gold: string; responseEnd: string } {
  const clip = (t: string, n: number) => (t.length > n ? `${t.slice(0, n)}…` : t);
  return {
    question: clip(q.question, 240),
    gold: clip(q.answer, 120),
    responseEnd: response.length > 320 ? `…${response.slice(-320)}` : response,
  };
}

export interface QuestionCount {
  questionId: string;
  domain: string;
  source: string;
  samples: number;
  correct: number;
  passRate: number;
  /** `source`: the pass rate the source carries (no rollouts); absent: measured from rollouts. */
  from?: "source";
}

/** An LLM judge for answers the rules cannot decide (wired in by the adapter; absent = no judge). */
export type Judge = (input: {
  question: string;
  gold: string;
  prediction: string;
}) => Promise<{ verdict: boolean; reason: string; model: string }>;

/** Fraction of word n-grams that repeat an earlier n-gram: a looping, degenerate response scores high. */
export function repeatedFraction(text: string, n: number): number {
  const words = text.split(/\s+/).filter(Boolean);
  if (words.length < n * 2) return 0;
  const seen = new Set<string>();
  let repeated = 0;
  const total = words.length - n + 1;
  for (let i = 0; i < total; i++) {
    const gram = words.slice(i, i + n).join(" ");
    if (seen.has(gram)) repeated++;
    else seen.add(gram);
  }
  return repeated / total;
}

/** The first quality filter a trace fails, or null. */
export function qualityReason(trace: Trace, config: RunConfig, format: number): string | null {
  const f = config.filters;
  if (f.dropTruncated && trace.finishReason === "length") return "truncated";
  if (trace.finishReason === "error" || trace.finishReason === "content_filter")
    return `finish_${trace.finishReason}`;
  if (trace.response.length < f.minResponseChars) return "response_too_short";
  if (f.maxResponseChars !== undefined && trace.response.length > f.maxResponseChars)
    return "response_too_long";
  if (
    f.repetition.enabled &&
    repeatedFraction(trace.response, f.repetition.ngram) > f.repetition.maxRepeatedFraction
  ) {
    return "repetitive_response";
  }
  if (f.requireFormat && format < 1) return "bad_format";
  return null;
}

export interface VerifyShardOptions {
  config: RunConfig;
  mode: "sft" | "rollouts";
  /** Questions of this shard by id (gold answers, choices, domain). */
  questions: ReadonlyMap<string, Question>;
  judge?: Judge;
}

export async function verifyTraces(
  rows: AsyncIterable<SourceRow>,
  opts: VerifyShardOptions,
  run: ShardRun,
): Promise<void> {
  const { config } = opts;
  const counts = new Map<string, QuestionCount>();
  const judgeEnabled = config.verification.judge.enabled && opts.judge !== undefined;
  for await (const row of rows) {
    const trace = await parseRecord(run, row, Trace, "invalid_trace");
    if (!trace) continue;
    const q = opts.questions.get(trace.questionId);
    if (!q) {
      await run.reject({ reason: "unknown_question", origin: row.origin, questionId: trace.questionId });
      continue;
    }
    let count = counts.get(q.id);
    if (!count) {
      count = { questionId: q.id, domain: q.domain, source: q.source, samples: 0, correct: 0, passRate: 0 };
      counts.set(q.id, count);
    }
    const v = verify(
      { response: trace.response, answer: q.answer, choices: q.choices, answerType: q.answerType },
      {
        preset: config.verification.extractionPreset,
        judge: judgeEnabled,
        relativeTolerance: config.verification.numericRelativeTolerance,
        stepBudget: config.verification.itemStepBudget,
        hangGuardMs: config.verification.hangGuardMs,
      },
    );
    const verdict: Verdict = {
      questionId: q.id,
      sampleIndex: trace.sampleIndex,
      correct: v.correct,
      extracted: v.extracted,
      reason: v.reason,
      format: v.format,
    };
    if (v.defect) {
      // The hang guard fired or a rule threw: a verifier bug, never a quiet "wrong". Counted and logged.
      run.count("verifier_defects");
      console.error(
        JSON.stringify({
          level: "ERROR",
          message: "verifier defect",
          defect: v.defect,
          questionId: q.id,
          sampleIndex: trace.sampleIndex,
        }),
      );
    }
    const prediction = v.extracted ?? trace.response;
    if (v.undecided && opts.judge && prediction.length > config.verification.judge.maxPredictionChars) {
      // Never sent: a long prediction is where instructions to the judge would hide.
      verdict.reason = "judge_prediction_too_long";
    } else if (v.undecided && opts.judge) {
      run.count("judge_calls");
      try {
        const j = await opts.judge({
          question: q.question,
          gold: q.answer,
          prediction,
        });
        verdict.correct = j.verdict;
        verdict.reason = j.verdict ? "match_judge" : "judge_mismatch";
        verdict.judged = { model: j.model, verdict: j.verdict, reason: j.reason };
      } catch (err) {
        run.count("judge_errors");
        verdict.reason = "judge_unavailable";
        verdict.judged = {
          model: config.verification.judge.model,
          verdict: false,
          reason: (err as Error).message,
        };
      }
    }
    count.samples += 1;
    if (verdict.correct) count.correct += 1;
    if (opts.mode === "rollouts") {
      await run.emit({ ...trace, verdict, domain: q.domain, source: q.source } satisfies VerifiedTrace);
      continue;
    }
    const quality = qualityReason(trace, config, v.format);
    const reason = quality ?? (verdict.correct ? null : verdict.reason);
    if (reason) {
      await run.reject({
        reason,
        origin: row.origin,
        questionId: q.id,
        record: { sampleIndex: trace.sampleIndex, verdict, example: rejectExample(q, trace.response) },
      });
      continue;
    }
    run.count("completion_tokens", trace.usage.completionTokens);
    await run.emit({ ...trace, verdict, domain: q.domain, source: q.source } satisfies VerifiedTrace);
  }
  const side = run.side("counts");
  for (const c of counts.values()) {
    c.passRate = c.samples === 0 ? 0 : c.correct / c.samples;
    await side.write(c);
  }
  run.count("questions", counts.size);
}
