/**
 * Dedup of one branch as a fan-out keyed by LSH band, so no process holds every question:
 *
 *   plan      which question shards to sign (for RL: the SFT set first, as reference) and how many
 *             partitions the band rows go to
 *   sign      (a Map child per question shard) MinHash signature of each question, one row per LSH
 *             band plus one exact row per id, each sent to partition hash(band, bucket) mod P; and
 *             the shard's benchmark-contamination hits
 *   group     (a Map child per partition) candidate pairs of the buckets in that partition only
 *   resolve   (one step) checks the pairs with the signatures of the questions in them only, joins
 *             groups (earliest kept), and writes each shard's drops and sample-cap quota
 *   apply     (a Map child per ingest shard) writes the dedup shard, rejects and stats
 *
 * The grouping rule is core/dedup/groups.ts, the same one the in-memory finder runs; the outcome does
 * not depend on the number of partitions. Every step writes its output atomically and is skipped on
 * a rerun when its output exists, so a child killed at any point is simply run again.
 */
import { Readable } from "node:stream";
import pLimit from "p-limit";
import {
  comparableAnswer,
  type DedupFeatures,
  decodeRows,
  EXACT_BAND,
  idBits,
  mathTokensHash,
  PairList,
  partitionOf,
  partitionPairs,
  ROW_BYTES,
  similar,
  UnionFind,
  writeRow,
} from "../dedup/groups.ts";
import { Decontaminator } from "../dedup/index.ts";
import { bandKey, createMinHasher } from "../dedup/minhash.ts";
import { InvariantError } from "../errors.ts";
import { type Branch, DEDUP_STAGE, INGEST_STAGE, keys, type Stage, shardName } from "../layout/index.ts";
import { readJson, writeJson } from "../shards/byte-store.ts";
import { type SourceRow, shardRows } from "../shards/jsonl.ts";
import { readParquetRows } from "../shards/parquet.ts";
import { markStageDone, runShard, type ShardStats, type StageSummary } from "../stages/stage.ts";
import { type RunContext, readManifest, sourceFiles, writeManifest } from "./context.ts";
import { questionsOf } from "./slices.ts";
import type { IngestItem } from "./steps.ts";

/** One question shard to sign. Reference shards (the SFT set, for RL) come first and are never dropped. */
export interface SignItem {
  branch: Branch;
  /** Position in the sign manifest: the high part of every order of this shard. */
  index: number;
  questions: string;
  reference: boolean;
  /** How many partitions the band rows go to. */
  partitions: number;
  /** The ingest shard (own items only). */
  shard?: number;
  sourceIndex?: number;
}

export interface PartitionItem {
  branch: Branch;
  partition: number;
  partitions: number;
}

export interface DedupPlan {
  /** The stage's `_SUCCESS` exists: nothing to do. */
  done: boolean;
  sign: string;
  partitions: string;
  /** The apply manifest: the branch's ingest manifest (output shard i follows ingest shard i). */
  apply: string;
  partitionCount: number;
  questions: number;
}

interface BandIndex {
  partitions: number;
  rows: number;
  /** Byte offsets of each partition's rows in the .bin file (length partitions + 1). */
  offsets: number[];
  /** [row, benchmark] of rows that leak a benchmark question. */
  contaminated: [number, string][];
}

type DropReason = "duplicate_question" | "near_duplicate" | "in_sft_set";

interface ShardDecisions {
  /** [row, reason, kept question's id, kept question's `<shard key>:<line>`] */
  drops: [number, DropReason, string, string?][];
  contaminated: [number, string][];
  /** How many survivors this shard may keep under its source's sample cap (null: no cap). */
  quota: number | null;
}

export interface ResolveSummary {
  partitions: number;
  candidatePairs: number;
  questionsInPairs: number;
  pairsConfirmed: number;
  pairsRejected: number;
  dropped: number;
}

/** Rows per shard are below 2^24, sign items below 2^29: orders stay exact doubles. */
const ROW_SPAN = 2 ** 24;
/** Band rows per partition the plan aims at (24 bytes each: ~100 MB per group child). */
const ROWS_PER_PARTITION = 4_000_000;
const MAX_PARTITIONS = 1000;
const READ_CONCURRENCY = 16;

const orderOf = (index: number, row: number) => index * ROW_SPAN + row;
const itemOf = (order: number) => Math.floor(order / ROW_SPAN);
const rowOf = (order: number) => order % ROW_SPAN;

