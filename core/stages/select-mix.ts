/**
 * select-and-mix: per question, keep up to `tracesPerQuestion` verified traces that are not near
 * copies of each other (x8 sampling should give eight different answers, not eight copies); then mix
 * domains by ratios or caps with a seeded sampler.
 *
 * The sampler gives every trace a 53-bit key hashed from (seed, question id, sample index) and keeps,
 * per domain, the traces with the smallest keys. Same config and inputs, same output, byte for byte,
 * in any shard order and on any machine; and it streams: pass 1 collects keys, pass 2 filters.
 */
import type { Domain, RunConfig } from "../config/schema.ts";
import { fmix32 } from "../dedup/minhash.ts";
import { InvariantError } from "../errors.ts";
import type { SourceRow } from "./ingest.ts";
import { parseRecord, type ShardRun } from "./stage.ts";
import { VerifiedTrace } from "./verify-traces.ts";

function fnv1a(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

/** The sampling key of a trace: uniform in [0, 2^53), a pure function of seed and identity. */
export function mixKey(seed: number, questionId: string, sampleIndex: number): number {
  const id = `${questionId}:${sampleIndex}`;
  const hi = fnv1a(id, seed) >>> 11; // 21 bits
  const lo = fnv1a(id, seed ^ 0x5bd1e995); // 32 bits
  return hi * 2 ** 32 + lo;
}

/** Word trigram hashes of a response, for near-copy checks between traces of one question. */
export function trigramSet(text: string): Set<number> {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  const out = new Set<number>();
  for (let i = 0; i + 3 <= words.length; i++)
    out.add(fnv1a(`${words[i]} ${words[i + 1]} ${words[i + 2]}`, 0));
  if (out.size === 0 && words.length > 0) out.add(fnv1a(words.join(" "), 0));
  return out;
}

export function setJaccard(a: Set<number>, b: Set<number>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let inter = 0;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const x of small) if (large.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

/** An entry of the mix index: what pass 2 needs to decide about one selected trace. */
export interface MixIndexEntry {
  domain: Domain;
  key: number;
}

/**
 * Pass 1 over one verified-trace shard: picks traces per question and writes them, plus their
 * mix keys to the shard's `index` side stream.
 */
export async function selectTraces(
  rows: AsyncIterable<SourceRow>,
  config: RunConfig,
  run: ShardRun,
): Promise<void> {
  const byQuestion = new Map<string, { trace: VerifiedTrace; origin: string }[]>();
  for await (const row of rows) {
    const trace = await parseRecord(run, row, VerifiedTrace, "invalid_trace");
    if (!trace) continue;
    const list = byQuestion.get(trace.questionId) ?? [];
    list.push({ trace, origin: row.origin });
    byQuestion.set(trace.questionId, list);
  }
  const { tracesPerQuestion, traceNearDuplicateThreshold, seed } = config.mixing;
  const index = run.side("index");
  // Questions in id order and samples in index order: output does not depend on input order.
  for (const qid of [...byQuestion.keys()].sort()) {
    const list = byQuestion.get(qid)!.sort((a, b) => a.trace.sampleIndex - b.trace.sampleIndex);
    const kept: Set<number>[] = [];
    for (const { trace, origin } of list) {
      if (kept.length >= tracesPerQuestion) {
        await run.reject({ reason: "over_traces_per_question", origin, questionId: qid });
        continue;
      }
      const grams = trigramSet(trace.response);
      if (kept.some((k) => setJaccard(k, grams) >= traceNearDuplicateThreshold)) {
        await run.reject({ reason: "trace_near_copy", origin, questionId: qid });
        continue;
      }
      kept.push(grams);
      await run.emit(trace);
      await index.write({
        domain: trace.domain,
        key: mixKey(seed, qid, trace.sampleIndex),
      } satisfies MixIndexEntry);
    }
  }
}

export interface MixPlan {
  /** Per domain: keep traces whose key is at most this (absent domain: drop all; Infinity: keep all). */
  thresholds: Partial<Record<Domain, number>>;
  targets: Partial<Record<Domain, number>>;
  available: Partial<Record<Domain, number>>;
}

/** The number of traces to take from each domain, given what is available. */
export function mixTargets(
  available: Partial<Record<Domain, number>>,
  config: RunConfig,
): Partial<Record<Domain, number>> {
  const { ratios, caps, totalRows } = config.mixing;
  const targets: Partial<Record<Domain, number>> = {};
  const domains = Object.keys(available) as Domain[];
  if (ratios) {
    const weighted = (Object.entries(ratios) as [Domain, number][]).filter(([, r]) => r > 0);
    // Largest total the available traces allow at these shares, or the requested total if smaller.
    let total = Math.min(...weighted.map(([d, r]) => (available[d] ?? 0) / r));
    if (totalRows !== undefined) total = Math.min(total, totalRows);
    for (const d of domains) targets[d] = 0;
    for (const [d, r] of weighted) targets[d] = Math.min(available[d] ?? 0, Math.floor(r * total + 1e-9));
  } else {
    for (const d of domains) targets[d] = available[d] ?? 0;
  }
  if (caps)
    for (const [d, cap] of Object.entries(caps) as [Domain, number][])
      targets[d] = Math.min(targets[d] ?? 0, cap);
  return targets;
}

/** Pass between the two: from every shard's index, the key threshold per domain. */
export function planMix(entries: Iterable<MixIndexEntry>, config: RunConfig): MixPlan {
  const lists = new Map<Domain, number[]>();
  for (const e of entries) {
    const list = lists.get(e.domain) ?? [];
    list.push(e.key);
    lists.set(e.domain, list);
  }
  return planMixFromKeys(new Map([...lists].map(([d, l]) => [d, Float64Array.from(l)])), config);
}

/** The mix plan from each domain's sampling keys (8 bytes per selected trace). */
export function planMixFromKeys(keysByDomain: ReadonlyMap<Domain, Float64Array>, config: RunConfig): MixPlan {
  const available: Partial<Record<Domain, number>> = {};
  for (const [d, list] of keysByDomain) available[d] = list.length;
  const targets = mixTargets(available, config);
  const thresholds: Partial<Record<Domain, number>> = {};
  for (const [d, list] of keysByDomain) {
    const k = targets[d] ?? 0;
    if (k <= 0) continue;
    if (k >= list.length) {
      thresholds[d] = Number.POSITIVE_INFINITY;
      continue;
    }
    const sorted = Float64Array.from(list).sort();
    thresholds[d] = sorted[k - 1]!;
  }
  return { thresholds, targets, available };
}

/** Pass 2 over one selected shard: keeps the traces the plan takes. */
export async function applyMix(
  rows: AsyncIterable<SourceRow>,
  plan: MixPlan,
  config: RunConfig,
  run: ShardRun,
): Promise<void> {
  for await (const row of rows) {
    run.seen();
    if (!row.ok) throw new InvariantError(`selected shard has a malformed line: ${row.origin}`);
    const t = row.value as VerifiedTrace;
    const threshold = plan.thresholds[t.domain];
    if (threshold === undefined) {
      await run.reject({ reason: "domain_not_in_mix", origin: row.origin, questionId: t.questionId });
      continue;
    }
    if (mixKey(config.mixing.seed, t.questionId, t.sampleIndex) > threshold) {
      await run.reject({ reason: "mix_sampled_out", origin: row.origin, questionId: t.questionId });
      continue;
    }
    run.count(`domain_${t.domain}`);
    await run.emit(t);
  }
}
