/**
 * verify-shard over bad input: every record that cannot be verified is a reject with a reason, the
 * counts add up, and a missing input shard is a contract error rather than an empty result.
 */
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { InputContractError } from "../../core/errors.ts";
import { keys } from "../../core/layout/index.ts";
import { verifyShard } from "../../core/pipeline/steps.ts";
import { type Question, questionId, type Trace } from "../../core/records/index.ts";
import { readJson } from "../../core/shards/byte-store.ts";
import { readShard, writeShard } from "../../core/shards/jsonl.ts";
import type { ShardStats } from "../../core/stages/stage.ts";
import { sampleContext } from "../helpers/pipeline.ts";

const text = "What is 6 times 7?";
const q: Question = {
  id: questionId(text, []),
  source: "sample-text-math",
  domain: "text_math",
  question: text,
  images: [],
  answer: "42",
  answerType: "numeric",
};

function trace(over: Partial<Trace>): Trace {
  return {
    questionId: q.id,
    sampleIndex: 0,
    model: "teacher",
    messages: [{ role: "user", content: text }],
    response: "<think>Six sevens are forty-two, checked twice.</think><answer>\\boxed{42}</answer>",
    finishReason: "stop",
    usage: { promptTokens: 10, completionTokens: 20 },
    ...over,
  };
}

describe("verify-shard over bad input", () => {
  it("rejects malformed lines, invalid traces and traces of unknown questions, and counts add up", async () => {
    const ctx = await sampleContext();
    const questions = keys.shard(ctx.runId, "dedup-sft", 0);
    const traces = keys.shard(ctx.runId, "distill", 0);
    await writeShard(ctx.store, questions, [q]);
    const lines = [
      JSON.stringify(trace({})),
      '{"questionId": "not closed',
      JSON.stringify(trace({ sampleIndex: -1 })),
      JSON.stringify(trace({ questionId: "f".repeat(64) })),
      JSON.stringify(trace({ sampleIndex: 1, response: "<think>Forty.</think><answer>40</answer>" })),
    ];
    await ctx.store.write(traces, gzipSync(`${lines.join("\n")}\n`));

    const { stats } = await verifyShard(
      ctx,
      { shard: 0, traces, questions: { questions, skip: 0, take: 10 } },
      "verify-traces",
      "sft",
    );

    expect(stats.in).toBe(5);
    expect(stats.out).toBe(1);
    expect(stats.reasons).toEqual({
      invalid_json: 1,
      invalid_trace: 1,
      unknown_question: 1,
      answer_mismatch: 1,
    });
    const rejects: { reason: string; origin?: string }[] = [];
    for await (const l of readShard(ctx.store, keys.rejects(ctx.runId, "verify-traces", 0)))
      if (l.ok) rejects.push(l.value as { reason: string; origin?: string });
    expect(rejects).toHaveLength(4);
    expect(rejects.find((r) => r.reason === "invalid_json")?.origin).toMatch(/:2$/);
    const written = await readJson<ShardStats>(ctx.store, keys.stats(ctx.runId, "verify-traces", 0));
    expect(written).toMatchObject({ in: 5, out: 1, rejected: 4 });
  });

  it("verifies an empty trace shard to an empty output, and refuses a missing one", async () => {
    const ctx = await sampleContext();
    const questions = keys.shard(ctx.runId, "dedup-sft", 0);
    await writeShard(ctx.store, questions, [q]);
    const empty = keys.shard(ctx.runId, "distill", 0);
    await writeShard(ctx.store, empty, []);
    const item = { shard: 0, traces: empty, questions: { questions, skip: 0, take: 10 } };
    const { stats } = await verifyShard(ctx, item, "verify-traces", "sft");
    expect([stats.in, stats.out, stats.rejected]).toEqual([0, 0, 0]);

    const missing = { ...item, shard: 1, traces: keys.shard(ctx.runId, "distill", 1) };
    await expect(verifyShard(ctx, missing, "verify-traces", "sft")).rejects.toBeInstanceOf(
      InputContractError,
    );
    expect(await ctx.store.exists(keys.stats(ctx.runId, "verify-traces", 1))).toBe(false);
  });
});
