/**
 * What the report adds to the stage counts so that a researcher can read it: each question's source
 * file and line, gold answer and images (by question id, from the ingest shards), how many questions
 * got at least one verified trace, the teacher's accuracy per domain, and counts per source.
 * One pass over the ingest, verify-traces and select-and-mix shards, streamed; only a small record
 * per question is held.
 */
import { keys, type Stage } from "../layout/index.ts";
import { type ByteStore, listAll, readJson } from "../shards/byte-store.ts";
import { readShard } from "../shards/jsonl.ts";
import type { ShardStats } from "../stages/stage.ts";

export interface QuestionInfo {
  /** Where it came from: the source file and line (`sources/mymath.jsonl:3`). */
  origin: string;
  source: string;
  domain: string;
  question: string;
  answer: string;
  images: string[];
}

const clip = (t: string, n: number) => (t.length > n ? `${t.slice(0, n)}…` : t);

/** Every ingested question of the run, by id. */
export async function questionIndex(store: ByteStore, runId: string): Promise<Map<string, QuestionInfo>> {
  const index = new Map<string, QuestionInfo>();
  for (const stage of ["ingest-sft", "ingest-rl"] as const) {
    for (const file of await listAll(store, keys.shardsPrefix(runId, stage))) {
      if (!file.endsWith(".jsonl.gz")) continue;
      for await (const line of readShard(store, file)) {
        if (!line.ok) continue;
        const q = line.value as {
          id?: string;
          origin?: string;
          source?: string;
          domain?: string;
          question?: string;
          answer?: string;
          images?: { sha256: string }[];
        };
        if (!q.id || index.has(q.id)) continue;
        index.set(q.id, {
          origin: q.origin ?? "",
          source: q.source ?? "",
          domain: q.domain ?? "",
          question: clip(q.question ?? "", 600),
          answer: clip(q.answer ?? "", 200),
          images: (q.images ?? []).map((i) => i.sha256),
        });
      }
    }
  }
  return index;
}

export interface DomainAccuracy {
  domain: string;
  /** Teacher responses verified. */
  responses: number;
  /** Of them, answers that matched the gold (kept or rejected for another reason). */
  correct: number;
  /** Traces kept by verify-traces. */
  kept: number;
}

export interface SourceCounts {
  source: string;
  /** Records read at ingest, questions it kept, and rows of the SFT dataset from the source. */
  read: number;
  ingested: number;
  sftRows: number;
}

export interface ReportData {
  /** Distinct questions with at least one trace that passed verify-traces, of the questions distilled. */
  questionsWithVerifiedTrace: number;
  accuracy: DomainAccuracy[];
  sources: SourceCounts[];
}

async function* records(store: ByteStore, prefix: string): AsyncGenerator<Record<string, unknown>> {
  for (const file of await listAll(store, prefix)) {
    if (!file.endsWith(".jsonl.gz")) continue;
    for await (const line of readShard(store, file)) if (line.ok) yield line.value as Record<string, unknown>;
  }
}

export async function reportData(
  store: ByteStore,
  runId: string,
  index: Map<string, QuestionInfo>,
): Promise<ReportData> {
  const verified = new Set<string>();
  const byDomain = new Map<string, DomainAccuracy>();
  const domainOf = (id: unknown, given?: unknown) =>
    (typeof given === "string" && given) || index.get(String(id))?.domain || "unknown";
  const tally = (domain: string) => {
    const d = byDomain.get(domain) ?? { domain, responses: 0, correct: 0, kept: 0 };
    byDomain.set(domain, d);
    return d;
  };
  for await (const t of records(store, keys.shardsPrefix(runId, "verify-traces"))) {
    verified.add(String(t.questionId));
    const d = tally(domainOf(t.questionId, t.domain));
    d.responses++;
    d.kept++;
    if ((t.verdict as { correct?: boolean } | undefined)?.correct !== false) d.correct++;
  }
  for await (const r of records(store, `${keys.stagePrefix(runId, "verify-traces")}rejects/`)) {
    const d = tally(domainOf(r.questionId));
    d.responses++;
    const verdict = (r.record as { verdict?: { correct?: boolean } } | undefined)?.verdict;
    if (verdict?.correct === true) d.correct++;
  }
  const sources = new Map<string, SourceCounts>();
  const source = (name: string) => {
    const s = sources.get(name) ?? { source: name, read: 0, ingested: 0, sftRows: 0 };
    sources.set(name, s);
    return s;
  };
  for (const stage of ["ingest-sft", "ingest-rl"] as Stage[]) {
    const items =
      (await readJson<{ shard: number; source: string }[]>(store, keys.manifest(runId, stage))) ?? [];
    for (const item of items) {
      const stats = await readJson<ShardStats>(store, keys.stats(runId, stage, item.shard));
      if (!stats) continue;
      const s = source(item.source);
      s.read += stats.in;
      s.ingested += stats.out;
    }
  }
  for await (const t of records(store, keys.shardsPrefix(runId, "select-and-mix")))
    source(String(t.source ?? index.get(String(t.questionId))?.source ?? "unknown")).sftRows++;
  return {
    questionsWithVerifiedTrace: verified.size,
    accuracy: [...byDomain.values()].sort((a, b) => a.domain.localeCompare(b.domain)),
    sources: [...sources.values()],
  };
}

/**
 * Pass-rate bins as a reader expects them: with K rollouts a pass rate is k/K, one bin each
 * (`1/4 (0.25)`); a source's own, continuous pass rates fall in tenths (`[0.2, 0.3)`). Bins inside
 * the kept band (min < rate < max) are marked.
 */
export function passRateBins(
  counts: Record<string, number>,
  rollouts: number,
  band: { enabled: boolean; min: number; max: number },
): { label: string; n: number; kept: boolean }[] {
  const kept = (p: number) => !band.enabled || (p > band.min && p < band.max);
  const rates = Object.entries(counts).map(([k, n]) => [Number(k), n] as const);
  const onGrid = rates.every(([p]) => Math.abs(p * rollouts - Math.round(p * rollouts)) < 1e-6);
  if (onGrid && rollouts > 0 && rollouts <= 64) {
    return Array.from({ length: rollouts + 1 }, (_, k) => {
      const p = k / rollouts;
      const n = rates.filter(([r]) => Math.abs(r - p) < 1e-6).reduce((a, [, c]) => a + c, 0);
      return { label: `${k}/${rollouts} (${Number(p.toFixed(3))})`, n, kept: kept(p) };
    });
  }
  return Array.from({ length: 10 }, (_, i) => {
    const lo = i / 10;
    const hi = (i + 1) / 10;
    const n = rates.filter(([r]) => r >= lo && (i === 9 ? r <= hi : r < hi)).reduce((a, [, c]) => a + c, 0);
    return {
      label: `[${lo.toFixed(1)}, ${hi.toFixed(1)}${i === 9 ? "]" : ")"}`,
      n,
      kept: kept((lo + hi) / 2),
    };
  });
}
