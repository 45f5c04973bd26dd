/**
 * The run's outputs: the SFT dataset, the RL dataset (pass-rate band), their data cards.
 */

import { Readable } from "node:stream";
import pLimit from "p-limit";
import { configHash } from "../config/index.ts";
import { blankImage, ParquetParts, VERL_SCHEMA, verlRow, writeSftDataset } from "../datasets/index.ts";
import { InputContractError, InvariantError, StageIncompleteError } from "../errors.ts";
import { keys, type Stage, shardName } from "../layout/index.ts";
import type { ImageRef, Question } from "../records/index.ts";
import { listAll, readJson, writeJson } from "../shards/byte-store.ts";
import { readShard, ShardWriter } from "../shards/jsonl.ts";
import { STAGE_UNITS, type StageSummary, stageSummaries, stageSummary } from "../stages/stage.ts";
import type { QuestionCount, VerifiedTrace } from "../stages/verify-traces.ts";
import type { RunContext } from "./context.ts";
import { readManifest } from "./context.ts";
import { servedBy } from "./revision.ts";
import { loadQuestionSlice, type VerifyItem } from "./steps.ts";

function imageSource(ctx: RunContext) {
  return {
    async bytes(sha256: string) {
      const b = await ctx.store.readBytes(keys.image(sha256));
      if (!b) throw new Error(`image ${sha256} is missing from the store`);
      return new Uint8Array(b);
    },
  };
}

export function percentiles(values: number[]): Record<string, number> {
  if (values.length === 0) return {};
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { min: s[0]!, p10: at(0.1), p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s.at(-1)! };
}

/**
 * Response lengths in bins whose edges double (under 256, 256-511, ..., 32768 and over): lengths of
 * reasoning traces span two orders of magnitude, so equal-width bins would put nearly all in one.
 */
export function lengthHistogram(values: readonly number[]): [string, number][] {
  const edges = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768];
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (const v of values) {
    const i = edges.findIndex((e) => v < e);
    counts[i === -1 ? edges.length : i]! += 1;
  }
  return counts.map((n, i) => [
    i === 0
      ? `< ${edges[0]}`
      : i === edges.length
        ? `>= ${edges.at(-1)}`
        : `${edges[i - 1]}-${edges[i]! - 1}`,
    n,
  ]);
}

function dataCard(ctx: RunContext, title: string, body: string[], summaries: StageSummary[]): string {
  const c = ctx.config;
  const lines = [
    `# ${title}`,
    "",
    `Run \`${ctx.runId}\`${c.description ? `: ${c.description}` : ""}`,
    "",
    `Config hash (sha256 of the resolved run.json): \`${configHash(c)}\``,
    "",
  ];
  if (ctx.replayTeacher && ctx.teacherKind === "synthetic") {
    lines.push(
      "> **Synthetic teacher.** The responses in this set were made by the bundled synthetic teacher from the",
      "> gold answers (a seeded mix of right, wrong, unformatted, looping and truncated ones), not by a",
      "> teacher model. It exists to try the pipeline on your own data; do not train on it.",
      "",
    );
  } else if (ctx.replayTeacher) {
    lines.push(
      "> **Replay teacher.** The responses in this set were served by the bundled replay server from recorded",
      "> sample responses, not by a live teacher model. It exists to exercise the pipeline; do not train on it.",
      "",
    );
  }
  lines.push(
    ...body,
    "",
    "## Funnel",
    "",
    "| stage | in | out | rejected | unit | top reject reasons |",
    "| --- | --- | --- | --- | --- | --- |",
  );
  for (const s of summaries) {
    const top = Object.entries(s.reasons)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([r, n]) => `${r} ${n}`)
      .join(", ");
    lines.push(
      `| ${s.stage} | ${s.in} | ${s.out} | ${s.rejected} | ${STAGE_UNITS[s.stage] ?? ""} | ${top} |`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Who wrote and judged the rows: the models and endpoints recorded by the stages that asked them
 * (endpoints without credentials), and how many answers were asked versus read from the cache.
 */
export async function modelsLines(ctx: RunContext, branch: "sft" | "rl"): Promise<string[]> {
  const lines = ["## Models", ""];
  if (branch === "sft") {
    const distill = await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, "distill"));
    const asked = distill?.extra.responses ?? 0;
    const cached = distill?.extra.cache_hits ?? 0;
    for (const s of await servedBy(ctx.store, ctx.runId, "distill")) lines.push(`- ${s}`);
    lines.push(
      `- teacher answers: ${asked} asked in this run, ${cached} read from the generation cache (answers an earlier run asked)`,
    );
  } else {
    lines.push(
      ctx.config.rl.passRateFrom === "source"
        ? `- pass rates: from the sources' own columns where mapped; other questions rolled out by ${ctx.config.rl.policyModel}`
        : `- rollouts: ${ctx.config.rl.policyModel}`,
    );
  }
  const judge = await servedBy(ctx.store, ctx.runId, branch === "sft" ? "verify-traces" : "filter-rl");
  lines.push(...(judge.length > 0 ? judge.map((s) => `- ${s}`) : ["- judge: off (rules only)"]), "");
  return lines;
}