function workKeys(ctx: RunContext, branch: Branch) {
  const stage = DEDUP_STAGE[branch];
  const at = (file: string) => keys.work(ctx.runId, stage, file);
  return {
    stage,
    sign: at("sign.json"),
    partitions: at("partitions.json"),
    resolved: at("resolved.json"),
    bands: (index: number) => at(`bands/${shardName(index)}.bin`),
    bandIndex: (index: number) => at(`bands/${shardName(index)}.json`),
    pairs: (partition: number) => at(`pairs/${shardName(partition)}.bin`),
    decisions: (shard: number) => at(`decisions/${shardName(shard)}.json`),
  };
}

async function stageOut(ctx: RunContext, stage: Stage) {
  return (await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, stage)))?.out ?? 0;
}

// ---------------------------------------------------------------- plan

export async function planDedup(
  ctx: RunContext,
  branch: Branch,
  options: { partitions?: number } = {},
): Promise<DedupPlan> {
  const w = workKeys(ctx, branch);
  // The apply Map goes over the ingest shards: it reads the ingest manifest itself.
  const apply = keys.manifest(ctx.runId, INGEST_STAGE[branch]);
  const plan = { sign: w.sign, partitions: w.partitions, apply };
  if (await ctx.store.exists(keys.success(ctx.runId, w.stage)))
    return { done: true, ...plan, partitionCount: 0, questions: 0 };
  const items = await readManifest<IngestItem>(ctx.store, apply);
  const sign: Omit<SignItem, "partitions">[] = [];
  let questions = await stageOut(ctx, INGEST_STAGE[branch]);
  if (branch === "rl" && ctx.config.rl.removeSftOverlap && ctx.config.sources.sft.length > 0) {
    const sftItems = await readManifest<IngestItem>(ctx.store, keys.manifest(ctx.runId, INGEST_STAGE.sft));
    for (const it of sftItems)
      sign.push({
        branch,
        index: sign.length,
        questions: keys.shard(ctx.runId, DEDUP_STAGE.sft, it.shard),
        reference: true,
      });
    questions += await stageOut(ctx, DEDUP_STAGE.sft);
  }
  for (const it of items)
    sign.push({
      branch,
      index: sign.length,
      questions: keys.shard(ctx.runId, INGEST_STAGE[branch], it.shard),
      reference: false,
      shard: it.shard,
      sourceIndex: it.sourceIndex,
    });
  const rows = questions * (ctx.config.dedup.lshBands + 1);
  const partitionCount =
    options.partitions ?? Math.min(MAX_PARTITIONS, Math.max(1, Math.ceil(rows / ROWS_PER_PARTITION)));
  const partitions: PartitionItem[] = Array.from({ length: partitionCount }, (_, partition) => ({
    branch,
    partition,
    partitions: partitionCount,
  }));
  await writeManifest(
    ctx.store,
    w.sign,
    sign.map((s) => ({ ...s, partitions: partitionCount })),
  );
  await writeManifest(ctx.store, w.partitions, partitions);
  return { done: false, ...plan, partitionCount, questions };
}

// ---------------------------------------------------------------- sign

/** Row buffers of one partition, grown by doubling. */
class RowBuffer {
  buf = Buffer.allocUnsafe(ROW_BYTES * 256);
  length = 0;
  push(band: number, key: number, order: number, tagA: number, tagB: number): void {
    if ((this.length + 1) * ROW_BYTES > this.buf.length) {
      const grown = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(grown, 0, 0, this.length * ROW_BYTES);
      this.buf = grown;
    }
    writeRow(this.buf, this.length * ROW_BYTES, band, key, order, tagA, tagB);
    this.length += 1;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.length * ROW_BYTES);
  }
}

/** The benchmark questions of the config's decontamination list. */
export async function loadDecontaminator(ctx: RunContext): Promise<Decontaminator> {
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
  return decon;
}

