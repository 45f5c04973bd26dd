/**
 * What every stage shares (datatrove style): records out, rejects with a reason code out, stats
 * per shard written last, and `_SUCCESS` for the stage once every shard is done. Counts must add
 * up: records in = records out + rejects, or the shard fails as a bug.
 */
import { InputContractError, InvariantError, StageIncompleteError } from "../errors.ts";
import { keys, STAGES, type Stage } from "../layout/index.ts";
import type { Reject } from "../records/index.ts";
import { type ByteStore, listAll, readJson, writeJson } from "../shards/byte-store.ts";
import { ShardWriter } from "../shards/jsonl.ts";

/** The counts a shard and a whole stage report alike. */
interface Counts {
  in: number;
  out: number;
  rejected: number;
  reasons: Record<string, number>;
  /** Stage-specific counters (tokens, judge calls, per-domain counts, ...). */
  extra: Record<string, number>;
  seconds: number;
}

export interface ShardStats extends Counts {
  stage: Stage;
  shard: number;
}

export interface StageSummary extends Counts {
  stage: Stage;
  shards: number;
}

/** Writers and counters for one shard of one stage. */
export class ShardRun {
  readonly records: ShardWriter;
  readonly rejects: ShardWriter;
  private readonly started = Date.now();
  private inCount = 0;
  private readonly reasons: Record<string, number> = {};
  readonly extra: Record<string, number> = {};
  private readonly sides = new Map<string, ShardWriter>();

  private readonly statsKey: string;

  /** `at` redirects the outputs (a stage's internal pass); by default they follow core/layout. */
  constructor(
    readonly store: ByteStore,
    readonly runId: string,
    readonly stage: Stage,
    readonly shard: number,
    private readonly at?: { records: string; rejects: string; stats: string; index?: string },
  ) {
    this.records = new ShardWriter(store, at?.records ?? keys.shard(runId, stage, shard));
    this.rejects = new ShardWriter(store, at?.rejects ?? keys.rejects(runId, stage, shard));
    this.statsKey = at?.stats ?? keys.stats(runId, stage, shard);
  }

  /** Counts one record read from the input. */
  seen(n = 1): void {
    this.inCount += n;
  }

  async emit(record: unknown): Promise<void> {
    await this.records.write(record);
  }

  async reject(reject: Omit<Reject, "stage">): Promise<void> {
    this.reasons[reject.reason] = (this.reasons[reject.reason] ?? 0) + 1;
    await this.rejects.write({ stage: this.stage, ...reject });
  }

  count(name: string, n = 1): void {
    this.extra[name] = (this.extra[name] ?? 0) + n;
  }

  /** A secondary output stream of this shard (written atomically with the rest). */
  side(stream: "traces" | "index" | "counts"): ShardWriter {
    let w = this.sides.get(stream);
    if (!w) {
      const key =
        stream === "index" && this.at?.index
          ? this.at.index
          : keys.side(this.runId, this.stage, stream, this.shard);
      w = new ShardWriter(this.store, key);
      this.sides.set(stream, w);
    }
    return w;
  }

  /** Closes every output, checks that counts add up, then writes stats (the shard's done marker). */
  async finish(): Promise<ShardStats> {
    const out = await this.records.close();
    const rej = await this.rejects.close();
    for (const w of this.sides.values()) await w.close();
    if (this.inCount !== out.records + rej.records) {
      throw new InvariantError(
        `${this.stage} shard ${this.shard}: ${this.inCount} in != ${out.records} out + ${rej.records} rejected`,
      );
    }
    const stats: ShardStats = {
      stage: this.stage,
      shard: this.shard,
      in: this.inCount,
      out: out.records,
      rejected: rej.records,
      reasons: this.reasons,
      extra: this.extra,
      seconds: (Date.now() - this.started) / 1000,
    };
    await writeJson(this.store, this.statsKey, stats);
    return stats;
  }

  async abort(err: Error): Promise<void> {
    await this.records.abort(err);
    await this.rejects.abort(err);
    for (const w of this.sides.values()) await w.abort(err);
  }
}

/**
 * Reads the next record of a shard against its schema: a malformed line or a record that breaks the
 * schema becomes a reject (`invalid_json`, or `reason`) and yields null. Counts the record as seen.
 */
export async function parseRecord<T>(
  run: ShardRun,
  row: { origin: string; ok: true; value: unknown } | { origin: string; ok: false; error: string },
  schema: {
    safeParse(
      v: unknown,
    ): { success: true; data: T } | { success: false; error: { issues: { message: string }[] } };
  },
  reason: string,
): Promise<T | null> {
  run.seen();
  if (!row.ok) {
    await run.reject({ reason: "invalid_json", origin: row.origin, detail: row.error });
    return null;
  }
  const parsed = schema.safeParse(row.value);
  if (!parsed.success) {
    await run.reject({ reason, origin: row.origin, detail: parsed.error.issues[0]?.message });
    return null;
  }
  return parsed.data;
}