function sourcesTable(ctx: RunContext, branch: "sft" | "rl", counts: Map<string, number>): string[] {
  const rows = ["| source | domain | kind | license | rows |", "| --- | --- | --- | --- | --- |"];
  for (const s of ctx.config.sources[branch]) {
    rows.push(`| ${s.name} | ${s.domain} | ${s.kind} | ${s.license} | ${counts.get(s.name) ?? 0} |`);
  }
  return rows;
}

/**
 * A run whose SFT set would be empty fails here, with the reasons, instead of ending SUCCEEDED with
 * nothing to train on (a teacher that never answers right, a replay teacher without recordings).
 */
async function refuseEmptySft(ctx: RunContext): Promise<void> {
  const mix = await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, "select-and-mix"));
  if (!mix || mix.out > 0) return;
  const breakdown = async (stage: Stage) => {
    const s = await readJson<StageSummary>(ctx.store, keys.success(ctx.runId, stage));
    const reasons = Object.entries(s?.reasons ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([r, n]) => `${r} ${n}`)
      .join(", ");
    return s ? `${stage}: ${s.in} in, ${s.out} out${reasons ? ` (${reasons})` : ""}` : `${stage}: not run`;
  };
  throw new InputContractError(
    `the SFT set is empty: no trace passed verification and selection. ${await breakdown("verify-traces")}; ${await breakdown("select-and-mix")}; ${await breakdown("ingest-sft")}; ${await breakdown("dedup-sft")}. ` +
      `Look at the rejects (npx recipe rejects ${ctx.runId} --stage verify-traces) and check the teacher and the gold answers.`,
  );
}

/** The data card's description of the files, per layout written. */
function sftFilesLines(layouts: readonly string[]): string[] {
  const lines = ["", "Files:", ""];
  if (layouts.includes("llama-factory"))
    lines.push(
      "- `sft.jsonl.gz`: chat JSONL for LLaMA-Factory style loaders (`messages` with `<image>` markers, `images` paths);",
      "- `sft-*.parquet`: the same rows, images embedded as bytes;",
    );
  if (layouts.includes("lmms-engine"))
    lines.push(
      "- `lmms-engine/sft-*.parquet`: the lmms-engine / OpenMMReasoner layout (`id`, `messages` with `text` and `image_url` items); set the loader's `data_folder` to this dataset folder;",
    );
  lines.push("- `images/`: every image, named by its SHA-256.");
  return lines;
}

/**
 * A fan-out's part records, in shard order, read a few at a time; a missing one fails the stage
 * naming it (starting the run again computes it).
 */
async function partRecords<T>(
  ctx: RunContext,
  stage: Stage,
  shards: readonly number[],
  keyOf: (shard: number) => string,
): Promise<T[]> {
  const limit = pLimit(PART_READS);
  const found = await Promise.all(shards.map((s) => limit(() => readJson<T>(ctx.store, keyOf(s)))));
  const missing = shards.filter((_, i) => !found[i]);
  if (missing.length > 0) throw new StageIncompleteError(stage, missing, shards.length);
  return found as T[];
}

/** Per-key counts summed over parts. */
function sumCounts(records: readonly Record<string, number>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of records) for (const [k, n] of Object.entries(r)) out.set(k, (out.get(k) ?? 0) + n);
  return out;
}

const PART_READS = 16;

