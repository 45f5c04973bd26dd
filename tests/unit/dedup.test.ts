/**
 * Question dedup: the grouping rule (core/dedup), and the fan-out over band partitions that the
 * state machine runs (core/pipeline/dedup-step.ts), checked against the in-memory finder.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { seeded } from "../../bench/lib/stats.ts";
import {
  type BandRow,
  EXACT_BAND,
  NearDuplicateFinder,
  partitionPairs,
  REPS_PER_BUCKET,
  rowColumns,
} from "../../core/dedup/index.ts";
import { InvariantError } from "../../core/errors.ts";
import { type Branch, type DEDUP_STAGE, INGEST_STAGE, keys } from "../../core/layout/index.ts";
import type { RunContext } from "../../core/pipeline/context.ts";
import { writeManifest } from "../../core/pipeline/context.ts";
import {
  applyDedup,
  dedupBranch,
  groupPartition,
  type IngestItem,
  type PartitionItem,
  planDedup,
  resolveDuplicates,
  type SignItem,
  signQuestions,
} from "../../core/pipeline/steps.ts";
import { type ImageRef, type Question, questionId } from "../../core/records/index.ts";
import { type ByteStore, listAll, readJson } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { readShard } from "../../core/shards/jsonl.ts";
import { markStageDone, runShard, type StageSummary } from "../../core/stages/stage.ts";
import { startS3Emulator } from "../../local/s3-emulator.ts";
import { sampleContext } from "../helpers/pipeline.ts";

const SETTINGS = {
  nearDuplicateThreshold: 0.8,
  minhashPermutations: 128,
  lshBands: 32,
  shingleSize: 5,
  imageHashMaxDistance: 2,
};

function image(seed: number, dhash: string): ImageRef {
  return {
    sha256: seed.toString(16).padStart(64, "0"),
    mediaType: "image/png",
    width: 10,
    height: 10,
    bytes: 100,
    dhash,
  };
}

function question(source: string, text: string, answer: string, images: ImageRef[] = []): Question {
  return {
    id: questionId(
      text,
      images.map((m) => m.sha256),
    ),
    source,
    domain: "text_math",
    question: text,
    images,
    answer,
    answerType: "numeric",
  };
}

const WORDS =
  "angle triangle circle radius area perimeter square length width height sum product ratio value point line segment chord tangent slope".split(
    " ",
  );
function sentence(rand: () => number, n: number): string {
  return Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(" ");
}

async function records<T>(ctx: RunContext, key: string): Promise<T[]> {
  const out: T[] = [];
  for await (const l of readShard(ctx.store, key)) {
    if (!l.ok) throw new Error(`${key}:${l.line} is not JSON`);
    out.push(l.value as T);
  }
  return out;
}

const row = (band: number, key: number, order: number, tag: number): BandRow => ({
  band,
  key,
  order,
  tagA: tag,
  tagB: 0,
});

describe("the bucket rule", () => {
  it("pairs each member with the first members of its bucket, and each pair once", () => {
    const rows = [0, 1, 2, 3, 4, 5].map((i) => row(0, 7, 10 + i, i));
    // The same two items share a second band: that pair must appear once.
    rows.push(row(3, 9, 10, 0), row(3, 9, 11, 1));
    const pairs = partitionPairs(rowColumns(rows.reverse())).toArray();
    const keys = pairs.map((p) => `${p.a}-${p.b}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toContain("10-11");
    expect(keys).toContain("13-15");
    // Member 15 meets only the first REPS_PER_BUCKET members, never 14.
    expect(keys).not.toContain("14-15");
    expect(pairs.filter((p) => p.b === 15)).toHaveLength(REPS_PER_BUCKET);
    expect(pairs.every((p) => !p.exact)).toBe(true);
  });

  it("joins later copies of an id to the first and keeps them out of the band buckets", () => {
    const rows = [row(EXACT_BAND, 5, 20, 1), row(EXACT_BAND, 5, 40, 1), row(EXACT_BAND, 5, 30, 2)];
    rows.push(row(0, 8, 20, 1), row(0, 8, 40, 1), row(0, 8, 50, 3));
    const pairs = partitionPairs(rowColumns(rows)).toArray();
    expect(pairs).toEqual([
      { a: 20, b: 40, exact: true },
      { a: 20, b: 50, exact: false },
    ]);
  });
});

describe("the in-memory finder", () => {
  const base = "What is the area of the shaded region between the two circles of radius 3 and 5?";

  it("keeps the earliest of a near-duplicate group and names it in every drop", () => {
    const f = new NearDuplicateFinder(SETTINGS);
    f.add("a", base, [], false, "16\\pi");
    f.add("b", `${base}  Give the exact value.`, [], false, "16 \\pi");
    f.add("c", base.toUpperCase(), [], false, "16\\pi");
    f.add("d", "A completely different question about prime numbers below fifty.", [], false, "15");
    f.resolve();
    expect(f.decision(0)).toEqual({ keep: true });
    expect(f.decision(1)).toEqual({ keep: false, reason: "near_duplicate", duplicateOf: "a" });
    expect(f.decision(2)).toEqual({ keep: false, reason: "near_duplicate", duplicateOf: "a" });
    expect(f.decision(3)).toEqual({ keep: true });
  });

  it("keeps the same text over another image, or with another gold answer", () => {
    const f = new NearDuplicateFinder(SETTINGS);
    const left = image(1, "0".repeat(64));
    const far = image(2, "f".repeat(64));
    const resized = image(3, `${"0".repeat(63)}1`);
    f.add("a", base, [left], false, "16");
    f.add("b", base, [far], false, "16");
    f.add("c", base, [left], false, "25");
    f.add("d", base, [resized], false, "16");
    f.resolve();
    expect(f.decision(1)).toEqual({ keep: true });
    expect(f.decision(2)).toEqual({ keep: true });
    expect(f.decision(3)).toEqual({ keep: false, reason: "near_duplicate", duplicateOf: "a" });
  });

  it("keeps templated questions whose numbers differ, even when their answers agree by chance", () => {
    const f = new NearDuplicateFinder(SETTINGS);
    const t = (x: string) => `Compute the last digit of 692 * 177 + ${x}. Give only the digit.`;
    f.add("a", t("1859"), [], false, "3");
    f.add("b", t("7209"), [], false, "3"); // other numbers, same answer: another problem
    f.add("c", `${t("1,859")}  `, [], false, "3"); // the same numbers, written with a separator
    f.add("d", t("1859").replace("*", "+"), [], false, "3"); // another operator
    f.add("e", t("-1859"), [], false, "3"); // a sign is part of the number
    f.resolve();
    expect(f.decision(1)).toEqual({ keep: true });
    expect(f.decision(2)).toEqual({ keep: false, reason: "near_duplicate", duplicateOf: "a" });
    expect(f.decision(3)).toEqual({ keep: true });
    expect(f.decision(4)).toEqual({ keep: true });
  });

  it("marks exact copies, and questions already in a reference set", () => {
    const f = new NearDuplicateFinder(SETTINGS);
    f.add("sft", base, [], true, "1");
    f.add("x", "Solve for x: 2x + 3 = 11, and state the value of x.", [], false, "4");
    f.add("x", "Solve for x: 2x + 3 = 11, and state the value of x.", [], false, "4");
    f.add("y", `${base}!`, [], false, "1");
    f.resolve();
    expect(f.decision(0)).toEqual({ keep: true });
    expect(f.decision(2)).toEqual({ keep: false, reason: "duplicate_question", duplicateOf: "x" });
    expect(f.decision(3)).toEqual({ keep: false, reason: "in_sft_set", duplicateOf: "sft" });
  });
});

// ---------------------------------------------------------------- the fan-out

interface Fixture {
  ctx: RunContext;
  questions: Question[][];
}

/**
 * Ingest shards written directly (the dedup stage's input): `perShard[i]` is ingest shard i, with
 * its source index. The ingest stage is marked done as the real one would be.
 */