/** Runs `body` over one shard; a shard whose stats exist is already done and is skipped. */
export async function runShard(
  store: ByteStore,
  runId: string,
  stage: Stage,
  shard: number,
  body: (run: ShardRun) => Promise<void>,
): Promise<{ skipped: boolean; stats: ShardStats }> {
  const existing = await readJson<ShardStats>(store, keys.stats(runId, stage, shard));
  if (existing) return { skipped: true, stats: existing };
  const run = new ShardRun(store, runId, stage, shard);
  try {
    await body(run);
  } catch (err) {
    await run.abort(err as Error);
    throw err;
  }
  return { skipped: false, stats: await run.finish() };
}

export async function stageDone(store: ByteStore, runId: string, stage: Stage): Promise<boolean> {
  return store.exists(keys.success(runId, stage));
}

/** Sums the shard stats of a stage. */
export async function summarizeStage(
  store: ByteStore,
  runId: string,
  stage: Stage,
  statsFolder = "stats/",
): Promise<StageSummary> {
  const summary = stageSummary(stage, { shards: 0 });
  for (const key of await listAll(store, `${keys.stagePrefix(runId, stage)}${statsFolder}`)) {
    const s = await readJson<ShardStats>(store, key);
    if (!s) continue;
    summary.shards += 1;
    summary.in += s.in;
    summary.out += s.out;
    summary.rejected += s.rejected;
    summary.seconds += s.seconds;
    for (const [k, v] of Object.entries(s.reasons)) summary.reasons[k] = (summary.reasons[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.extra)) summary.extra[k] = (summary.extra[k] ?? 0) + v;
  }
  return summary;
}

/** A stage summary: zero counts, one shard, plus what `fields` says (single-step stages add their files). */
export function stageSummary<T extends Partial<StageSummary>>(stage: Stage, fields?: T): StageSummary & T {
  return {
    stage,
    shards: 1,
    in: 0,
    out: 0,
    rejected: 0,
    reasons: {},
    extra: {},
    seconds: 0,
    ...(fields as T),
  };
}

/** Summaries of every finished stage of a run, in flow order. */
export async function stageSummaries(store: ByteStore, runId: string): Promise<StageSummary[]> {
  const out: StageSummary[] = [];
  for (const stage of STAGES) {
    const s = await readJson<StageSummary>(store, keys.success(runId, stage));
    if (s && typeof s.in === "number") out.push(s);
  }
  return out;
}

/**
 * Writes `_SUCCESS` (with the stage summary) last; reruns skip the stage from then on. With the
 * manifest whose items are the stage's shards, every shard must have its stats first: a shard whose
 * Map child failed within the tolerated percentage leaves none, and the stage is then not done. Its
 * `missing.json` lists those shards (and is emptied once they are computed) and StageIncompleteError fails the run, so they are never skipped
 * for good; a rerun computes exactly them (done shards are skipped by their stats).
 */
export async function markStageDone(
  store: ByteStore,
  runId: string,
  stage: Stage,
  manifestKey?: string,
): Promise<StageSummary> {
  if (manifestKey) {
    const items = await readJson<{ shard: number }[]>(store, manifestKey);
    if (!items) throw new InputContractError(`${stage}: no manifest at ${manifestKey}`);
    const present = new Set(await listAll(store, keys.statsPrefix(runId, stage)));
    const missing = items.map((i) => i.shard).filter((s) => !present.has(keys.stats(runId, stage, s)));
    const record = `${keys.stagePrefix(runId, stage)}missing.json`;
    if (missing.length > 0) {
      await writeJson(store, record, { stage, expected: items.length, missing });
      throw new StageIncompleteError(stage, missing, items.length);
    }
    // A rerun that computed them leaves the record saying so (the step may not delete).
    if (await store.exists(record))
      await writeJson(store, record, { stage, expected: items.length, missing: [] });
  }
  const summary = await summarizeStage(store, runId, stage);
  await writeJson(store, keys.success(runId, stage), summary);
  return summary;
}

/** Shard keys of a stage's output, in shard order. */
export async function stageShards(store: ByteStore, runId: string, stage: Stage): Promise<string[]> {
  return (await listAll(store, keys.shardsPrefix(runId, stage))).filter((k) => k.endsWith(".jsonl.gz"));
}

/**
 * What a stage's in/out counts count: the funnel changes units where the recipe fans a question out
 * into responses or rollouts and back, and a table that does not say so reads as losses.
 */
export const STAGE_UNITS: Readonly<Record<string, string>> = {
  "ingest-sft": "records",
  "ingest-rl": "records",
  "dedup-sft": "questions",
  "dedup-rl": "questions",
  distill: "responses",
  "verify-traces": "traces",
  "select-and-mix": "traces",
  "write-sft-dataset": "rows",
  "estimate-difficulty": "rollouts",
  "filter-rl": "rollouts",
  "write-rl-dataset": "questions",
};