const SFT_WRITER: Stage = "write-sft-dataset";

/** What one part (one mix shard) of the SFT set wrote, for the finishing step. */
interface SftPart {
  shard: number;
  rows: number;
  jsonl: string | null;
  parquet: string[];
  lmmsEngine: string[];
  perSource: Record<string, number>;
  perDomain: Record<string, number>;
  responseChars: number[];
}

function sftPartKeys(runId: string, shard: number) {
  const name = shardName(shard);
  return {
    name,
    jsonl: keys.work(runId, SFT_WRITER, `parts/${name}.jsonl.gz`),
    record: keys.work(runId, SFT_WRITER, `parts/${name}.json`),
  };
}

/**
 * write-sft-dataset, one part (a Map child per mix shard): its rows in every layout asked for (the
 * Parquet parts named after the shard, the chat JSONL as a part of its own), its images, and a record
 * of what it wrote. A part already recorded is skipped, so a rerun writes only what is missing.
 */
export async function writeSftPart(ctx: RunContext, shard: number): Promise<void> {
  if (await ctx.store.exists(keys.success(ctx.runId, SFT_WRITER))) return;
  const at = sftPartKeys(ctx.runId, shard);
  if (await ctx.store.exists(at.record)) return;
  const perSource: Record<string, number> = {};
  const perDomain: Record<string, number> = {};
  const traces = async function* (): AsyncGenerator<VerifiedTrace> {
    const key = keys.shard(ctx.runId, "select-and-mix", shard);
    if (!(await ctx.store.exists(key))) return;
    for await (const line of readShard(ctx.store, key)) {
      if (!line.ok) continue;
      const t = line.value as VerifiedTrace;
      perSource[t.source] = (perSource[t.source] ?? 0) + 1;
      perDomain[t.domain] = (perDomain[t.domain] ?? 0) + 1;
      yield t;
    }
  };
  const result = await writeSftDataset(traces(), {
    store: ctx.store,
    keyOf: (file) => keys.dataset(ctx.runId, "sft", file),
    jsonlKey: at.jsonl,
    partName: (p) => `sft-${at.name}-${shardName(p)}.parquet`,
    writeEmpty: false,
    images: imageSource(ctx),
    systemPrompt: ctx.config.teacher.systemPrompt,
    blankImageForTextOnly: ctx.config.mixing.blankImageForTextOnly,
    mediaTypes: new Map<string, ImageRef["mediaType"]>(),
    layouts: ctx.config.output.sftLayouts,
  });
  const part: SftPart = {
    shard,
    rows: result.rows,
    jsonl: result.jsonl,
    parquet: result.parquet,
    lmmsEngine: result.lmmsEngine,
    perSource,
    perDomain,
    responseChars: result.responseChars,
  };
  await writeJson(ctx.store, at.record, part);
}

/**
 * write-sft-dataset, the finishing step: every part must be there; their chat JSONL parts become one
 * `sft.jsonl.gz` (gzip members concatenated as they are, streamed, never decompressed), then the
 * placeholder image, the data card and `_SUCCESS`.
 */
