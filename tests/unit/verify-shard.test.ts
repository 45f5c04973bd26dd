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

describe("a traces source whose every record is rejected", () => {
  it("still has its (empty) trace shard, so verification reads nothing instead of failing the run", async () => {
    const { mkdtemp } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { FsStore } = await import("../../core/shards/fs-store.ts");
    const { dedupBranch, ingestShard, planIngest, planVerify, validateConfig } = await import(
      "../../core/pipeline/steps.ts"
    );
    const { readManifest } = await import("../../core/pipeline/context.ts");
    const sourceStore = new FsStore(await mkdtemp(join(tmpdir(), "recipe-traces-src-")));
    // MiroMind-M1's columns: the gold answer is not a column of its own, so every row is missing_answer.
    await sourceStore.write(
      "m1.jsonl",
      `${JSON.stringify({ id: "m1-0", question: "Compute 17 * 3.", response: "<think>51</think>$\\boxed{51}$" })}\n`,
    );
    const ctx = await sampleContext({
      sources: {
        sft: [
          { name: "m1", uri: "m1.jsonl", format: "jsonl", kind: "traces", domain: "text_math", license: "x" },
        ],
        rl: [],
      },
    });
    ctx.sources = (uri) => ({ store: sourceStore, key: uri });
    await validateConfig(ctx.store, ctx.runId);
    await planIngest(ctx, "sft");
    for (const item of await readManifest<Parameters<typeof ingestShard>[1]>(
      ctx.store,
      keys.manifest(ctx.runId, "ingest-sft"),
    ))
      await ingestShard(ctx, item);
    await dedupBranch(ctx, "sft");
    await ctx.store.write(keys.manifest(ctx.runId, "plan-distill"), "[]");

    const plan = await planVerify(ctx, "plan-distill", "distill", "verify-traces", "sft");
    const [item] = await readManifest<Parameters<typeof verifyShard>[1]>(ctx.store, plan.manifest);
    const { stats } = await verifyShard(ctx, item!, "verify-traces", "sft");

    expect(plan.shards).toBe(1);
    expect([stats.in, stats.out, stats.rejected]).toEqual([0, 0, 0]);
  });
});