async function ingestFixture(
  ctx: RunContext,
  branch: Branch,
  shards: { sourceIndex: number; questions: Question[] }[],
): Promise<void> {
  const items: IngestItem[] = shards.map((s, shard) => ({
    branch,
    shard,
    sourceIndex: s.sourceIndex,
    source: ctx.config.sources[branch][s.sourceIndex]!.name,
    file: `fixture-${shard}.jsonl`,
  }));
  await writeManifest(ctx.store, keys.manifest(ctx.runId, INGEST_STAGE[branch]), items);
  for (const [i, s] of shards.entries())
    await runShard(ctx.store, ctx.runId, INGEST_STAGE[branch], i, async (run) => {
      for (const q of s.questions) {
        run.seen();
        await run.emit(q);
      }
    });
  await markStageDone(ctx.store, ctx.runId, INGEST_STAGE[branch]);
}

/** ~600 questions over 5 shards of 2 sources: planted near and exact copies, a templated family. */
async function bigFixture(options: { maxSamples?: number; store?: ByteStore } = {}): Promise<Fixture> {
  const { maxSamples, store } = options;
  const rand = seeded(7);
  const base = await sampleContext({
    sources: {
      sft: [
        { name: "first", uri: "x", format: "jsonl", domain: "text_math", license: "CC0-1.0" },
        {
          name: "second",
          uri: "y",
          format: "jsonl",
          domain: "text_math",
          license: "CC0-1.0",
          ...(maxSamples ? { maxSamples } : {}),
        },
      ],
      rl: [],
    },
  } as never);
  const ctx: RunContext = store ? { ...base, store } : base;
  const all: Question[] = [];
  const pick = () => all[Math.floor(rand() * all.length)]!;
  const shards: Question[][] = [];
  for (let s = 0; s < 5; s++) {
    const src = s < 2 ? "first" : "second";
    const qs: Question[] = [];
    for (let r = 0; r < 120; r++) {
      const roll = rand();
      let q: Question;
      if (all.length > 10 && roll < 0.1) {
        const p = pick();
        q = question(src, `${p.question} ${WORDS[Math.floor(rand() * WORDS.length)]}`, p.answer);
      } else if (all.length > 10 && roll < 0.15) {
        q = { ...pick(), source: src };
      } else if (roll < 0.3) {
        // A templated family: long shared wording, a different number each time (big buckets).
        const n = Math.floor(rand() * 40);
        q = question(
          src,
          `Find the value of the unknown in the figure described below, case number ${n}.`,
          `${n}`,
        );
      } else {
        q = question(src, sentence(rand, 12 + Math.floor(rand() * 8)), `${Math.floor(rand() * 100)}`);
      }
      qs.push(q);
      all.push(q);
    }
    shards.push(qs);
  }
  await ingestFixture(
    ctx,
    "sft",
    shards.map((questions, i) => ({ sourceIndex: i < 2 ? 0 : 1, questions })),
  );
  return { ctx, questions: shards };
}