export async function finishSftDataset(ctx: RunContext, mixShards: number) {
  const done = await readJson<Record<string, unknown>>(ctx.store, keys.success(ctx.runId, SFT_WRITER));
  if (done) return done;
  await refuseEmptySft(ctx);
  const parts = await partRecords<SftPart>(
    ctx,
    SFT_WRITER,
    Array.from({ length: mixShards }, (_, i) => i),
    (i) => sftPartKeys(ctx.runId, i).record,
  );
  const layouts = ctx.config.output.sftLayouts;
  const jsonlKey = keys.dataset(ctx.runId, "sft", "sft.jsonl.gz");
  if (layouts.includes("llama-factory")) {
    const store = ctx.store;
    const members = parts.flatMap((p) => (p.jsonl ? [p.jsonl] : []));
    await store.write(
      jsonlKey,
      Readable.from(
        (async function* () {
          for (const key of members) yield* await store.read(key);
        })(),
      ),
      { contentType: "application/gzip" },
    );
  }
  if (ctx.config.mixing.blankImageForTextOnly)
    await ctx.store.write(keys.dataset(ctx.runId, "sft", "images/blank.png"), blankImage());
  const rows = parts.reduce((a, p) => a + p.rows, 0);
  const counts = sumCounts(parts.map((p) => p.perSource));
  const domains = sumCounts(parts.map((p) => p.perDomain));
  const images = (await listAll(ctx.store, keys.dataset(ctx.runId, "sft", "images/x").slice(0, -1))).length;
  const lengths = percentiles(parts.flatMap((p) => p.responseChars));
  const parquet = parts.flatMap((p) => p.parquet);
  const lmmsEngine = parts.flatMap((p) => p.lmmsEngine);
  const summary = stageSummary(SFT_WRITER, {
    in: rows,
    out: rows,
    extra: { rows, images, parquetParts: parquet.length },
    files: { jsonl: layouts.includes("llama-factory") ? jsonlKey : null, parquet, lmmsEngine },
    responseChars: lengths,
    responseCharsHistogram: lengthHistogram(parts.flatMap((p) => p.responseChars)),
    perSource: Object.fromEntries(counts),
    perDomain: Object.fromEntries(domains),
  });
  const card = dataCard(
    ctx,
    "SFT dataset",
    [
      `${rows} rows: system prompt, user turn (\`<image>\` markers, \`images\` list), verified assistant turn.`,
      ...sftFilesLines(layouts),
      "",
      ...(await modelsLines(ctx, "sft")),
      "## Sources",
      "",
      ...sourcesTable(ctx, "sft", counts),
      "",
      "## Domains",
      "",
      ...[...domains].map(([d, n]) => `- ${d}: ${n} (${((100 * n) / Math.max(1, rows)).toFixed(1)} %)`),
      "",
      "## Response length (characters)",
      "",
      Object.entries(lengths)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ") || "no rows",
    ],
    await stageSummaries(ctx.store, ctx.runId),
  );
  await ctx.store.write(keys.dataset(ctx.runId, "sft", "README.md"), card, { contentType: "text/markdown" });
  await writeJson(ctx.store, keys.success(ctx.runId, SFT_WRITER), summary);
  return summary;
}

/** write-sft-dataset in one process (the direct runner and benches): every part, then the finish. */
export async function writeSftDatasetStep(ctx: RunContext, mixShards: number) {
  const done = await readJson<Record<string, unknown>>(ctx.store, keys.success(ctx.runId, SFT_WRITER));
  if (done) return done;
  // As the state machine runs it: the parts, then the finish (which refuses an empty set).
  for (let i = 0; i < mixShards; i++) await writeSftPart(ctx, i);
  return finishSftDataset(ctx, mixShards);
}

const RL_WRITER: Stage = "write-rl-dataset";

/** Why a question with these rollout counts stays out of the RL set, or null when it is kept. */
function rlVerdict(
  c: QuestionCount | undefined,
  band: RunContext["config"]["rl"]["passRateBand"],
): string | null {
  if (!c || (c.samples === 0 && c.from !== "source")) return "no_rollouts";
  if (band.enabled && c.passRate <= band.min) return "never_solved";
  if (band.enabled && c.passRate >= band.max) return "always_solved";
  return null;
}

async function rlCounts(ctx: RunContext, shard: number): Promise<Map<string, QuestionCount>> {
  const rates = new Map<string, QuestionCount>();
  const countsKey = keys.side(ctx.runId, "filter-rl", "counts", shard);
  if (await ctx.store.exists(countsKey)) {
    for await (const l of readShard(ctx.store, countsKey))
      if (l.ok) rates.set((l.value as QuestionCount).questionId, l.value as QuestionCount);
  }
  return rates;
}

interface RlPlan {
  /** Rows each filter-rl shard keeps, and the extra_info.index its first row gets. */
  shards: { shard: number; rows: number; offset: number }[];
  rows: number;
}

interface RlPart {
  shard: number;
  seen: number;
  rows: number;
  reasons: Record<string, number>;
  perSource: Record<string, number>;
  /** Pass rates of the questions that had any, in tenths (11 bins). */
  histogram: number[];
  /** The same, by exact pass rate (`"0.25": 3`): the report's bins follow the rollouts (k/K). */
  passRates?: Record<string, number>;
  parquet: string[];
}

