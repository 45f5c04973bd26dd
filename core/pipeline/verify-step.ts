/**
 * The verify and select-and-mix steps, apart from ingest and dedup so their Lambda bundles stay small.
 */
import { InputContractError, InvariantError, StageIncompleteError } from "../errors.ts";
import { type Branch, DEDUP_STAGE, INGEST_STAGE, keys, type Stage, shardName } from "../layout/index.ts";
import { type ByteStore, listAll, readJson, writeJson } from "../shards/byte-store.ts";
import { readShard, type SourceRow, shardRows } from "../shards/jsonl.ts";
import {
  applyMix,
  type MixIndexEntry,
  type MixPlan,
  planMixFromKeys,
  selectTraces,
} from "../stages/select-mix.ts";
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

/**
 * select-and-mix as a fan-out, so it fits Lambda's limits at the recipe's scale (about 7M verified
 * traces): pass 1 per verified shard (`selectShard`, a Map child), the mix plan from every shard's
 * compact index (`planMixStep`, one step: 8 bytes per selected trace), pass 2 per shard
 * (`applyMixShard`, a Map child), then the summary (`finishMix`). Output shard i follows verify
 * shard i. Every phase skips what is done, so a rerun computes only what is missing.
 */
const MIX: Stage = "select-and-mix";
const mixPlanKey = (runId: string) => `${keys.stagePrefix(runId, MIX)}mix-plan.json`;

/** The plan as written: JSON has no Infinity (a domain kept whole), so it is written as null. */
async function readMixPlan(ctx: RunContext): Promise<MixPlan | null> {
  const plan = await readJson<MixPlan>(ctx.store, mixPlanKey(ctx.runId));
  if (!plan) return null;
  for (const [d, v] of Object.entries(plan.thresholds))
    if (v === null) plan.thresholds[d as keyof MixPlan["thresholds"]] = Number.POSITIVE_INFINITY;
  return plan;
}

/** Pass 1 over one verified shard (a Map child). */
export async function selectShard(ctx: RunContext, verifyStage: Stage, shard: number): Promise<void> {
  if (await ctx.store.exists(keys.success(ctx.runId, MIX))) return;
  await selectIntoScratch(ctx, keys.shard(ctx.runId, verifyStage, shard), shard);
}

/** The mix plan from every shard's index (written once; a rerun reads it back). */
export async function planMixStep(ctx: RunContext, shards: number): Promise<MixPlan> {
  const existing = await readMixPlan(ctx);
  if (existing) return existing;
  const keysByDomain = new Map<string, { keys: Float64Array; n: number }>();
  for (let i = 0; i < shards; i++) {
    const indexKey = scratchKeys(ctx.runId, i).index;
    if (!(await ctx.store.exists(scratchKeys(ctx.runId, i).stats)))
      throw new InputContractError(
        `select-and-mix: shard ${i} has not been selected (its Map child failed?)`,
      );
    for await (const line of readShard(ctx.store, indexKey)) {
      if (!line.ok) continue;
      const e = line.value as MixIndexEntry;
      let d = keysByDomain.get(e.domain);
      if (!d) {
        d = { keys: new Float64Array(1024), n: 0 };
        keysByDomain.set(e.domain, d);
      }
      if (d.n === d.keys.length) {
        const grown = new Float64Array(d.keys.length * 2);
        grown.set(d.keys);
        d.keys = grown;
      }
      d.keys[d.n++] = e.key;
    }
  }
  const plan = planMixFromKeys(
    new Map(
      [...keysByDomain].map(([domain, d]) => [domain as MixIndexEntry["domain"], d.keys.subarray(0, d.n)]),
    ),
    ctx.config,
  );
  await writeJson(ctx.store, mixPlanKey(ctx.runId), plan);
  return plan;
}

/** Pass 2 over one selected shard (a Map child). */
export async function applyMixShard(ctx: RunContext, shard: number): Promise<void> {
  if (await ctx.store.exists(keys.success(ctx.runId, MIX))) return;
  const plan = await readMixPlan(ctx);
  if (!plan)
    throw new InputContractError("select-and-mix: no mix plan yet (plan the mix before applying it)");
  await runShard(ctx.store, ctx.runId, MIX, shard, (run) =>
    applyMix(traceRows(ctx.store, scratchKeys(ctx.runId, shard).records), plan, ctx.config, run),
  );
}

/** The stage's summary over both passes; `_SUCCESS` last. */
export async function finishMix(ctx: RunContext, shards: number): Promise<StageSummary> {
  const done = await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, MIX));
  if (done) return done;
  // One listing of the stats, not a request per shard (a recipe-scale run has thousands).
  const present = new Set(await listAll(ctx.store, keys.statsPrefix(ctx.runId, MIX)));
  const missing: number[] = [];
  for (let i = 0; i < shards; i++) if (!present.has(keys.stats(ctx.runId, MIX, i))) missing.push(i);
  if (missing.length > 0) throw new StageIncompleteError(MIX, missing, shards);
  // The stage's funnel spans both passes: in = selection in; rejects = selection + mix rejects.
  const mixed = await summarizeStage(ctx.store, ctx.runId, MIX);
  const selected = await summarizeStage(ctx.store, ctx.runId, MIX, "selected-stats/");
  const summary: StageSummary = {
    ...mixed,
    in: selected.in,
    rejected: selected.rejected + mixed.rejected,
    reasons: { ...selected.reasons, ...mixed.reasons },
    seconds: selected.seconds + mixed.seconds,
  };
  await writeJson(ctx.store, keys.success(ctx.runId, MIX), summary);
  return summary;
}

/** The whole stage in one process (the direct runner and benches): the same four phases, in order. */
export async function selectAndMix(
  ctx: RunContext,
  verifyStage: Stage,
  shards: number,
): Promise<StageSummary> {
  for (let i = 0; i < shards; i++) await selectShard(ctx, verifyStage, i);
  await planMixStep(ctx, shards);
  for (let i = 0; i < shards; i++) await applyMixShard(ctx, i);
  return finishMix(ctx, shards);
}

function scratchKeys(runId: string, shard: number) {
  const base = keys.stagePrefix(runId, MIX);
  const name = shardName(shard);
  return {
    records: `${base}selected/${name}.jsonl.gz`,
    rejects: `${base}selected-rejects/${name}.jsonl.gz`,
    stats: `${base}selected-stats/${name}.json`,
    index: `${base}selected-index/${name}.jsonl.gz`,
  };
}

/** Pass 1 of select-and-mix for one shard, into the stage's `selected/` folder (skipped when done). */
async function selectIntoScratch(ctx: RunContext, input: string, shard: number): Promise<void> {
  const at = scratchKeys(ctx.runId, shard);
  if (await ctx.store.exists(at.stats)) return;
  const run = new ShardRun(ctx.store, ctx.runId, MIX, shard, at);
  try {
    await selectTraces(traceRows(ctx.store, input), ctx.config, run);
  } catch (err) {
    await run.abort(err as Error);
    throw err;
  }
  await run.finish();
}

export type { MixPlan };
