/**
 * The verify and select-and-mix steps, apart from ingest and dedup so their Lambda bundles stay small.
 */
import { InputContractError, InvariantError } from "../errors.ts";
import { type Branch, DEDUP_STAGE, INGEST_STAGE, keys, type Stage } from "../layout/index.ts";
import { type ByteStore, readJson, writeJson } from "../shards/byte-store.ts";
import { readShard, type SourceRow, shardRows } from "../shards/jsonl.ts";
import { applyMix, type MixIndexEntry, type MixPlan, planMix, selectTraces } from "../stages/select-mix.ts";
import { runShard, ShardRun, type StageSummary, summarizeStage } from "../stages/stage.ts";
import { type QuestionCount, verifyTraces } from "../stages/verify-traces.ts";
import { type RunContext, ratedBySource, readManifest, writeManifest } from "./context.ts";
import { type GenerateItem, loadQuestionSlice } from "./slices.ts";

/** The part of an ingest manifest item this module reads. */
interface IngestItem {
  shard: number;
  sourceIndex: number;
}

// ---------------------------------------------------------------- verify-traces, filter-rl

export interface VerifyItem {
  shard: number;
  traces: string;
  questions: Pick<GenerateItem, "questions" | "skip" | "take">;
  /** RL questions whose pass rate the source carries: no rollouts to verify (`ratedBySource`). */
  passRatesFromSource?: boolean;
}

/** Verify items: one per generate child, plus one per ingest shard of a `traces` source. */
export async function planVerify(
  ctx: RunContext,
  generatePlan: Stage,
  generateStage: Stage,
  stage: Stage,
  branch: Branch,
): Promise<{ manifest: string; shards: number }> {
  const items: VerifyItem[] = [];
  for (const g of await readManifest<GenerateItem>(ctx.store, keys.manifest(ctx.runId, generatePlan))) {
    items.push({ shard: items.length, traces: keys.shard(ctx.runId, generateStage, g.shard), questions: g });
  }
  if (branch === "rl") {
    for (const it of await readManifest<IngestItem>(ctx.store, keys.manifest(ctx.runId, INGEST_STAGE.rl))) {
      if (!ratedBySource(ctx.config, "rl", it.sourceIndex)) continue;
      items.push({
        shard: items.length,
        traces: "",
        questions: {
          questions: keys.shard(ctx.runId, DEDUP_STAGE.rl, it.shard),
          skip: 0,
          take: Number.MAX_SAFE_INTEGER,
        },
        passRatesFromSource: true,
      });
    }
  }
  if (branch === "sft") {
    for (const it of await readManifest<IngestItem>(ctx.store, keys.manifest(ctx.runId, INGEST_STAGE.sft))) {
      if (ctx.config.sources.sft[it.sourceIndex]?.kind !== "traces") continue;
      items.push({
        shard: items.length,
        traces: keys.side(ctx.runId, INGEST_STAGE.sft, "traces", it.shard),
        questions: {
          questions: keys.shard(ctx.runId, DEDUP_STAGE.sft, it.shard),
          skip: 0,
          take: Number.MAX_SAFE_INTEGER,
        },
      });
    }
  }
  const manifest = keys.manifest(ctx.runId, stage);
  await writeManifest(ctx.store, manifest, items);
  return { manifest, shards: items.length };
}

async function* traceRows(store: ByteStore, key: string): AsyncGenerator<SourceRow> {
  if (!(await store.exists(key))) throw new InputContractError(`missing trace shard ${key}`);
  yield* shardRows(store, key);
}

export async function verifyShard(ctx: RunContext, item: VerifyItem, stage: Stage, mode: "sft" | "rollouts") {
  const questions = new Map((await loadQuestionSlice(ctx.store, item.questions)).map((q) => [q.id, q]));
  if (item.passRatesFromSource) {
    // The source measured these pass rates: they are the counts the RL writer reads. No traces
    // pass through this shard (its funnel is 0 in, 0 out); the questions are counted as such.
    return runShard(ctx.store, ctx.runId, stage, item.shard, async (run) => {
      const side = run.side("counts");
      for (const q of questions.values()) {
        if (q.sourcePassRate === undefined)
          throw new InvariantError(`${stage}: question ${q.id} of a source-rated source has no pass rate`);
        await side.write({
          questionId: q.id,
          domain: q.domain,
          source: q.source,
          samples: 0,
          correct: 0,
          passRate: q.sourcePassRate,
          from: "source",
        } satisfies QuestionCount);
      }
      run.count("questions", questions.size);
    });
  }
  return runShard(ctx.store, ctx.runId, stage, item.shard, (run) =>
    verifyTraces(
      traceRows(ctx.store, item.traces),
      { config: ctx.config, mode, questions, judge: ctx.judge },
      run,
    ),
  );
}

// ---------------------------------------------------------------- select-and-mix

/** Pass 1 per verified shard, the mix plan, then pass 2 per shard; output shard i follows verify shard i. */
export async function selectAndMix(
  ctx: RunContext,
  verifyStage: Stage,
  shards: number,
): Promise<StageSummary> {
  const stage: Stage = "select-and-mix";
  const done = await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, stage));
  if (done) return done;
  const entries: MixIndexEntry[] = [];
  for (let i = 0; i < shards; i++) {
    const indexKey = await selectIntoScratch(ctx, keys.shard(ctx.runId, verifyStage, i), i);
    for await (const line of readShard(ctx.store, indexKey))
      if (line.ok) entries.push(line.value as MixIndexEntry);
  }
  const plan = planMix(entries, ctx.config);
  await writeJson(ctx.store, `${keys.stagePrefix(ctx.runId, stage)}mix-plan.json`, plan);
  for (let i = 0; i < shards; i++) {
    const selectedKey = `${keys.stagePrefix(ctx.runId, stage)}selected/${String(i).padStart(5, "0")}.jsonl.gz`;
    await runShard(ctx.store, ctx.runId, stage, i, (run) =>
      applyMix(traceRows(ctx.store, selectedKey), plan, ctx.config, run),
    );
  }
  // The stage's funnel spans both passes: in = selection in; rejects = selection + mix rejects.
  const mixed = await summarizeStage(ctx.store, ctx.runId, stage);
  const selected = await summarizeStage(ctx.store, ctx.runId, stage, "selected-stats/");
  const summary: StageSummary = {
    ...mixed,
    in: selected.in,
    rejected: selected.rejected + mixed.rejected,
    reasons: { ...selected.reasons, ...mixed.reasons },
    seconds: selected.seconds + mixed.seconds,
  };
  await writeJson(ctx.store, keys.success(ctx.runId, stage), summary);
  return summary;
}

/** Pass 1 of select-and-mix for one shard, into the stage's `selected/` folder (skipped when done). */
async function selectIntoScratch(ctx: RunContext, input: string, shard: number): Promise<string> {
  const base = keys.stagePrefix(ctx.runId, "select-and-mix");
  const name = String(shard).padStart(5, "0");
  const at = {
    records: `${base}selected/${name}.jsonl.gz`,
    rejects: `${base}selected-rejects/${name}.jsonl.gz`,
    stats: `${base}selected-stats/${name}.json`,
    index: `${base}selected-index/${name}.jsonl.gz`,
  };
  if (!(await ctx.store.exists(at.stats))) {
    const run = new ShardRun(ctx.store, ctx.runId, "select-and-mix", shard, at);
    try {
      await selectTraces(traceRows(ctx.store, input), ctx.config, run);
    } catch (err) {
      await run.abort(err as Error);
      throw err;
    }
    await run.finish();
  }
  return at.index;
}

export type { MixPlan };