const rlPlanKey = (runId: string) => keys.work(runId, RL_WRITER, "plan.json");
const rlPartKey = (runId: string, shard: number) =>
  keys.work(runId, RL_WRITER, `parts/${shardName(shard)}.json`);

/**
 * write-rl-dataset, the plan (one step): how many rows each filter-rl shard keeps, from the pass-rate
 * counts alone (one short line per question), so that every part numbers its rows where the one
 * before it ends: verl's extra_info.index runs 0..n-1 over the whole set, as in the released RL set.
 */
export async function planRlDataset(ctx: RunContext): Promise<RlPlan> {
  const existing = await readJson<RlPlan>(ctx.store, rlPlanKey(ctx.runId));
  if (existing) return existing;
  const items = await readManifest<VerifyItem>(ctx.store, keys.manifest(ctx.runId, "filter-rl"));
  const band = ctx.config.rl.passRateBand;
  const plan: RlPlan = { shards: [], rows: 0 };
  for (const item of items) {
    let rows = 0;
    for (const c of (await rlCounts(ctx, item.shard)).values()) if (rlVerdict(c, band) === null) rows++;
    plan.shards.push({ shard: item.shard, rows, offset: plan.rows });
    plan.rows += rows;
  }
  await writeJson(ctx.store, rlPlanKey(ctx.runId), plan);
  return plan;
}

/**
 * write-rl-dataset, one part (a Map child per filter-rl shard): the band over its questions, verl
 * Parquet rows with images embedded, numbered from the plan's offset; a record of what it wrote. A
 * part already recorded is skipped.
 */
export async function writeRlPart(ctx: RunContext, shard: number): Promise<void> {
  if (await ctx.store.exists(keys.success(ctx.runId, RL_WRITER))) return;
  if (await ctx.store.exists(rlPartKey(ctx.runId, shard))) return;
  const plan = await readJson<RlPlan>(ctx.store, rlPlanKey(ctx.runId));
  const planned = plan?.shards.find((s) => s.shard === shard);
  if (!plan || !planned) throw new InvariantError(`write-rl-dataset: no plan for shard ${shard}`);
  const item = (await readManifest<VerifyItem>(ctx.store, keys.manifest(ctx.runId, "filter-rl"))).find(
    (i) => i.shard === shard,
  );
  if (!item) throw new InvariantError(`write-rl-dataset: shard ${shard} is not in filter-rl's manifest`);
  const band = ctx.config.rl.passRateBand;
  const rates = await rlCounts(ctx, shard);
  const parts = new ParquetParts(
    ctx.store,
    (p) => keys.dataset(ctx.runId, "rl", `rl-${shardName(shard)}-${shardName(p)}.parquet`),
    VERL_SCHEMA,
  );
  const images = imageSource(ctx);
  const part: RlPart = {
    shard,
    seen: 0,
    rows: 0,
    reasons: {},
    perSource: {},
    histogram: new Array(11).fill(0),
    passRates: {},
    parquet: [],
  };
  // Every question the band drops is a reject a person can find (`recipe rejects`), with its source line.
  const rejects = new ShardWriter(ctx.store, keys.rejects(ctx.runId, RL_WRITER, shard));
  try {
    for (const q of await loadQuestionSlice(ctx.store, item.questions)) {
      part.seen++;
      const c = rates.get(q.id);
      const verdict = rlVerdict(c, band);
      if (verdict !== "no_rollouts") {
        part.histogram[Math.round(c!.passRate * 10)]! += 1;
        const rate = String(Number(c!.passRate.toFixed(6)));
        part.passRates![rate] = (part.passRates![rate] ?? 0) + 1;
      }
      if (verdict) {
        part.reasons[verdict] = (part.reasons[verdict] ?? 0) + 1;
        await rejects.write({
          stage: RL_WRITER,
          reason: verdict,
          questionId: q.id,
          origin: q.origin ?? q.source,
          ...(c
            ? {
                detail: `pass rate ${c.passRate} from ${c.from === "source" ? "the source" : `${c.samples} rollouts`}`,
              }
            : {}),
        });
        continue;
      }
      const embedded = [];
      let bytes = 0;
      for (const img of q.images) {
        const data = await images.bytes(img.sha256);
        bytes += data.length;
        embedded.push({ bytes: data, path: null });
      }
      await parts.add(
        verlRow(
          q as Question,
          planned.offset + part.rows,
          ctx.config.teacher.systemPrompt,
          embedded,
          c!.passRate,
        ),
        bytes + q.question.length,
      );
      part.rows++;
      part.perSource[q.source] = (part.perSource[q.source] ?? 0) + 1;
    }
    if (part.rows !== planned.rows)
      throw new InvariantError(
        `write-rl-dataset: shard ${shard} kept ${part.rows} rows, the plan counted ${planned.rows}`,
      );
  } catch (err) {
    await rejects.abort(err as Error);
    throw err;
  }
  await rejects.close();
  if (part.rows > 0) await parts.flush();
  part.parquet = parts.parts.map((p) => p.key);
  await writeJson(ctx.store, rlPartKey(ctx.runId, shard), part);
}

