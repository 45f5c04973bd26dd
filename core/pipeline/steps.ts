/**
 * The pipeline's steps, as DESIGN.md's flow names them. Each is idempotent: a shard whose stats
 * exist and a stage whose `_SUCCESS` exists are not recomputed.
 */
import { type ConfigProblem, parseRunConfigText, validateRunConfig } from "../config/index.ts";
import type { RunConfig, Source } from "../config/schema.ts";
import { InputContractError } from "../errors.ts";
import { ZipArchive } from "../images/zip-archive.ts";
import { type Branch, DEDUP_STAGE, INGEST_STAGE, keys, type Stage } from "../layout/index.ts";
import type { ImageRef } from "../records/index.ts";
import { type ByteStore, readJson, writeJson } from "../shards/byte-store.ts";
import { type SourceRow, shardRows } from "../shards/jsonl.ts";
import { readParquetRows } from "../shards/parquet.ts";
import { ingestRows } from "../stages/ingest.ts";

import { runShard, type ShardStats } from "../stages/stage.ts";
import { type RunContext, ratedBySource, readManifest, sourceFiles, writeManifest } from "./context.ts";
import { type GenerateItem, loadQuestionSlice } from "./slices.ts";

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
  /** The columns the source reads (its mapping; absent for a preset): named when all its rows fail. */
  columns?: Record<string, string>;
}

/** The mapped column a reject reason is about, by reason, and what is wrong with it. */
const COLUMN_OF: Record<string, [field: string, problem: string]> = {
  missing_question: ["question", "no question in column"],
  missing_answer: ["answer", "no gold answer in column"],
  missing_response: ["response", "no response in column"],
  missing_pass_rate: ["passRate", "no pass rate in column"],
  invalid_pass_rate: ["passRate", "no pass rate from 0 to 1 in column"],
  image_not_found: ["images", "the image paths in column"],
  missing_image: ["images", "no images in column"],
};

/**
 * At the end of an ingest stage: a source whose every row was rejected fails the run here, naming
 * the reason and the column to map, instead of reaching the end of the run as an empty dataset
 * with the advice to look at a later stage. Rows past a source's sample cap do not count.
 */
export async function checkIngestYield(store: ByteStore, runId: string, stage: Stage, manifestKey: string) {
  const items = await readJson<IngestItem[]>(store, manifestKey);
  if (!items) return;
  const bySource = new Map<
    string,
    { items: IngestItem[]; in: number; out: number; reasons: Record<string, number> }
  >();
  for (const item of items) {
    const stats = await readJson<ShardStats>(store, keys.stats(runId, stage, item.shard));
    if (!stats) continue;
    const s = bySource.get(item.source) ?? { items: [], in: 0, out: 0, reasons: {} };
    s.items.push(item);
    s.in += stats.in;
    s.out += stats.out;
    for (const [r, n] of Object.entries(stats.reasons)) s.reasons[r] = (s.reasons[r] ?? 0) + n;
    bySource.set(item.source, s);
  }
  const problems: string[] = [];
  for (const [name, s] of bySource) {
    const counted = s.in - (s.reasons.over_sample_cap ?? 0);
    if (counted <= 0 || s.out > 0) continue;
    const reasons = Object.entries(s.reasons)
      .filter(([r]) => r !== "over_sample_cap")
      .sort((a, b) => b[1] - a[1]);
    const [top] = reasons[0] ?? ["unknown"];
    const hint = COLUMN_OF[top];
    const columns = s.items[0]?.columns;
    const what = hint
      ? columns
        ? `${hint[1]} "${columns[hint[0]]}": map the source's own column with "columns": {"${hint[0]}": "<its name>"} (recipe validate names look-alike columns)`
        : `${hint[1]} "${hint[0]}" that its preset reads: check that the files are the data set the preset names`
      : "see each reject with recipe rejects";
    problems.push(
      `source ${name}: all ${counted} row(s) were rejected at ingest (${reasons.map(([r, n]) => `${r} ${n}`).join(", ")}): ${what}`,
    );
  }
  if (problems.length > 0) throw new InputContractError(`${stage}: ${problems.join("; ")}`);
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
    const columns = source.preset ? undefined : { ...source.columns };
    for (const file of files)
      items.push({
        branch,
        shard: items.length,
        sourceIndex,
        source: source.name,
        file,
        ...(columns ? { columns: columns as Record<string, string> } : {}),
      });
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
  const key = normalize(`${dir}${ref}`);
  const bytes = await store.readBytes(key);
  if (bytes) return bytes;
  // Not a file beside the table: an image inside a zip beside it (images/x.jpg in images.zip, as
  // ViRL39K and LLaVA-CoT ship them), under the same relative path or below the zip's own folder.
  const rel = normalize(ref);
  const first = rel.split("/")[0]!;
  for (const name of new Set([`${first}.zip`, "images.zip", "image.zip"])) {
    const archive = await archiveAt(store, `${dir}${name}`);
    const member = (await archive?.read(rel)) ?? (await archive?.read(rel.slice(first.length + 1)));
    if (member) return member;
  }
  return null;
}

function normalize(path: string): string {
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== "." && p !== "") parts.push(p);
  }
  return parts.join("/");
}

/** Zip archives by key, opened once per container (central directory only); null when absent. */
const archives = new Map<string, Promise<ZipArchive | null>>();
function archiveAt(store: ByteStore, key: string): Promise<ZipArchive | null> {
  const id = `${store.location}/${key}`;
  let found = archives.get(id);
  if (!found) {
    found = ZipArchive.open(store, key);
    if (archives.size >= 16) archives.delete(archives.keys().next().value!);
    archives.set(id, found);
    found.catch(() => archives.delete(id));
  }
  return found;
}

export async function ingestShard(ctx: RunContext, item: IngestItem) {
  const source = ctx.config.sources[item.branch][item.sourceIndex];
  if (!source || source.name !== item.source)
    throw new InputContractError(`manifest item does not match the config: ${item.source}`);
  return runShard(ctx.store, ctx.runId, INGEST_STAGE[item.branch], item.shard, async (run) => {
    await ingestRows(
      sourceRows(ctx, source, item.file),
      {
        source,
        systemPrompt: ctx.config.teacher.systemPrompt,
        maxQuestionChars: ctx.config.ingest.maxQuestionChars,
      },
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

// ---------------------------------------------------------------- dedup (core/pipeline/dedup-step.ts)

export {
  applyDedup,
  type DedupPlan,
  dedupBranch,
  groupPartition,
  type PartitionItem,
  planDedup,
  resolveDuplicates,
  type SignItem,
  signQuestions,
} from "./dedup-step.ts";

// ---------------------------------------------------------------- plan-generation

/**
 * Splits the dedup output of `questions` sources into array-job slices of at most questionsPerShard
 * (more if the array would be too big). `traces` sources are not generated for (planVerify reads them).
 */
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
    // A `traces` source already carries its responses: it goes to verification, never to the teacher.
    if (ctx.config.sources[branch][it.sourceIndex]?.kind === "traces") continue;
    // Pass rates the source carries: nothing to roll out (planVerify reads them).
    if (ratedBySource(ctx.config, branch, it.sourceIndex)) continue;
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