export async function signQuestions(
  ctx: RunContext,
  item: SignItem,
  decontaminator?: Decontaminator,
): Promise<{ skipped: boolean; rows: number; contaminated: number }> {
  const { partitions } = item;
  const w = workKeys(ctx, item.branch);
  const done = await readJson<BandIndex>(ctx.store, w.bandIndex(item.index));
  if (done) return { skipped: true, rows: done.rows, contaminated: done.contaminated.length };
  const { minhashPermutations: perms, lshBands, shingleSize } = ctx.config.dedup;
  const hasher = createMinHasher(perms, shingleSize);
  const rowsPerBand = perms / lshBands;
  const decon = item.reference
    ? null
    : ctx.config.dedup.decontamination.benchmarks.length > 0
      ? (decontaminator ?? (await loadDecontaminator(ctx)))
      : null;
  const buffers = Array.from({ length: partitions }, () => new RowBuffer());
  const sig = new Uint32Array(perms);
  const contaminated: [number, string][] = [];
  let row = 0;
  for await (const q of questionsOf(ctx.store, item.questions)) {
    if (row >= ROW_SPAN)
      throw new InvariantError(`${item.questions}: more than ${ROW_SPAN} questions in a shard`);
    const order = orderOf(item.index, row);
    const { key, tagA, tagB } = idBits(q.id);
    buffers[partitionOf(EXACT_BAND, key, partitions)]!.push(EXACT_BAND, key, order, tagA, tagB);
    hasher.signature(q.question, sig);
    for (let band = 0; band < lshBands; band++) {
      const k = bandKey(sig, 0, band, rowsPerBand);
      buffers[partitionOf(band, k, partitions)]!.push(band, k, order, tagA, tagB);
    }
    const leak = decon && decon.size > 0 ? decon.check(q.question) : null;
    if (leak) contaminated.push([row, leak]);
    row += 1;
  }
  const offsets = [0];
  for (const b of buffers) offsets.push(offsets[offsets.length - 1]! + b.length * ROW_BYTES);
  // Streamed partition by partition: a big shard's rows are not copied into one more buffer.
  const parts = buffers.filter((b) => b.length > 0).map((b) => b.bytes());
  await ctx.store.write(w.bands(item.index), parts.length > 0 ? Readable.from(parts) : Buffer.alloc(0), {
    contentType: "application/octet-stream",
  });
  // The index is written last: it is the marker that this shard is signed.
  const index: BandIndex = { partitions, rows: row, offsets, contaminated };
  await writeJson(ctx.store, w.bandIndex(item.index), index);
  return { skipped: false, rows: row, contaminated: contaminated.length };
}

// ---------------------------------------------------------------- group

async function bandIndex(
  ctx: RunContext,
  branch: Branch,
  index: number,
  partitions: number,
): Promise<BandIndex> {
  const idx = await readJson<BandIndex>(ctx.store, workKeys(ctx, branch).bandIndex(index));
  if (!idx)
    throw new InvariantError(
      `dedup-${branch}: sign item ${index} has no band index (sign step not finished)`,
    );
  if (idx.partitions !== partitions)
    throw new InvariantError(
      `dedup-${branch}: sign item ${index} has ${idx.partitions} partitions, not ${partitions}`,
    );
  return idx;
}

/** The candidate pairs of one partition: reads only that partition's byte range of every band file. */
export async function groupPartition(
  ctx: RunContext,
  item: PartitionItem,
): Promise<{ skipped: boolean; rows: number; pairs: number }> {
  const w = workKeys(ctx, item.branch);
  const out = w.pairs(item.partition);
  const existing = await ctx.store.size(out);
  if (existing !== null) return { skipped: true, rows: 0, pairs: existing / 24 };
  const signItems = await readManifest<SignItem>(ctx.store, w.sign);
  const limit = pLimit(READ_CONCURRENCY);
  const chunks = await Promise.all(
    signItems.map((s) =>
      limit(async () => {
        const idx = await bandIndex(ctx, item.branch, s.index, item.partitions);
        const start = idx.offsets[item.partition]!;
        const end = idx.offsets[item.partition + 1]!;
        return end > start ? ctx.store.readRange(w.bands(s.index), start, end) : Buffer.alloc(0);
      }),
    ),
  );
  const rows = decodeRows(chunks);
  const pairs = partitionPairs(rows);
  await ctx.store.write(out, pairs.bytes(), { contentType: "application/octet-stream" });
  return { skipped: false, rows: rows.length, pairs: pairs.length };
}

// ---------------------------------------------------------------- resolve

/**
 * Checks every candidate pair with the signatures of the questions in pairs only, joins groups, and
 * writes each ingest shard's decisions; `resolved.json` last.
 */