/**
 * write-rl-dataset, the finishing step: every part must be there; their counts make the stage's
 * summary and the data card, and `_SUCCESS` lists the Parquet files in index order.
 */
export async function finishRlDataset(ctx: RunContext) {
  const done = await readJson<Record<string, unknown>>(ctx.store, keys.success(ctx.runId, RL_WRITER));
  if (done) return done;
  const plan = await readJson<RlPlan>(ctx.store, rlPlanKey(ctx.runId));
  if (!plan) throw new InvariantError("write-rl-dataset: finish before plan");
  const parts = await partRecords<RlPart>(
    ctx,
    RL_WRITER,
    plan.shards.map((s) => s.shard),
    (shard) => rlPartKey(ctx.runId, shard),
  );
  const band = ctx.config.rl.passRateBand;
  const reasons = Object.fromEntries(sumCounts(parts.map((p) => p.reasons)));
  const counts = sumCounts(parts.map((p) => p.perSource));
  const histogram = new Array<number>(11).fill(0);
  const passRates = Object.fromEntries(sumCounts(parts.map((p) => p.passRates ?? {})));
  let seen = 0;
  for (const p of parts) {
    seen += p.seen;
    p.histogram.forEach((n, i) => {
      histogram[i]! += n;
    });
  }
  const index = plan.rows;
  const summary = stageSummary(RL_WRITER, {
    in: seen,
    out: index,
    rejected: seen - index,
    reasons,
    extra: { rows: index },
    files: { parquet: parts.flatMap((p) => p.parquet) },
    passRateHistogram: histogram,
    passRateCounts: passRates,
  });
  const card = dataCard(
    ctx,
    "RL dataset (verl)",
    [
      `${index} rows in verl's Parquet schema: data_source, prompt (chat list), images, ability, reward_model {style, ground_truth}, extra_info {index, answer_type, choices, question_id, question}, and avg_reward (the question's pass rate, as in the OpenMMReasoner RL release).`,
      ...(await modelsLines(ctx, "rl")),
      `Pass-rate band: ${band.enabled ? `keep ${band.min} < pass rate < ${band.max}` : "off (all questions kept)"}, from ${ctx.config.rl.rolloutsPerQuestion} rollouts of ${ctx.config.rl.policyModel} per question${ctx.config.rl.passRateFrom === "source" ? "; sources that map `columns.passRate` use their own pass rates instead" : ""}.`,
      "",
      "## Sources",
      "",
      ...sourcesTable(ctx, "rl", counts),
      "",
      "## Pass rate histogram (tenths)",
      "",
      histogram.map((n, i) => `${(i / 10).toFixed(1)}: ${n}`).join(", "),
    ],
    await stageSummaries(ctx.store, ctx.runId),
  );
  await ctx.store.write(keys.dataset(ctx.runId, "rl", "README.md"), card, { contentType: "text/markdown" });
  await writeJson(ctx.store, keys.success(ctx.runId, RL_WRITER), summary);
  return summary;
}

/** write-rl-dataset in one process (the direct runner and benches): the plan, every part, the finish. */
export async function writeRlDatasetStep(ctx: RunContext) {
  const done = await readJson<Record<string, unknown>>(ctx.store, keys.success(ctx.runId, RL_WRITER));
  if (done) return done;
  const plan = await planRlDataset(ctx);
  for (const s of plan.shards) await writeRlPart(ctx, s.shard);
  return finishRlDataset(ctx);
}
