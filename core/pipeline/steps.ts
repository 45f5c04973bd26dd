/**
 * The pipeline's steps, as DESIGN.md's flow names them. Each is idempotent: a shard whose stats
 * exist and a stage whose `_SUCCESS` exists are not recomputed.
 */
import { type ConfigProblem, parseRunConfigText, validateRunConfig } from "../config/index.ts";
import type { RunConfig, Source } from "../config/schema.ts";
import { Decontaminator, NearDuplicateFinder } from "../dedup/index.ts";
import { InputContractError } from "../errors.ts";
import { type Branch, DEDUP_STAGE, INGEST_STAGE, keys, type Stage } from "../layout/index.ts";
import type { ImageRef } from "../records/index.ts";
import { type ByteStore, readJson, writeJson } from "../shards/byte-store.ts";
import { type SourceRow, shardRows } from "../shards/jsonl.ts";
import { readParquetRows } from "../shards/parquet.ts";
import { ingestRows } from "../stages/ingest.ts";

import { markStageDone, runShard, type StageSummary } from "../stages/stage.ts";
import { type RunContext, readManifest, sourceFiles, writeManifest } from "./context.ts";
import { type GenerateItem, loadQuestionSlice, questionsOf } from "./slices.ts";

export type { Branch };
export { type GenerateItem, loadQuestionSlice };

// ---------------------------------------------------------------- validate-config

export type ValidateOutcome = { ok: true; config: RunConfig } | { ok: false; problems: ConfigProblem[] };

/** Resolves run.json into config.json, or returns every problem (the caller fails the run). */
export async function validateConfig(store: ByteStore, runId: string): Promise<ValidateOutcome> {
  const bytes = await store.readBytes(keys.runConfig(runId));
  if (!bytes) {
    return {
      ok: false,
      problems: [{ path: "$", expected: "runs/<id>/run.json", found: "nothing", message: "no run.json" }],
    };
  }
  const result = parseRunConfigText(bytes.toString("utf8"));
  if (!result.ok) return result;
  if (result.config.runId !== runId) {
    return {
      ok: false,
      problems: [
        {
          path: "$.runId",
          expected: JSON.stringify(runId),
          found: JSON.stringify(result.config.runId),
          message: "runId must match the folder the file was uploaded to",
        },
      ],
    };
  }
  await writeJson(store, keys.resolvedConfig(runId), result.config);
  return { ok: true, config: result.config };
}

export { validateRunConfig };

// ---------------------------------------------------------------- ingest

export interface IngestItem {
  branch: Branch;
  shard: number;
  sourceIndex: number;
  source: string;
  file: string;
}

/** Lists every source file of a branch in source order; item i becomes ingest shard i. */
export async function planIngest(
  ctx: RunContext,
  branch: Branch,
): Promise<{ manifest: string; shards: number }> {
  const items: IngestItem[] = [];
  const sources = ctx.config.sources[branch];
  for (const [sourceIndex, source] of sources.entries()) {
    const files = await sourceFiles(ctx.sources(source.uri), source.format);
    for (const file of files)
      items.push({ branch, shard: items.length, sourceIndex, source: source.name, file });
  }
  const manifest = keys.manifest(ctx.runId, INGEST_STAGE[branch]);
  await writeManifest(ctx.store, manifest, items);
  return { manifest, shards: items.length };
}

async function* sourceRows(ctx: RunContext, source: Source, file: string): AsyncGenerator<SourceRow> {
  const { store } = ctx.sources(source.uri);
  if (source.format === "parquet") {
    let n = 0;
    try {
      for await (const row of readParquetRows(store, file))
        yield { origin: `${file}#${++n}`, ok: true, value: row };
    } catch (err) {
      // A corrupt file is one reject for the rest of the file, not a crashed run.
      yield { origin: `${file}#${n + 1}`, ok: false, error: `unreadable parquet: ${(err as Error).message}` };
    }
    return;
  }
  yield* shardRows(store, file);
}

/** Resolves an image reference from a source row: data: URLs, s3:// URIs, or paths relative to the source file. */
export async function loadSourceImage(
  ctx: RunContext,
  source: Source,
  file: string,
  ref: string,
): Promise<Uint8Array | null> {
  if (ref.startsWith("data:")) {
    const comma = ref.indexOf(",");
    if (comma < 0 || !ref.slice(0, comma).endsWith(";base64")) return null;
    return Buffer.from(ref.slice(comma + 1), "base64");
  }
  if (/^https?:\/\//.test(ref)) {
    const res = await fetch(ref, { signal: AbortSignal.timeout(30_000) }).catch(() => null);
    return res?.ok ? new Uint8Array(await res.arrayBuffer()) : null;
  }
  const location = ref.startsWith("s3://") ? ctx.sources(ref) : null;
  if (location) return location.store.readBytes(location.key);
  const { store } = ctx.sources(source.uri);
  const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "";
  const parts: string[] = [];
  for (const p of `${dir}${ref}`.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== "." && p !== "") parts.push(p);
  }
  return store.readBytes(parts.join("/"));
}

export async function ingestShard(ctx: RunContext, item: IngestItem) {
  const source = ctx.config.sources[item.branch][item.sourceIndex];
  if (!source || source.name !== item.source)
    throw new InputContractError(`manifest item does not match the config: ${item.source}`);
  return runShard(ctx.store, ctx.runId, INGEST_STAGE[item.branch], item.shard, async (run) => {
    await ingestRows(
      sourceRows(ctx, source, item.file),
      { source, systemPrompt: ctx.config.teacher.systemPrompt },
      {
        load: (ref) => loadSourceImage(ctx, source, item.file, ref),
        save: async (ref, bytes) => {
          await ctx.store.writeIfAbsent(keys.image(ref.sha256), bytes, { contentType: ref.mediaType });
        },
      },
      run,
    );
  });
}

