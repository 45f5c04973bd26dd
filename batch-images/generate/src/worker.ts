/**
 * The generate worker: one shard of questions (picked by AWS_BATCH_JOB_ARRAY_INDEX) through any
 * OpenAI-compatible endpoint, N samples each, into Trace records.
 *
 * Resume: every finished response is written to the content-addressed cache before it counts, so a
 * restarted job (spot reclaim, kill -9) asks again only for what had not finished. The output shard is
 * written once, atomically, at the end, in question and sample order: no duplicates, nothing lost.
 */
import OpenAI from "openai";
import { EXIT_BAD_INPUT, EXIT_OK, EXIT_TRANSIENT, InputContractError } from "../../../core/errors.ts";
import {
  AdaptiveLimit,
  backoffMs,
  type CachedResponse,
  cacheKey,
  normalizeFinishReason,
  renderMessages,
  retryAfterMs,
  type Sampling,
  sampleSeed,
  samplingFor,
} from "../../../core/generate/index.ts";
import { probeEndpoint } from "../../../core/generate/probe.ts";
import { sniffType } from "../../../core/images/sniff.ts";
import { keys, type Stage } from "../../../core/layout/index.ts";
import { loadConfig, readManifest } from "../../../core/pipeline/context.ts";
import { type GenerateItem, loadQuestionSlice } from "../../../core/pipeline/slices.ts";
import type { Question, Trace } from "../../../core/records/index.ts";
import { type ByteStore, readJson } from "../../../core/shards/byte-store.ts";
import { runShard } from "../../../core/stages/stage.ts";

export { EXIT_BAD_INPUT, EXIT_OK, EXIT_TRANSIENT };

export interface WorkerOptions {
  store: ByteStore;
  runId: string;
  planStage: Stage;
  outputStage: Stage;
  mode: "distill" | "rollouts";
  arrayIndex: number;
  baseURL: string;
  apiKey: string;
  /** Overrides the model id sent to the endpoint (and so the cache key). */
  model?: string;
  concurrency?: number;
  requestTimeoutMs?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * True once the job is being stopped (SIGTERM: Batch's TerminateJob, a Spot reclaim's notice): no
   * new request is sent, the ones in flight finish and are cached, and the shard exits 75 to resume.
   */
  stopping?: () => boolean;
}

export interface WorkerResult {
  exitCode: number;
  reason: string;
  counts: Record<string, number>;
}

interface Task {
  i: number;
  q: Question;
  k: number;
  key: string;
}

/** Attempts at an answer's cache write (each one the S3 client's own three). */
const CACHE_WRITE_ATTEMPTS = 6;

const TRANSIENT_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504]);
/**
 * Statuses that say the endpoint (not this request) is wrong: a refused API key, an unknown model or
 * path. Every request would get the same answer, so the shard fails at once (exit 3) and nothing is
 * cached: a cached refusal would outlive the fix.
 */
const ENDPOINT_STATUS = new Set([401, 403, 404]);

/** Runs one array child. Never throws: the result carries the container's exit code. */
export async function runWorker(o: WorkerOptions): Promise<WorkerResult> {
  const counts: Record<string, number> = {};
  const log = o.log ?? (() => undefined);
  try {
    return await work(o, counts, log);
  } catch (err) {
    const bad = err instanceof InputContractError;
    log("generate failed", { error: (err as Error).message, kind: (err as Error).name });
    return { exitCode: bad ? EXIT_BAD_INPUT : EXIT_TRANSIENT, reason: (err as Error).message, counts };
  }
}

