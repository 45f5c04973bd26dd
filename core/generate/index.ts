/**
 * What the generate job asks and how it remembers: rendered requests, the content-addressed cache key
 * (DESIGN.md: model + rendered messages with images by hash + sampling parameters + sample index;
 * never concurrency, timeouts or endpoints), and the adaptive concurrency limit. Pure.
 */
import { canonicalJson } from "../config/index.ts";
import type { RunConfig } from "../config/schema.ts";
import type { Question, Trace } from "../records/index.ts";
import { sha256Hex, userContent } from "../records/index.ts";

export interface Sampling {
  model: string;
  samplesPerQuestion: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  systemPrompt: string;
}

/** Teacher settings for distillation, policy settings for difficulty rollouts. */
export function samplingFor(config: RunConfig, mode: "distill" | "rollouts"): Sampling {
  if (mode === "distill") {
    const t = config.teacher;
    return {
      model: t.model,
      samplesPerQuestion: t.samplesPerQuestion,
      temperature: t.temperature,
      topP: t.topP,
      maxTokens: t.maxTokens,
      systemPrompt: t.systemPrompt,
    };
  }
  const r = config.rl;
  return {
    model: r.policyModel,
    samplesPerQuestion: r.rolloutsPerQuestion,
    temperature: r.temperature,
    topP: r.topP,
    maxTokens: r.maxTokens,
    systemPrompt: config.teacher.systemPrompt,
  };
}

/** The request for sample `k` of a question, with images by content hash (as stored in Traces). */
export function renderMessages(q: Question, sampling: Sampling): Trace["messages"] {
  return [
    { role: "system", content: sampling.systemPrompt },
    { role: "user", content: userContent(q) },
  ];
}

/**
 * A per-sample seed, sent with each request. It does not make a retried request give the same
 * answer: vLLM's online serving is not batch-invariant (the batch a request lands in changes its
 * numerics), so the same seed can sample another response. Resumption is exact because finished
 * responses are cached and never asked again, not because of the seed.
 */
export function sampleSeed(questionId: string, sampleIndex: number): number {
  return Number.parseInt(sha256Hex(`${questionId}:${sampleIndex}`).slice(0, 8), 16) & 0x7fffffff;
}

export function cacheKey(q: Question, sampling: Sampling, sampleIndex: number): string {
  return sha256Hex(
    canonicalJson({
      model: sampling.model,
      messages: renderMessages(q, sampling),
      sampling: { temperature: sampling.temperature, top_p: sampling.topP, max_tokens: sampling.maxTokens },
      sampleIndex,
    }),
  );
}

/** One finished response as cached: enough to rebuild the Trace without asking again. */
export interface CachedResponse {
  model: string;
  response: string;
  finishReason: Trace["finishReason"];
  usage: Trace["usage"];
  /**
   * The run that asked for it (the first writer's). A later attempt of that same run resuming after
   * a kill counts it as this run's answer, so a shard's counts do not depend on how often it was
   * killed; another run counts it as a cache hit. Absent in entries written before it existed.
   */
  askedBy?: string;
}

export function normalizeFinishReason(reason: string | null | undefined): Trace["finishReason"] {
  switch (reason) {
    case "stop":
    case "length":
    case "content_filter":
    case "tool_calls":
      return reason;
    default:
      return "unknown";
  }
}

/**
 * Additive-increase / multiplicative-decrease concurrency: halve on backpressure (429, 503), grow by
 * one after a run of successes, never above the configured maximum or below one.
 */
export class AdaptiveLimit {
  private current: number;
  private streak = 0;

  constructor(
    readonly max: number,
    readonly growEvery = 8,
  ) {
    this.current = max;
  }

  get value(): number {
    return this.current;
  }

  onBackpressure(): void {
    this.current = Math.max(1, Math.floor(this.current / 2));
    this.streak = 0;
  }

  onSuccess(): void {
    this.streak += 1;
    if (this.streak >= this.growEvery && this.current < this.max) {
      this.current += 1;
      this.streak = 0;
    }
  }
}

/** Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)). */
export function backoffMs(attempt: number, random: () => number, baseMs = 500, capMs = 60_000): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

/** Seconds to wait from a Retry-After header (seconds or an HTTP date), or null. */
export function retryAfterMs(header: string | null | undefined, now: number): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