// ---------------------------------------------------------------- dedup

/**
 * Dedup of one branch: exact and near-duplicate removal in source order, the sample cap of each
 * source, benchmark decontamination, and (RL) removal of questions already in the SFT pool.
 * Output shard i holds what survives of ingest shard i.
 */
export async function dedupBranch(ctx: RunContext, branch: Branch): Promise<StageSummary> {
  const stage = DEDUP_STAGE[branch];
  const done = await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, stage));
  if (done) return done;
  const items = await readManifest<IngestItem>(ctx.store, keys.manifest(ctx.runId, INGEST_STAGE[branch]));
  const finder = new NearDuplicateFinder(ctx.config.dedup);
  if (branch === "rl" && ctx.config.rl.removeSftOverlap && ctx.config.sources.sft.length > 0) {
    const sftItems = await readManifest<IngestItem>(ctx.store, keys.manifest(ctx.runId, INGEST_STAGE.sft));
    for (const it of sftItems) {
      for await (const q of questionsOf(ctx.store, keys.shard(ctx.runId, DEDUP_STAGE.sft, it.shard))) {
        finder.add(q.id, q.question, q.images, true, q.answer);
      }
    }
  }
  const start = finder.size;
  for (const it of items) {
    for await (const q of questionsOf(ctx.store, keys.shard(ctx.runId, INGEST_STAGE[branch], it.shard))) {
      finder.add(q.id, q.question, q.images, false, q.answer);
    }
  }
  finder.resolve();
  const decon = new Decontaminator(ctx.config.dedup.decontamination.ngram);
  for (const bench of ctx.config.dedup.decontamination.benchmarks) {
    const location = ctx.sources(bench.uri);
    for (const file of await sourceFiles(location, bench.format)) {
      const rows: AsyncIterable<SourceRow> =
        bench.format === "parquet"
          ? (async function* () {
              for await (const r of readParquetRows(location.store, file))
                yield { origin: file, ok: true, value: r };
            })()
          : shardRows(location.store, file);
      for await (const r of rows) {
        const text = r.ok ? (r.value as Record<string, unknown>)[bench.questionColumn] : null;
        if (typeof text === "string") decon.addBenchmarkQuestion(bench.name, text);
      }
    }
  }
  const perSource = new Map<string, number>();
  let index = start;
  for (const it of items) {
    const source = ctx.config.sources[branch][it.sourceIndex]!;
    await runShard(ctx.store, ctx.runId, stage, it.shard, async (run) => {
      for await (const q of questionsOf(ctx.store, keys.shard(ctx.runId, INGEST_STAGE[branch], it.shard))) {
        run.seen();
        const decision = finder.decision(index++);
        if (!decision.keep) {
          await run.reject({
            reason: decision.reason,
            questionId: q.id,
            duplicateOf: decision.duplicateOf,
            origin: q.source,
          });
          continue;
        }
        const leak = decon.size > 0 ? decon.check(q.question) : null;
        if (leak) {
          await run.reject({
            reason: "benchmark_contamination",
            questionId: q.id,
            detail: leak,
            origin: q.source,
          });
          continue;
        }
        const taken = perSource.get(source.name) ?? 0;
        if (source.maxSamples !== undefined && taken >= source.maxSamples) {
          await run.reject({ reason: "over_sample_cap", questionId: q.id, origin: q.source });
          continue;
        }
        perSource.set(source.name, taken + 1);
        run.count(`domain_${q.domain}`);
        await run.emit(q);
      }
    });
  }
  return markStageDone(ctx.store, ctx.runId, stage);
}

// ---------------------------------------------------------------- plan-generation

/** Splits the dedup output into array-job slices of at most questionsPerShard (more if the array would be too big). */
export async function planGeneration(
  ctx: RunContext,
  branch: Branch,
  planStage: Stage,
): Promise<{ manifest: string; arraySize: number; questions: number }> {
  const dedupItems = await readManifest<IngestItem>(
    ctx.store,
    keys.manifest(ctx.runId, INGEST_STAGE[branch]),
  );
  const counts: { key: string; n: number }[] = [];
  for (const it of dedupItems) {
    const stats = await ctx.store.readBytes(keys.stats(ctx.runId, DEDUP_STAGE[branch], it.shard));
    const out = stats ? (JSON.parse(stats.toString()) as { out: number }).out : 0;
    if (out > 0) counts.push({ key: keys.shard(ctx.runId, DEDUP_STAGE[branch], it.shard), n: out });
  }
  const total = counts.reduce((a, c) => a + c.n, 0);
  let per = ctx.config.batch.questionsPerShard;
  const slices = () => counts.reduce((a, c) => a + Math.ceil(c.n / per), 0);
  while (slices() > ctx.config.batch.maxArraySize) per *= 2;
  const items: GenerateItem[] = [];
  for (const c of counts) {
    for (let skip = 0; skip < c.n; skip += per)
      items.push({ shard: items.length, questions: c.key, skip, take: Math.min(per, c.n - skip) });
  }
  const manifest = keys.manifest(ctx.runId, planStage);
  await writeManifest(ctx.store, manifest, items);
  return { manifest, arraySize: items.length, questions: total };
}

export { type MixPlan, planVerify, selectAndMix, type VerifyItem, verifyShard } from "./verify-step.ts";
export type { ImageRef };