async function work(
  o: WorkerOptions,
  counts: Record<string, number>,
  log: NonNullable<WorkerOptions["log"]>,
): Promise<WorkerResult> {
  const started = Date.now();
  const bump = (k: string, n = 1) => {
    counts[k] = (counts[k] ?? 0) + n;
  };
  const config = await loadConfig(o.store, o.runId);
  const items = await readManifest<GenerateItem>(o.store, keys.manifest(o.runId, o.planStage));
  const item = items[o.arrayIndex];
  if (!item)
    throw new InputContractError(`array index ${o.arrayIndex} is past the manifest (${items.length} items)`);
  if (await o.store.exists(keys.stats(o.runId, o.outputStage, item.shard))) {
    return { exitCode: EXIT_OK, reason: "shard already done", counts };
  }
  const sampling: Sampling = { ...samplingFor(config, o.mode) };
  if (o.model) sampling.model = o.model;
  const questions = await loadQuestionSlice(o.store, item);
  const tasks: Task[] = [];
  for (const q of questions) {
    for (let k = 0; k < sampling.samplesPerQuestion; k++)
      tasks.push({ i: tasks.length, q, k, key: cacheKey(q, sampling, k) });
  }
  const limit = new AdaptiveLimit(o.concurrency ?? config.teacher.requestConcurrency);
  const random = o.random ?? Math.random;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const client = new OpenAI({ baseURL: o.baseURL, apiKey: o.apiKey, maxRetries: 0 });
  const timeout = o.requestTimeoutMs ?? config.teacher.requestTimeoutSeconds * 1000;
  // Retries may add at most half the shard's requests again (at least 100): a dead endpoint is not hammered.
  const retryBudget = Math.max(100, Math.ceil(tasks.length * 0.5));
  let retries = 0;
  let transientFailures = 0;
  const images = new Map<string, string>();

  const dataUrl = async (sha: string): Promise<string> => {
    let url = images.get(sha);
    if (!url) {
      const bytes = await o.store.readBytes(keys.image(sha));
      if (!bytes) throw new InputContractError(`image ${sha} is missing`);
      const type = sniffType(bytes) ?? "application/octet-stream";
      url = `data:${type};base64,${bytes.toString("base64")}`;
      if (images.size > 256) images.delete(images.keys().next().value!);
      images.set(sha, url);
    }
    return url;
  };

  const openAiMessages = async (t: Task) => {
    const out: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [];
    for (const m of renderMessages(t.q, sampling)) {
      if (typeof m.content === "string") {
        out.push({ role: m.role as "system", content: m.content });
        continue;
      }
      const parts: OpenAI.Chat.Completions.ChatCompletionContentPart[] = [];
      for (const p of m.content) {
        parts.push(
          p.type === "text"
            ? { type: "text", text: p.text }
            : { type: "image_url", image_url: { url: await dataUrl(p.sha256) } },
        );
      }
      out.push({ role: "user", content: parts });
    }
    return out;
  };

  /** The cached response of a task; an unreadable entry (a torn write) counts as missing. */
  const cachedAt = async (t: Task): Promise<CachedResponse | null> => {
    try {
      const value = await readJson<CachedResponse>(o.store, keys.generationCache(t.key));
      if (value && typeof value.response === "string") return value;
      if (value) bump("cache_unreadable");
      return null;
    } catch {
      bump("cache_unreadable");
      return null;
    }
  };

  /** Counts an answer this run asked for (in this attempt or one that was killed before it finished). */
  const answeredByThisRun = (value: CachedResponse) => {
    bump("responses");
    bump("prompt_tokens", value.usage.promptTokens);
    bump("completion_tokens", value.usage.completionTokens);
  };

  const finish = async (t: Task, value: CachedResponse): Promise<CachedResponse> => {
    // Written before it counts: after this line a restart will never ask for it again.
    const key = keys.generationCache(t.key);
    const body = JSON.stringify(value);
    // An answer is teacher time: a few S3 errors in a row (past the client's own three attempts: 500s,
    // 503 SlowDown, dropped connections) must not drop it, or the shard's retry asks for it again.
    for (let a = 0; ; a++) {
      try {
        if (!(await o.store.writeIfAbsent(key, body, { contentType: "application/json" }))) {
          // Already there: keep a valid entry (another attempt finished first), replace an unreadable one.
          if (!(await cachedAt(t))) await o.store.write(key, body, { contentType: "application/json" });
        }
        break;
      } catch (err) {
        if (a + 1 >= CACHE_WRITE_ATTEMPTS) throw err;
        log("cache write failed, retrying", { key, attempt: a + 1, error: (err as Error).message });
        await sleep(backoffMs(a, random));
      }
    }
    answeredByThisRun(value);
    return value;
  };

  // The endpoint is probed once, before the first request this shard actually sends (a shard served
  // wholly from the cache needs no teacher).
  let probed: Promise<void> | null = null;
  const probe = () => {
    probed ??= probeEndpoint({ baseURL: o.baseURL, apiKey: o.apiKey, model: sampling.model }).then((r) => {
      if (!r.ok) throw new InputContractError(r.message);
    });
    return probed;
  };

  const attempt = async (t: Task): Promise<CachedResponse | null> => {
    await probe();
    const messages = await openAiMessages(t);
    for (let a = 0; ; a++) {
      try {
        bump("requests");
        const res = await client.chat.completions.create(
          {
            model: sampling.model,
            messages,
            temperature: sampling.temperature,
            top_p: sampling.topP,
            max_tokens: sampling.maxTokens,
            seed: sampleSeed(t.q.id, t.k),
          },
          { timeout },
        );
        const choice = res.choices[0];
        limit.onSuccess();
        return await finish(t, {
          askedBy: o.runId,
          model: res.model ?? sampling.model,
          response: choice?.message?.content ?? "",
          finishReason: normalizeFinishReason(choice?.finish_reason),
          usage: {
            promptTokens: res.usage?.prompt_tokens ?? 0,
            completionTokens: res.usage?.completion_tokens ?? 0,
          },
        });
      } catch (err) {
        const status = err instanceof OpenAI.APIError ? err.status : undefined;
        if (status !== undefined && ENDPOINT_STATUS.has(status)) {
          throw new InputContractError(
            `the endpoint ${o.baseURL} answered HTTP ${status} for model ${sampling.model}: ${(err as Error).message.slice(0, 200)}`,
          );
        }
        const transient = status === undefined || TRANSIENT_STATUS.has(status);
        if (!transient) {
          // A request the server refuses on its merits (400: prompt too long, 422, ...) will be refused again:
          // cache the refusal as an error trace so verify rejects it with a reason.
          bump("request_errors");
          const refused = await finish(t, {
            askedBy: o.runId,
            model: sampling.model,
            response: "",
            finishReason: "error",
            usage: { promptTokens: 0, completionTokens: 0 },
          });
          log("request refused", {
            status,
            question: t.q.id,
            sample: t.k,
            error: (err as Error).message.slice(0, 200),
          });
          return refused;
        }
        if (status === 429 || status === 503) limit.onBackpressure();
        if (a + 1 >= config.teacher.maxAttempts || retries >= retryBudget) {
          transientFailures += 1;
          return null;
        }
        retries += 1;
        bump("retries");
        const headers = err instanceof OpenAI.APIError ? err.headers : undefined;
        const wait = retryAfterMs(headers?.get?.("retry-after"), Date.now()) ?? backoffMs(a, random);
        await sleep(wait);
      }
    }
  };

  // One pass, streaming into the output shard in question and sample order: each task first looks in
  // the cache (a finished response is never asked again), then asks. The shard becomes visible only when
  // every task has finished (atomic close); otherwise it is abandoned and a retry resumes from the cache.
  log("generate shard", { shard: item.shard, questions: questions.length, requests: tasks.length });
  class Incomplete extends Error {}
  try {
    await runShard(o.store, o.runId, o.outputStage, item.shard, async (run) => {
      const ordered = new OrderedOutput(tasks.length, async (i, value) => {
        const t = tasks[i]!;
        const cached = value ?? (await cachedAt(t));
        if (!cached) throw new Error(`cache entry vanished for ${t.key}`);
        run.seen();
        await run.emit({
          questionId: t.q.id,
          sampleIndex: t.k,
          model: cached.model,
          messages: renderMessages(t.q, sampling),
          response: cached.response,
          finishReason: cached.finishReason,
          usage: cached.usage,
        } satisfies Trace);
      });
      await pool(
        tasks,
        limit,
        async (t) => {
          let value = await cachedAt(t);
          // An answer this run asked for before a kill is still this run's answer (`resumed` says
          // how many this attempt found); only another run's answers are cache hits.
          if (value?.askedBy === o.runId) {
            bump("resumed");
            answeredByThisRun(value);
          } else if (value) bump("cache_hits");
          else value = await attempt(t);
          if (value) await ordered.done(t.i, value);
        },
        () => (retries >= retryBudget && transientFailures > 0) || (o.stopping?.() ?? false),
      );
      await ordered.drained();
      if ((counts.responses ?? 0) + (counts.cache_hits ?? 0) < tasks.length) throw new Incomplete();
      counts.wall_seconds = (Date.now() - started) / 1000;
      for (const [name, n] of Object.entries(counts)) run.count(name, n);
    });
  } catch (err) {
    if (!(err instanceof Incomplete)) throw err;
    return {
      exitCode: EXIT_TRANSIENT,
      reason: o.stopping?.()
        ? "stopped (SIGTERM) after the requests in flight; finished work is cached"
        : `${transientFailures} requests failed transiently; finished work is cached`,
      counts,
    };
  }
  return { exitCode: EXIT_OK, reason: "done", counts };
}