async function stageFiles(ctx: RunContext, stage: (typeof DEDUP_STAGE)[Branch]) {
  const out: Record<string, string> = {};
  for (const key of await listAll(ctx.store, keys.stagePrefix(ctx.runId, stage))) {
    if (!/\/(shards|rejects)\//.test(key)) continue;
    const lines: string[] = [];
    for await (const l of readShard(ctx.store, key)) lines.push(JSON.stringify(l.ok ? l.value : l));
    out[key.slice(key.indexOf(stage))] = lines.join("\n");
  }
  return out;
}

describe("the dedup fan-out", () => {
  it("drops what the in-memory finder drops, whatever the number of partitions", async () => {
    const one = await bigFixture();
    const seven = await bigFixture();
    await dedupBranch(one.ctx, "sft", { partitions: 1 });
    await dedupBranch(seven.ctx, "sft", { partitions: 7 });
    const a = await stageFiles(one.ctx, "dedup-sft");
    const b = await stageFiles(seven.ctx, "dedup-sft");
    expect(Object.keys(a)).toHaveLength(10);
    expect(b).toEqual(a);

    const finder = new NearDuplicateFinder(one.ctx.config.dedup);
    for (const q of one.questions.flat()) finder.add(q.id, q.question, q.images, false, q.answer);
    finder.resolve();
    const expected: string[] = [];
    one.questions.flat().forEach((q, i) => {
      const d = finder.decision(i);
      if (!d.keep) expected.push(`${q.id}:${d.reason}:${d.duplicateOf}`);
    });
    const got: string[] = [];
    for (let s = 0; s < 5; s++)
      for (const r of await records<{ questionId: string; reason: string; duplicateOf: string }>(
        one.ctx,
        keys.rejects(one.ctx.runId, "dedup-sft", s),
      ))
        got.push(`${r.questionId}:${r.reason}:${r.duplicateOf}`);
    expect(expected.length).toBeGreaterThan(60);
    expect(new Set(expected.map((e) => e.split(":")[1]))).toEqual(
      new Set(["near_duplicate", "duplicate_question"]),
    );
    expect(got).toEqual(expected);

    const summary = (await readJson<StageSummary>(one.ctx.store, keys.success(one.ctx.runId, "dedup-sft")))!;
    expect(summary.in).toBe(600);
    expect(summary.in).toBe(summary.out + summary.rejected);
  });

  it("gives the same output over S3 (range reads of the band files, streamed uploads)", async () => {
    const emulator = await startS3Emulator();
    try {
      const onS3 = await bigFixture({ store: emulator.store });
      const onDisk = await bigFixture();
      await dedupBranch(onS3.ctx, "sft", { partitions: 4 });
      await dedupBranch(onDisk.ctx, "sft", { partitions: 4 });
      expect(await stageFiles(onS3.ctx, "dedup-sft")).toEqual(await stageFiles(onDisk.ctx, "dedup-sft"));
    } finally {
      await emulator.stop();
    }
  });

  it("caps a source across its shards in source order, after dedup", async () => {
    const { ctx } = await bigFixture({ maxSamples: 100 });
    await dedupBranch(ctx, "sft", { partitions: 3 });
    const kept = [0, 0, 0, 0, 0];
    const capped = [0, 0, 0, 0, 0];
    for (let s = 0; s < 5; s++) {
      const st = (await readJson<{ out: number; reasons: Record<string, number> }>(
        ctx.store,
        keys.stats(ctx.runId, "dedup-sft", s),
      ))!;
      kept[s] = st.out;
      capped[s] = st.reasons.over_sample_cap ?? 0;
    }
    expect(kept[2]! + kept[3]! + kept[4]!).toBe(100);
    expect(capped[0]! + capped[1]!).toBe(0);
    // The cap fills the earlier shard first: shard 4 only gets what 2 and 3 left.
    expect(capped[2]).toBe(0);
    expect(capped[4]).toBeGreaterThan(0);
  });

  it("removes benchmark leaks and RL questions already in the SFT set", async () => {
    const dir = await mkdtemp(join(tmpdir(), "recipe-bench-"));
    const benchStore = new FsStore(dir);
    const leak = "Which of the following is the largest planet of the solar system and why is it so big";
    await benchStore.write("bench.jsonl", `${JSON.stringify({ question: leak })}\n`);
    const base = await sampleContext({
      sources: {
        sft: [{ name: "s", uri: "x", format: "jsonl", domain: "text_math", license: "CC0-1.0" }],
        rl: [{ name: "r", uri: "y", format: "jsonl", domain: "text_math", license: "CC0-1.0" }],
      },
      dedup: { decontamination: { benchmarks: [{ name: "Planets", uri: "bench.jsonl" }], ngram: 8 } },
    } as never);
    const ctx: RunContext = { ...base, sources: (uri) => ({ store: benchStore, key: uri }) };
    const shared = question(
      "s",
      "What is the sum of the interior angles of a convex hexagon in degrees?",
      "720",
    );
    const sftOnly = question("s", "How many edges does a cube have, counting each edge once?", "12");
    await ingestFixture(ctx, "sft", [{ sourceIndex: 0, questions: [shared, sftOnly] }]);
    await dedupBranch(ctx, "sft");
    const own = question(
      "r",
      "Compute the number of diagonals of a convex octagon, with a short reason.",
      "20",
    );
    await ingestFixture(ctx, "rl", [
      {
        sourceIndex: 0,
        questions: [
          { ...shared, source: "r" },
          question("r", `${leak}?`, "Jupiter"),
          own,
          question("r", "What is the sum of the interior angles of a convex hexagon, in degrees?", "720"),
        ],
      },
    ]);
    await dedupBranch(ctx, "rl");
    const rejects = await records<Record<string, unknown>>(ctx, keys.rejects(ctx.runId, "dedup-rl", 0));
    expect(rejects.map((r) => [r.reason, r.duplicateOf ?? r.detail])).toEqual([
      ["in_sft_set", shared.id],
      ["benchmark_contamination", "Planets"],
      ["in_sft_set", shared.id],
    ]);
    const out = await records<Question>(ctx, keys.shard(ctx.runId, "dedup-rl", 0));
    expect(out.map((q) => q.id)).toEqual([own.id]);
  });

  it("handles empty shards and a branch with nothing in it", async () => {
    const ctx = await sampleContext();
    await ingestFixture(ctx, "sft", [
      { sourceIndex: 0, questions: [] },
      { sourceIndex: 1, questions: [question("sample-text-math", "Compute 7 times 8.", "56")] },
      { sourceIndex: 1, questions: [] },
    ]);
    const s = await dedupBranch(ctx, "sft", { partitions: 4 });
    expect([s.in, s.out, s.rejected, s.shards]).toEqual([1, 1, 0, 3]);
    const empty = await sampleContext();
    await ingestFixture(empty, "sft", []);
    expect((await dedupBranch(empty, "sft")).in).toBe(0);
  });

  it("resumes after a crash at any step with the same output, and refuses to run a step early", async () => {
    const ref = await bigFixture();
    await dedupBranch(ref.ctx, "sft", { partitions: 5 });
    const expected = await stageFiles(ref.ctx, "dedup-sft");

    const { ctx } = await bigFixture();
    const plan = await planDedup(ctx, "sft", { partitions: 5 });
    const sign = await readJson<SignItem[]>(ctx.store, plan.sign);
    const parts = await readJson<PartitionItem[]>(ctx.store, plan.partitions);
    const apply = await readJson<IngestItem[]>(ctx.store, plan.apply);
    // A group child before every shard is signed, and an apply child before resolve, fail loudly.
    await signQuestions(ctx, sign![0]!);
    await expect(groupPartition(ctx, parts![0]!)).rejects.toBeInstanceOf(InvariantError);
    await expect(applyDedup(ctx, apply![0]!)).rejects.toBeInstanceOf(InvariantError);
    // Killed part-way through each Map: some children done, the rest run on the redrive.
    await signQuestions(ctx, sign![1]!);
    for (const item of sign!) await signQuestions(ctx, item);
    await groupPartition(ctx, parts![2]!);
    for (const item of parts!) await groupPartition(ctx, item);
    await resolveDuplicates(ctx, "sft");
    await applyDedup(ctx, apply![3]!);
    // A redrive from the plan runs every step again; finished ones are skipped.
    await dedupBranch(ctx, "sft", { partitions: 5 });
    expect(await stageFiles(ctx, "dedup-sft")).toEqual(expected);
    expect(await planDedup(ctx, "sft")).toMatchObject({ done: true });
  });
});