export async function resolveDuplicates(ctx: RunContext, branch: Branch): Promise<ResolveSummary> {
  const w = workKeys(ctx, branch);
  const done = await readJson<ResolveSummary>(ctx.store, w.resolved);
  if (done) return done;
  const signItems = await readManifest<SignItem>(ctx.store, w.sign);
  const partitions = await readManifest<PartitionItem>(ctx.store, w.partitions);
  const limit = pLimit(READ_CONCURRENCY);
  const pairFiles = await Promise.all(
    partitions.map((p) =>
      limit(async () => {
        const bytes = await ctx.store.readBytes(w.pairs(p.partition));
        if (!bytes)
          throw new InvariantError(
            `dedup-${branch}: partition ${p.partition} has no pairs file (group step not finished)`,
          );
        return PairList.fromBytes(bytes);
      }),
    ),
  );
  // The questions in any pair, in priority order: their position is their union-find index.
  const involvedSet = new Set<number>();
  let candidatePairs = 0;
  for (const list of pairFiles)
    for (let k = 0; k < list.length; k++) {
      const p = list.get(k);
      involvedSet.add(p.a);
      involvedSet.add(p.b);
      candidatePairs += 1;
    }
  const involved = Float64Array.from(involvedSet).sort();
  involvedSet.clear();
  const position = new Map<number, number>();
  for (let i = 0; i < involved.length; i++) position.set(involved[i]!, i);

  // Features of the involved questions, read shard by shard (only shards that have any).
  const features: DedupFeatures[] = new Array(involved.length);
  const ids: string[] = new Array(involved.length);
  const { minhashPermutations: perms, shingleSize } = ctx.config.dedup;
  const hasher = createMinHasher(perms, shingleSize);
  const shardsInvolved = [...new Set(Array.from(involved, itemOf))];
  await Promise.all(
    shardsInvolved.map((index) =>
      limit(async () => {
        let row = 0;
        for await (const q of questionsOf(ctx.store, signItems[index]!.questions)) {
          const i = position.get(orderOf(index, row++));
          if (i === undefined) continue;
          const sig = new Uint32Array(perms);
          hasher.signature(q.question, sig);
          features[i] = {
            sig,
            answer: comparableAnswer(q.answer),
            math: mathTokensHash(q.question),
            images:
              q.images.length > 0
                ? q.images.map((m) => ({ sha256: m.sha256, dhash: m.dhash ?? null }))
                : null,
          };
          ids[i] = q.id;
        }
      }),
    ),
  );
  for (let i = 0; i < involved.length; i++)
    if (!features[i])
      throw new InvariantError(`dedup-${branch}: order ${involved[i]} is in a pair but not in its shard`);

  const groups = new UnionFind(involved.length);
  const exactCopy = new Uint8Array(involved.length);
  let pairsConfirmed = 0;
  let pairsRejected = 0;
  for (const list of pairFiles)
    for (let k = 0; k < list.length; k++) {
      const p = list.get(k);
      const a = position.get(p.a)!;
      const b = position.get(p.b)!;
      if (p.exact) {
        groups.union(a, b);
        exactCopy[b] = 1;
        continue;
      }
      if (groups.find(a) === groups.find(b)) continue;
      if (similar(ctx.config.dedup, features[a]!, features[b]!)) {
        groups.union(a, b);
        pairsConfirmed += 1;
      } else pairsRejected += 1;
    }

  const reference = (i: number) => signItems[itemOf(involved[i]!)]!.reference;
  const drops = new Map<number, ShardDecisions["drops"]>();
  let dropped = 0;
  for (let i = 0; i < involved.length; i++) {
    const root = groups.find(i);
    if (root === i || reference(i)) continue;
    const reason: DropReason = reference(root)
      ? "in_sft_set"
      : exactCopy[i]
        ? "duplicate_question"
        : "near_duplicate";
    const index = itemOf(involved[i]!);
    const list = drops.get(index) ?? [];
    drops.set(index, list);
    // Where the kept question is: its shard's key and line (that record carries its source's file:line).
    const keptAt = `${signItems[itemOf(involved[root]!)]!.questions}:${rowOf(involved[root]!) + 1}`;
    list.push([rowOf(involved[i]!), reason, ids[root]!, keptAt]);
    dropped += 1;
  }

  // Sample caps: survivors of dedup and decontamination count against their source's cap in
  // source order, so each shard gets the quota the sequential pass would leave it.
  const taken = new Map<number, number>();
  const own = signItems.filter((s) => !s.reference);
  const indexes = await Promise.all(
    own.map((s) => limit(() => bandIndex(ctx, branch, s.index, partitions.length))),
  );
  const writes: Promise<void>[] = [];
  own.forEach((s, k) => {
    const idx = indexes[k]!;
    const shardDrops = (drops.get(s.index) ?? []).sort((x, y) => x[0] - y[0]);
    const droppedRows = new Set(shardDrops.map(([row]) => row));
    const contaminated = idx.contaminated.filter(([row]) => !droppedRows.has(row));
    const survivors = idx.rows - shardDrops.length - contaminated.length;
    const cap = ctx.config.sources[branch][s.sourceIndex!]?.maxSamples;
    let quota: number | null = null;
    if (cap !== undefined) {
      const before = taken.get(s.sourceIndex!) ?? 0;
      quota = Math.max(0, Math.min(survivors, cap - before));
      taken.set(s.sourceIndex!, before + quota);
    }
    const decisions: ShardDecisions = { drops: shardDrops, contaminated, quota };
    writes.push(limit(() => writeJson(ctx.store, w.decisions(s.shard!), decisions)));
  });
  await Promise.all(writes);
  const summary: ResolveSummary = {
    partitions: partitions.length,
    candidatePairs,
    questionsInPairs: involved.length,
    pairsConfirmed,
    pairsRejected,
    dropped,
  };
  await writeJson(ctx.store, w.resolved, summary);
  return summary;
}

