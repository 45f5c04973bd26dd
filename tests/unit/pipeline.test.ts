import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { keys } from "../../core/layout/index.ts";
import { validateConfig } from "../../core/pipeline/steps.ts";
import { listAll, readJson } from "../../core/shards/byte-store.ts";
import { readShard } from "../../core/shards/jsonl.ts";
import type { ShardStats, StageSummary } from "../../core/stages/stage.ts";
import { runDirect } from "../../local/direct-run.ts";
import { fakeGenerate, sampleContext } from "../helpers/pipeline.ts";

async function collect<T>(it: AsyncIterable<{ ok: boolean; value?: unknown }>): Promise<T[]> {
  const out: T[] = [];
  for await (const l of it) if (l.ok) out.push(l.value as T);
  return out;
}

describe("the CPU stages over the sample set", () => {
  it("runs end to end with counts that add up at every shard and stage", async () => {
    const ctx = await sampleContext();
    expect((await validateConfig(ctx.store, ctx.runId)).ok).toBe(true);

    await runDirect(ctx, async (c, plan, out) => {
      await fakeGenerate(c, plan, out, plan === "plan-distill" ? 4 : 4);
    });

    for (const key of (await listAll(ctx.store, `runs/${ctx.runId}/`)).filter((k) =>
      /\/stats\/\d+\.json$/.test(k),
    )) {
      const s = (await readJson<ShardStats>(ctx.store, key))!;
      expect(s.in, key).toBe(s.out + s.rejected);
      expect(
        Object.values(s.reasons).reduce((a, b) => a + b, 0),
        key,
      ).toBe(s.rejected);
    }
    const ingest = (await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, "ingest-sft")))!;
    expect(ingest.in).toBe(27 + 13 + 1); // 25 questions + 1 duplicate + 2 bad lines in vqa; 13 text math
    expect(ingest.reasons).toEqual({ invalid_json: 1, missing_answer: 1 });
    const dedup = (await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, "dedup-sft")))!;
    expect(dedup.in).toBe(ingest.out);
    // The planted "Compute 2^{10}" copy, and two circle questions whose generated radius and image coincide.
    expect(dedup.reasons).toEqual({ duplicate_question: 2 });
    const verify = (await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, "verify-traces")))!;
    expect(verify.in).toBe(dedup.out * 4);
    expect(verify.out).toBe(dedup.out * 2); // two of four fake samples are right and well formed
    expect(verify.reasons).toMatchObject({ answer_mismatch: dedup.out, truncated: dedup.out });
    const mix = (await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, "select-and-mix")))!;
    expect(mix.in).toBe(verify.out);
    expect(mix.in).toBe(mix.out + mix.rejected);
  });

  it("writes SFT chat JSONL, Parquet and a data card, and verl Parquet for RL", async () => {
    const ctx = await sampleContext({ rl: { passRateBand: { enabled: false } } });
    await validateConfig(ctx.store, ctx.runId);
    await runDirect(ctx, (c, plan, out) => fakeGenerate(c, plan, out, 4).then(() => undefined));

    const sftFiles = await listAll(ctx.store, `runs/${ctx.runId}/datasets/sft/`);
    expect(sftFiles).toEqual(
      expect.arrayContaining([
        keys.dataset(ctx.runId, "sft", "README.md"),
        keys.dataset(ctx.runId, "sft", "sft.jsonl.gz"),
      ]),
    );
    expect(sftFiles.some((k) => k.endsWith(".parquet"))).toBe(true);
    expect(sftFiles.some((k) => /images\/[0-9a-f]{64}\.png$/.test(k))).toBe(true);
    const rows = await collect<{ messages: { role: string; content: string }[]; images: string[] }>(
      readShard(ctx.store, keys.dataset(ctx.runId, "sft", "sft.jsonl.gz")),
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.messages.map((m) => m.role)).toEqual(["system", "user", "assistant"]);
      expect((r.messages[1]!.content.match(/<image>/g) ?? []).length).toBe(r.images.length);
      for (const img of r.images) expect(sftFiles).toContain(keys.dataset(ctx.runId, "sft", img));
    }
    const card = (await ctx.store.readBytes(keys.dataset(ctx.runId, "sft", "README.md")))!.toString();
    expect(card).toContain("CC0-1.0");
    expect(card).toContain("Config hash");
    expect(
      (await listAll(ctx.store, `runs/${ctx.runId}/datasets/rl/`)).some((k) => k.endsWith(".parquet")),
    ).toBe(true);
    const report = JSON.parse((await ctx.store.readBytes(keys.report(ctx.runId, "report.json")))!.toString());
    expect(report.cost.label).toMatch(/ESTIMATE/);
    expect((await ctx.store.readBytes(keys.report(ctx.runId, "report.html")))!.toString()).toContain("<svg");
  });

  it("drops RL questions that every rollout solves or none does", async () => {
    const ctx = await sampleContext();
    await validateConfig(ctx.store, ctx.runId);
    // Rollouts: all right for even questions, all wrong for odd ones except one in four samples.
    await runDirect(ctx, (c, plan, out) => fakeGenerate(c, plan, out, 4).then(() => undefined));

    const rl = (await readJson<StageSummary & { passRateHistogram: number[] }>(
      ctx.store,
      keys.success(ctx.runId, "write-rl-dataset"),
    ))!;
    // The stand-in answers 2 of 4 samples right, so every question has pass rate 0.5 and stays.
    expect(rl.out).toBe(rl.in);
    expect(rl.passRateHistogram[5]).toBe(rl.in);
  });

  it("writes every question the band drops as a reject naming its source line and pass rate", async () => {
    // A band that 0.5 reaches: every question is dropped as always solved.
    const ctx = await sampleContext({ rl: { passRateBand: { max: 0.5 } }, batch: { questionsPerShard: 2 } });
    await validateConfig(ctx.store, ctx.runId);
    await runDirect(ctx, (c, plan, out) => fakeGenerate(c, plan, out, 4).then(() => undefined));

    const rl = (await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, "write-rl-dataset")))!;
    const rejects: Record<string, unknown>[] = [];
    for (const key of await listAll(ctx.store, `${keys.stagePrefix(ctx.runId, "write-rl-dataset")}rejects/`))
      for await (const l of readShard(ctx.store, key))
        if (l.ok) rejects.push(l.value as Record<string, unknown>);

    expect(rl.rejected).toBeGreaterThan(0);
    expect(rejects).toHaveLength(rl.rejected);
    for (const r of rejects) {
      expect(r).toMatchObject({
        stage: "write-rl-dataset",
        reason: "always_solved",
        detail: "pass rate 0.5 from 4 rollouts",
      });
      expect(r.origin).toMatch(/^sample\/rl-questions\.jsonl:\d+$/);
    }
  });

  it("writes the RL set as parts whose extra_info.index runs on across them, and finishes only with every part", async () => {
    // Shards of 2 questions: the RL set is written by several parts.
    const ctx = await sampleContext({ batch: { questionsPerShard: 2 } });
    await validateConfig(ctx.store, ctx.runId);
    await runDirect(ctx, (c, plan, out) => fakeGenerate(c, plan, out, 4).then(() => undefined));
    const rl = (await readJson<StageSummary & { files: { parquet: string[] } }>(
      ctx.store,
      keys.success(ctx.runId, "write-rl-dataset"),
    ))!;
    const { parquetReadObjects } = await import("hyparquet");
    const indexes: number[] = [];
    for (const key of rl.files.parquet) {
      const bytes = (await ctx.store.readBytes(key))!;
      const rows = (await parquetReadObjects({ file: new Uint8Array(bytes).buffer })) as {
        extra_info: { index: bigint | number };
      }[];
      indexes.push(...rows.map((r) => Number(r.extra_info.index)));
    }

    expect(rl.files.parquet.length).toBeGreaterThan(1);
    expect(indexes).toEqual(Array.from({ length: rl.out }, (_, i) => i));

    // A part that never finished (a Map child that failed within the tolerance) stops the finish.
    await ctx.store.delete(keys.success(ctx.runId, "write-rl-dataset"));
    await ctx.store.delete(keys.work(ctx.runId, "write-rl-dataset", "parts/00001.json"));
    const { finishRlDataset } = await import("../../core/pipeline/outputs.ts");
    await expect(finishRlDataset(ctx)).rejects.toThrow(/write-rl-dataset: 1 of \d+ .*\(shards 1\)/);
  });

  it("gives byte-identical select-and-mix output on a rerun from scratch", async () => {
    const a = await sampleContext({ mixing: { seed: 3, ratios: { general_vqa: 0.7, text_math: 0.3 } } });
    const b = await sampleContext({ mixing: { seed: 3, ratios: { general_vqa: 0.7, text_math: 0.3 } } });
    for (const ctx of [a, b]) {
      await validateConfig(ctx.store, ctx.runId);
      await runDirect(ctx, (c, plan, out) => fakeGenerate(c, plan, out, 4).then(() => undefined));
    }

    const mixKeys = (await listAll(a.store, keys.shardsPrefix(a.runId, "select-and-mix"))).sort();
    expect(mixKeys.length).toBeGreaterThan(0);
    for (const k of mixKeys)
      expect((await b.store.readBytes(k))?.equals((await a.store.readBytes(k))!)).toBe(true);
    const jsonl = keys.dataset(a.runId, "sft", "sft.jsonl.gz");
    expect((await b.store.readBytes(jsonl))?.equals((await a.store.readBytes(jsonl))!)).toBe(true);
  });

  it("reads the bundled sample's images and stores each once by content hash", async () => {
    const ctx = await sampleContext();
    await validateConfig(ctx.store, ctx.runId);
    await runDirect(ctx, (c, plan, out) => fakeGenerate(c, plan, out, 1).then(() => undefined));

    const images = await listAll(ctx.store, "images/");
    const pngs =
      readFileSync("examples/sample/sft-vqa.jsonl", "utf8").match(/images\/[a-z0-9-]+\.png/g) ?? [];
    expect(images.length).toBe(new Set(pngs).size);
  });
});
