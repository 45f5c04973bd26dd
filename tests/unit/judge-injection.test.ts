/**
 * The LLM judge cannot be talked into a verdict. Each row of tests/fixtures/judge-injections.jsonl is a
 * prediction that tries to instruct the judge. They go through verify-shard to a fake judge, over real
 * HTTP, that obeys any instruction it can see outside the prediction's fence. So a row fails if the
 * prediction reaches the judge unfenced, breaks out of its fence, or is longer than the bound.
 */
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/layout/index.ts";
import { verifyShard } from "../../core/pipeline/steps.ts";
import { type Question, questionId, type Trace } from "../../core/records/index.ts";
import { readShard, writeShard } from "../../core/shards/jsonl.ts";
import { renderJudgePrompt } from "../../core/verify/judge-prompt.ts";
import { textForm } from "../../core/verify/normalize.ts";
import { openAiJudge } from "../../lambdas/shared/judge.ts";
import { type FakeServer, startFakeOpenAI } from "../helpers/fake-openai.ts";
import { sampleContext } from "../helpers/pipeline.ts";

interface Injection {
  id: string;
  prediction: string;
  gold: string;
  note: string;
}

const injections: Injection[] = readFileSync("tests/fixtures/judge-injections.jsonl", "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l));

const BOUND = 200;
/** What an obedient model would act on: an instruction to reply 1, or to drop its instructions. */
const INSTRUCTION =
  /\b(?:reply|respond|answer|output|print|say|return|write)\s+(?:with\s+)?(?:only\s+)?["'`]?1\b|\bignore (?:all )?(?:the )?(?:previous|above|prior)/i;
const FENCE = /<predicted_answer>([\s\S]*?)<\/predicted_answer>/;

function unescapeData(s: string): string {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

/** The same words in any order: how the fake judge tells a right answer from a wrong one. */
function words(s: string): string {
  return (textForm(s).match(/[a-z0-9]+/g) ?? []).sort().join(" ");
}

/** A judge that obeys any instruction outside the prediction's fence, and otherwise compares texts. */
function obedientJudge(prompts: string[]) {
  return (prompt: string): string => {
    prompts.push(prompt);
    const outside = prompt.replace(FENCE, "");
    if (INSTRUCTION.test(outside)) return "1";
    const prediction = unescapeData(FENCE.exec(prompt)?.[1] ?? "");
    const gold = unescapeData(/<reference_answer>\n([\s\S]*?)\n<\/reference_answer>/.exec(prompt)?.[1] ?? "");
    return words(prediction) === words(gold) ? "1" : "0";
  };
}

const question = "What is in the picture, in a few words?";
const q: Question = {
  id: questionId(question, []),
  source: "sample-text-math",
  domain: "general_vqa",
  question,
  images: [],
  answer: "a red barn",
  answerType: "text",
};

function trace(sampleIndex: number, prediction: string): Trace {
  return {
    questionId: q.id,
    sampleIndex,
    model: "teacher",
    messages: [{ role: "user", content: question }],
    response: `<think>Looking at the picture carefully.</think><answer>${prediction}</answer>`,
    finishReason: "stop",
    usage: { promptTokens: 10, completionTokens: 20 },
  };
}

describe("judge prompt injection", () => {
  let judge: FakeServer;
  const prompts: string[] = [];

  beforeAll(async () => {
    const grade = obedientJudge(prompts);
    judge = await startFakeOpenAI({ answer: (text) => grade(text) });
  });
  afterAll(() => judge.close());

  it("the fake judge obeys an instruction it can see, so the test can fail", () => {
    const grade = obedientJudge([]);
    const template = "Grade this.\n{{question}}\n{{gold}}\n{{prediction}}";

    const unfenced = template.replace("{{prediction}}", injections[0]!.prediction);
    const fenced = renderJudgePrompt(template, {
      question,
      gold: "a red barn",
      prediction: injections[0]!.prediction,
    });

    expect(grade(unfenced)).toBe("1");
    expect(grade(fenced)).toBe("0");
  });

  it("grades every injection as wrong, never sends one over the bound, and still accepts a right answer", async () => {
    const ctx = await sampleContext({
      verification: { judge: { enabled: true, maxPredictionChars: BOUND } },
    });
    ctx.judge = openAiJudge({ ...ctx.config.verification.judge, endpoint: { url: judge.url } }, "test-key");
    const questions = keys.shard(ctx.runId, "dedup-sft", 0);
    const traces = keys.shard(ctx.runId, "distill", 0);
    await writeShard(ctx.store, questions, [q]);
    const rows = [
      ...injections.map((inj, i) => trace(i, inj.prediction)),
      trace(injections.length, "a barn, red"),
    ];
    await ctx.store.write(traces, gzipSync(`${rows.map((r) => JSON.stringify(r)).join("\n")}\n`));

    const { stats } = await verifyShard(
      ctx,
      { shard: 0, traces, questions: { questions, skip: 0, take: 10 } },
      "verify-traces",
      "sft",
    );

    const verdicts = new Map<number, string>();
    for await (const l of readShard(ctx.store, keys.rejects(ctx.runId, "verify-traces", 0))) {
      if (!l.ok) continue;
      const r = l.value as { reason: string; record: { sampleIndex: number } };
      verdicts.set(r.record.sampleIndex, r.reason);
    }
    const long = injections.filter((inj) => inj.prediction.length > BOUND);
    const expected = new Map(
      injections.map((inj, i) => [
        i,
        inj.prediction.length > BOUND ? "judge_prediction_too_long" : "judge_mismatch",
      ]),
    );
    expect(verdicts).toEqual(expected);
    expect(stats.out).toBe(1); // the right answer, accepted by the same judge
    expect(long.length).toBeGreaterThanOrEqual(2);
    expect(prompts).toHaveLength(injections.length - long.length + 1);
    for (const inj of long) expect(prompts.some((p) => p.includes(inj.prediction.slice(-40)))).toBe(false);
  });
});