// ---------------------------------------------------------------- apply

/** Writes dedup shard i from ingest shard i and its decisions: drops, contamination, the sample cap. */
export async function applyDedup(
  ctx: RunContext,
  item: IngestItem,
): Promise<{ skipped: boolean; stats: ShardStats }> {
  const w = workKeys(ctx, item.branch);
  return runShard(ctx.store, ctx.runId, w.stage, item.shard, async (run) => {
    const decisions = await readJson<ShardDecisions>(ctx.store, w.decisions(item.shard));
    if (!decisions)
      throw new InvariantError(
        `dedup-${item.branch}: shard ${item.shard} has no decisions (resolve step not finished)`,
      );
    const drops = new Map(decisions.drops.map(([row, reason, of, at]) => [row, { reason, of, at }]));
    const leaks = new Map(decisions.contaminated);
    let kept = 0;
    let row = 0;
    for await (const q of questionsOf(
      ctx.store,
      keys.shard(ctx.runId, INGEST_STAGE[item.branch], item.shard),
    )) {
      run.seen();
      const drop = drops.get(row);
      const leak = leaks.get(row);
      row += 1;
      if (drop) {
        await run.reject({
          reason: drop.reason,
          questionId: q.id,
          duplicateOf: drop.of,
          ...(drop.at ? { duplicateAt: drop.at } : {}),
          origin: q.origin ?? q.source,
        });
        continue;
      }
      if (leak) {
        await run.reject({
          reason: "benchmark_contamination",
          questionId: q.id,
          detail: leak,
          origin: q.origin ?? q.source,
        });
        continue;
      }
      if (decisions.quota !== null && kept >= decisions.quota) {
        await run.reject({ reason: "over_sample_cap", questionId: q.id, origin: q.origin ?? q.source });
        continue;
      }
      kept += 1;
      run.count(`domain_${q.domain}`);
      await run.emit(q);
    }
  });
}

// ---------------------------------------------------------------- in process

/**
 * The whole fan-out in one process, step after step (the in-process driver and tests). The state
 * machine runs the same steps as Map children.
 */
export async function dedupBranch(
  ctx: RunContext,
  branch: Branch,
  options: { partitions?: number } = {},
): Promise<StageSummary> {
  const stage = DEDUP_STAGE[branch];
  const plan = await planDedup(ctx, branch, options);
  if (plan.done) return (await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, stage)))!;
  const decon = await loadDecontaminator(ctx);
  for (const item of await readManifest<SignItem>(ctx.store, plan.sign))
    await signQuestions(ctx, item, decon);
  for (const item of await readManifest<PartitionItem>(ctx.store, plan.partitions))
    await groupPartition(ctx, item);
  await resolveDuplicates(ctx, branch);
  for (const item of await readManifest<IngestItem>(ctx.store, plan.apply)) await applyDedup(ctx, item);
  return markStageDone(ctx.store, ctx.runId, stage);
}