/**
 * Emits results in index order as soon as every earlier one is done. Out-of-order results wait in
 * memory up to a byte budget; past it only their index waits and the value is read back from the
 * cache when its turn comes, so memory stays bounded when one early request is slow.
 */
class OrderedOutput {
  private next = 0;
  private readonly ready = new Map<number, CachedResponse | null>();
  private bytes = 0;
  private chain: Promise<void> = Promise.resolve();
  static readonly BUDGET = 32 * 1024 * 1024;

  constructor(
    private readonly total: number,
    private readonly emit: (i: number, value: CachedResponse | null) => Promise<void>,
  ) {}

  done(i: number, value: CachedResponse): Promise<void> {
    const size = value.response.length * 2 + 256;
    const keep = this.bytes + size <= OrderedOutput.BUDGET;
    if (keep) this.bytes += size;
    this.ready.set(i, keep ? value : null);
    // One flusher at a time: emissions never interleave.
    this.chain = this.chain.then(() => this.flush());
    return this.chain;
  }

  private async flush(): Promise<void> {
    while (this.ready.has(this.next)) {
      const value = this.ready.get(this.next)!;
      this.ready.delete(this.next);
      if (value) this.bytes -= value.response.length * 2 + 256;
      await this.emit(this.next, value);
      this.next++;
    }
  }

  async drained(): Promise<void> {
    await this.chain;
    if (this.next > this.total) throw new Error("emitted more results than tasks");
  }
}

/** Runs `fn` over items with at most `limit.value` in flight (re-read as it adapts). */
async function pool<T>(
  items: readonly T[],
  limit: AdaptiveLimit,
  fn: (item: T) => Promise<void>,
  stop?: () => boolean,
): Promise<void> {
  const inflight = new Set<Promise<void>>();
  let next = 0;
  let failure: unknown = null;
  while (next < items.length || inflight.size > 0) {
    while (next < items.length && inflight.size < limit.value && !failure && !stop?.()) {
      const p: Promise<void> = fn(items[next++]!)
        .catch((err) => {
          failure ??= err;
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    if (inflight.size === 0) break;
    await Promise.race(inflight);
  }
  if (failure) throw failure;
}
