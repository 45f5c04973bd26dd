import { type ChildProcess, spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { runWorker } from "../../batch-images/generate/src/worker.ts";
import { cacheKey, sampleSeed, samplingFor } from "../../core/generate/index.ts";
import { keys } from "../../core/layout/index.ts";
import { readManifest } from "../../core/pipeline/context.ts";
import {
  dedupBranch,
  type GenerateItem,
  ingestShard,
  loadQuestionSlice,
  planGeneration,
  planIngest,
  validateConfig,
} from "../../core/pipeline/steps.ts";
import type { Trace } from "../../core/records/index.ts";
import { listAll, readJson } from "../../core/shards/byte-store.ts";
import type { FsStore } from "../../core/shards/fs-store.ts";
import { readShard } from "../../core/shards/jsonl.ts";
import type { ShardStats } from "../../core/stages/stage.ts";
import { startFakeOpenAI } from "../helpers/fake-openai.ts";
import { sampleContext } from "../helpers/pipeline.ts";

async function preparedRun(samples = 4) {
  const ctx = await sampleContext({
    teacher: { samplesPerQuestion: samples, maxAttempts: 5 },
    batch: { questionsPerShard: 100 },
  });
  await validateConfig(ctx.store, ctx.runId);
  await planIngest(ctx, "sft");
  for (const item of await readManifest<{
    shard: number;
    branch: "sft";
    sourceIndex: number;
    source: string;
    file: string;
  }>(ctx.store, keys.manifest(ctx.runId, "ingest-sft"))) {
    await ingestShard(ctx, item);
  }
  await dedupBranch(ctx, "sft");
  await planGeneration(ctx, "sft", "plan-distill");
  const [item] = await readManifest<GenerateItem>(ctx.store, keys.manifest(ctx.runId, "plan-distill"));
  const questions = await loadQuestionSlice(ctx.store, item!);
  return { ctx, questions };
}

async function traces(store: FsStore, runId: string): Promise<Trace[]> {
  const out: Trace[] = [];
  for await (const l of readShard(store, keys.shard(runId, "distill", 0)))
    if (l.ok) out.push(l.value as Trace);
  return out;
}

const noSleep = async () => undefined;

/** The worker options for array child 0 of the distill plan of `ctx`, against `baseURL`. */
function distillChild(ctx: { store: unknown; runId: string }, baseURL: string) {
  return {
    store: ctx.store as FsStore,
    runId: ctx.runId,
    planStage: "plan-distill" as const,
    outputStage: "distill" as const,
    mode: "distill" as const,
    arrayIndex: 0,
    baseURL,
    apiKey: "test",
    sleep: noSleep,
  };
}

describe("generate worker", () => {
  it("survives 429 with Retry-After, 500s, slow answers and connection resets with every sample once", async () => {
    const { ctx, questions } = await preparedRun();
    const server = await startFakeOpenAI({
      failFirst: (seed) => {
        const kind = (["429", "500", "reset", "slow"] as const)[seed % 10];
        return kind ? { times: kind === "429" ? 2 : 1, kind } : null;
      },
    });
    try {
      const result = await runWorker({
        ...distillChild(ctx, server.url),
        concurrency: 8,
        requestTimeoutMs: 5000,
      });

      expect(result.exitCode).toBe(0);
      const out = await traces(ctx.store as FsStore, ctx.runId);
      expect(out).toHaveLength(questions.length * 4);
      expect(new Set(out.map((t) => `${t.questionId}:${t.sampleIndex}`)).size).toBe(out.length);
      expect(out.every((t) => t.response.includes("<answer>42</answer>") && t.finishReason === "stop")).toBe(
        true,
      );
      expect([...server.successes.values()].every((n) => n === 1)).toBe(true);
      expect(result.counts.retries).toBeGreaterThan(0);
      const stats = await readJson<ShardStats>(ctx.store, keys.stats(ctx.runId, "distill", 0));
      expect(stats?.extra.completion_tokens).toBeGreaterThan(0);
      expect(stats?.extra.requests).toBe(server.requests.length);
    } finally {
      await server.close();
    }
  });

  it("repeats no finished request on a rerun and skips a finished shard", async () => {
    const { ctx } = await preparedRun(2);
    const server = await startFakeOpenAI();
    const opts = distillChild(ctx, server.url);
    try {
      await runWorker(opts);
      const first = server.requests.length;
      await (ctx.store as FsStore).delete(keys.stats(ctx.runId, "distill", 0));
      const rerun = await runWorker(opts);
      const again = await runWorker(opts);

      expect(server.requests.length).toBe(first);
      expect(rerun.counts.resumed).toBe(first);
      expect(again.reason).toBe("shard already done");
    } finally {
      await server.close();
    }
  });

  it("counts the same responses and tokens for a shard finished after a kill as for one never killed", async () => {
    // Found by npm run chaos: the resumed attempt counted only what it asked itself, so the stats,
    // the data card's "asked in this run" and the report's cost estimate changed with every kill.
    const { ctx } = await preparedRun(2);
    const server = await startFakeOpenAI();
    const opts = distillChild(ctx, server.url);
    const stats = async () =>
      (await readJson<ShardStats>(ctx.store, keys.stats(ctx.runId, "distill", 0)))!.extra;
    try {
      await runWorker(opts);
      const whole = await stats();
      await (ctx.store as FsStore).delete(keys.stats(ctx.runId, "distill", 0));
      await (ctx.store as FsStore).delete(keys.shard(ctx.runId, "distill", 0));

      await runWorker(opts);
      const resumed = await stats();

      for (const counter of ["responses", "prompt_tokens", "completion_tokens"])
        expect([counter, resumed[counter]]).toEqual([counter, whole[counter]]);
      expect(resumed.cache_hits).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it("stopped (SIGTERM) sends no new request, caches every answer in flight and exits 75 to resume", async () => {
    // Found by npm run chaos: a stopped job's answers in flight were lost and asked again.
    const { ctx } = await preparedRun(4);
    const server = await startFakeOpenAI({ latencyMs: 20 });
    try {
      const result = await runWorker({
        ...distillChild(ctx, server.url),
        concurrency: 4,
        stopping: () => server.answered >= 10,
      });
      const cached = await listAll(ctx.store, "cache/generate/");

      expect(result.exitCode).toBe(75);
      expect(result.reason).toMatch(/stopped/);
      expect(server.requests.length).toBeLessThan(10 + 4 + 1);
      expect(cached.length).toBe(server.answered);
      expect(await ctx.store.exists(keys.stats(ctx.runId, "distill", 0))).toBe(false);
    } finally {
      await server.close();
    }
  });

  it("keeps an answer whose cache write fails past the S3 client's own retries: written again, never asked again", async () => {
    // Seen while tracing npm run chaos's re-asks: its S3 faults (two per request in a row, plus dropped
    // connections from any request's fault) can fail one cache write on all three of the SDK's attempts;
    // the answer was then dropped, the shard failed, and the shard's retry asked for it again.
    const { ctx } = await preparedRun(2);
    const server = await startFakeOpenAI();
    const store = ctx.store as FsStore;
    const failures = new Map<string, number>();
    const flaky = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === "writeIfAbsent" || prop === "write")
          return async (key: string, ...rest: unknown[]) => {
            const n = failures.get(key) ?? 0;
            if (key.startsWith("cache/") && n < 3) {
              failures.set(key, n + 1);
              throw Object.assign(new Error("We encountered an internal error."), { name: "InternalError" });
            }
            return (target[prop] as (...a: unknown[]) => Promise<unknown>).call(target, key, ...rest);
          };
        return Reflect.get(target, prop, receiver);
      },
    });
    try {
      const result = await runWorker({ ...distillChild(ctx, server.url), store: flaky });

      expect(result.exitCode).toBe(0);
      expect(failures.size).toBeGreaterThan(0);
      expect([...server.answersPerRequest.values()].filter((n) => n > 1)).toEqual([]);
      expect((await listAll(store, "cache/generate/")).length).toBe(server.requests.length);
    } finally {
      await server.close();
    }
  });

  it("counts another run's cached answers as cache hits, not as its own", async () => {
    const { ctx } = await preparedRun(2);
    const server = await startFakeOpenAI();
    try {
      await runWorker(distillChild(ctx, server.url));
      const first = server.requests.length;
      const entries = await listAll(ctx.store, "cache/generate/");
      // The same answers, as a run named otherwise had asked for them.
      for (const key of entries) {
        const value = (await readJson<Record<string, unknown>>(ctx.store, key))!;
        await ctx.store.write(key, JSON.stringify({ ...value, askedBy: "another-run" }));
      }
      await (ctx.store as FsStore).delete(keys.stats(ctx.runId, "distill", 0));

      const rerun = await runWorker(distillChild(ctx, server.url));

      expect(server.requests.length).toBe(first);
      expect([rerun.counts.cache_hits, rerun.counts.responses]).toEqual([first, undefined]);
    } finally {
      await server.close();
    }
  });

  it("asks again for a response whose cache entry is unreadable (a torn write) instead of failing", async () => {
    const { ctx, questions } = await preparedRun(1);
    const server = await startFakeOpenAI();
    const key = keys.generationCache(cacheKey(questions[0]!, samplingFor(ctx.config, "distill"), 0));
    await ctx.store.write(key, '{"model":"m","respo');
    try {
      const result = await runWorker(distillChild(ctx, server.url));

      expect(result.exitCode).toBe(0);
      expect(result.counts.cache_unreadable).toBeGreaterThan(0);
      expect(server.requests.length).toBe(questions.length);
      expect(JSON.parse((await ctx.store.readBytes(key))!.toString()).response).toContain(
        "<answer>42</answer>",
      );
    } finally {
      await server.close();
    }
  });

  it("exits 75 when an endpoint stays down, keeping what finished, and 3 on a missing manifest item", async () => {
    const { ctx } = await preparedRun(2);
    const server = await startFakeOpenAI({
      failFirst: (seed) => (seed % 2 === 0 ? { times: 99, kind: "500" } : null),
    });
    try {
      const down = await runWorker(distillChild(ctx, server.url));
      const missing = await runWorker({ ...distillChild(ctx, server.url), arrayIndex: 99 });

      expect(down.exitCode).toBe(75);
      expect(await ctx.store.exists(keys.shard(ctx.runId, "distill", 0))).toBe(false);
      expect((await listAll(ctx.store, "cache/generate/")).length).toBe(down.counts.responses);
      expect(missing.exitCode).toBe(3);
    } finally {
      await server.close();
    }
  });

  it("killed with SIGKILL mid-shard and restarted: nothing lost, nothing duplicated, no cached request asked again", async () => {
    const { ctx, questions } = await preparedRun(4);
    const store = ctx.store as FsStore;
    const server = await startFakeOpenAI({ latencyMs: 40 });
    const env = {
      ...process.env,
      RECIPE_BUCKET: `file://${store.root}`,
      RECIPE_RUN_ID: ctx.runId,
      RECIPE_MODE: "distill",
      AWS_BATCH_JOB_ARRAY_INDEX: "0",
      OPENAI_BASE_URL: server.url,
      RECIPE_CONCURRENCY: "4",
    };
    const start = (): ChildProcess =>
      spawn(process.execPath, ["--import", "tsx", "batch-images/generate/src/main.ts"], {
        env,
        stdio: "ignore",
      });
    const exit = (p: ChildProcess) => new Promise<number | null>((r) => p.on("exit", (code) => r(code)));
    try {
      const first = start();
      while (server.successes.size < 30) await new Promise((r) => setTimeout(r, 20));
      first.kill("SIGKILL");
      await exit(first);
      const cachedBefore = new Set(
        (await listAll(store, "cache/generate/")).map((k) => k.slice(k.lastIndexOf("/") + 1, -5)),
      );
      const requestsBefore = server.requests.length;

      const code = await exit(start());

      expect(code).toBe(0);
      const sampling = samplingFor(ctx.config, "distill");
      const seedsCached = new Set<number>();
      for (const q of questions)
        for (let k = 0; k < 4; k++)
          if (cachedBefore.has(cacheKey(q, sampling, k))) seedsCached.add(sampleSeed(q.id, k));
      const askedAfter = server.requests.slice(requestsBefore);
      expect(cachedBefore.size).toBeGreaterThan(0);
      expect(askedAfter.filter((s) => seedsCached.has(s))).toEqual([]);
      const out = await traces(store, ctx.runId);
      expect(out).toHaveLength(questions.length * 4);
      expect(new Set(out.map((t) => `${t.questionId}:${t.sampleIndex}`)).size).toBe(out.length);
    } finally {
      await server.close();
    }
  });
});

describe("generate worker against a wrong endpoint", () => {
  it("fails the shard with exit 3 on a refused API key and caches nothing (the fix must not be outlived)", async () => {
    const { ctx } = await preparedRun(1);
    const server = await startFakeOpenAI({ failFirst: () => ({ times: 1_000_000, kind: "401" }) });
    try {
      const result = await runWorker(distillChild(ctx, server.url));

      expect(result.exitCode).toBe(3);
      expect(result.reason).toMatch(/answered HTTP 401/);
      expect(await listAll(ctx.store, "cache/generate/")).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it("fails at once with exit 3 naming the connection error when nothing listens", async () => {
    const { ctx } = await preparedRun(1);
    const server = await startFakeOpenAI();
    const url = server.url;
    await server.close(); // the port is now closed

    const result = await runWorker(distillChild(ctx, url));

    expect(result.exitCode).toBe(3);
    expect(result.reason).toContain(`cannot reach the endpoint ${url}: connection refused (ECONNREFUSED)`);
  });
});
