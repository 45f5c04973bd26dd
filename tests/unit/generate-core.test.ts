import { describe, expect, it } from "vitest";
import { resolveRunConfig } from "../../core/config/index.ts";
import { AdaptiveLimit, backoffMs, cacheKey, retryAfterMs, samplingFor } from "../../core/generate/index.ts";
import { modelFacts, planServe } from "../../core/generate/serve-plan.ts";
import { type Question, questionId } from "../../core/records/index.ts";

const config = resolveRunConfig({
  runId: "g",
  sources: { sft: [{ name: "s", uri: "s3://b/s/", format: "jsonl", domain: "chart", license: "MIT" }] },
});
const q: Question = {
  id: questionId("What is 2+2?", []),
  source: "s",
  domain: "chart",
  question: "What is 2+2?",
  images: [],
  answer: "4",
  answerType: "numeric",
};

describe("generation cache key", () => {
  it("depends on model, messages, sampling parameters and sample index only", () => {
    const s = samplingFor(config, "distill");
    const base = cacheKey(q, s, 0);

    expect(cacheKey(q, { ...s }, 0)).toBe(base);
    expect(cacheKey(q, s, 1)).not.toBe(base);
    expect(cacheKey(q, { ...s, model: "other" }, 0)).not.toBe(base);
    expect(cacheKey(q, { ...s, temperature: 0.7 }, 0)).not.toBe(base);
    expect(cacheKey(q, { ...s, systemPrompt: "x" }, 0)).not.toBe(base);
    expect(cacheKey(q, { ...s, samplesPerQuestion: 2 }, 0)).toBe(base);
  });

  it("ignores concurrency, timeouts and endpoints, which are not part of the sampling", () => {
    const other = resolveRunConfig({
      ...config,
      teacher: {
        ...config.teacher,
        requestConcurrency: 7,
        requestTimeoutSeconds: 9,
        serving: "endpoint",
        endpoint: { url: "https://x.example/v1" },
      },
    });

    expect(cacheKey(q, samplingFor(other, "distill"), 0)).toBe(
      cacheKey(q, samplingFor(config, "distill"), 0),
    );
  });

  it("uses the policy model and rollout sampling in rollouts mode", () => {
    const s = samplingFor(config, "rollouts");

    expect(s).toMatchObject({
      model: "Qwen/Qwen2.5-VL-7B-Instruct",
      samplesPerQuestion: 8,
      topP: 0.9,
      maxTokens: 8192,
    });
  });
});

describe("backpressure", () => {
  it("halves on backpressure and grows back by one per run of successes, within bounds", () => {
    const limit = new AdaptiveLimit(16, 2);

    limit.onBackpressure();
    limit.onBackpressure();
    expect(limit.value).toBe(4);
    for (let i = 0; i < 4; i++) limit.onSuccess();
    expect(limit.value).toBe(6);
    for (let i = 0; i < 100; i++) limit.onSuccess();
    expect(limit.value).toBe(16);
    for (let i = 0; i < 10; i++) limit.onBackpressure();
    expect(limit.value).toBe(1);
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    expect(retryAfterMs("3", 0)).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs(undefined, 0)).toBeNull();
    expect(retryAfterMs("soon", 0)).toBeNull();
  });

  it("draws full-jitter backoff below an exponentially growing cap", () => {
    expect(backoffMs(0, () => 0.999)).toBeLessThan(500);
    expect(backoffMs(3, () => 0.999)).toBeLessThan(4000);
    expect(backoffMs(3, () => 0.999)).toBeGreaterThan(3900);
    expect(backoffMs(30, () => 0.999)).toBeLessThan(60_000);
  });
});

describe("the vLLM serving plan", () => {
  const GiB = 2 ** 30;
  const qwen25vl7b = { attentionHeads: 28, weightBytes: 16_584_333_312, moe: false };
  const qwen3vl235b = { attentionHeads: 64, weightBytes: 471_000_000_000, moe: true };
  const base = { maxModelLen: 32_768, maxImages: 8 };

  it("runs a 7B policy with TP 1 and data parallelism over the other GPUs (28 heads refuse TP 8)", () => {
    const plan = planServe(qwen25vl7b, { ...base, gpus: 8, gpuMemoryBytes: 80 * GiB });
    expect(plan).toMatchObject({ ok: true, tensorParallel: 1, dataParallel: 8 });
    if (!plan.ok) return;
    expect(plan.args).toEqual([
      "--tensor-parallel-size",
      "1",
      "--data-parallel-size",
      "8",
      "--max-model-len",
      "32768",
      "--limit-mm-per-prompt",
      '{"image":8,"video":0}',
      "--mm-processor-cache-type",
      "shm",
      "--async-scheduling",
    ]);
  });

  it("splits the 235B MoE teacher over all 8 H100s with expert parallelism, and refuses it on 8 L40S", () => {
    const p5 = planServe(qwen3vl235b, { ...base, gpus: 8, gpuMemoryBytes: 81_559 * 2 ** 20 });
    expect(p5).toMatchObject({ ok: true, tensorParallel: 8, dataParallel: 1 });
    if (p5.ok)
      expect(p5.args).toEqual(expect.arrayContaining(["--enable-expert-parallel", "--mm-encoder-tp-mode"]));
    expect(planServe(qwen3vl235b, { ...base, gpus: 8, gpuMemoryBytes: 46_068 * 2 ** 20 })).toEqual({
      ok: false,
      problem: expect.stringMatching(/weights \(439 GiB\) do not fit on 8 GPUs of 45 GiB/),
    });
  });

  it("takes a requested TP only when it divides the GPUs and the heads, and says which would", () => {
    expect(planServe(qwen25vl7b, { ...base, gpus: 8, gpuMemoryBytes: null, tensorParallel: 8 })).toEqual({
      ok: false,
      problem: expect.stringContaining("the model's 28 attention heads: use one of 1, 2, 4"),
    });
    expect(
      planServe(qwen25vl7b, { ...base, gpus: 8, gpuMemoryBytes: null, tensorParallel: 2 }),
    ).toMatchObject({
      ok: true,
      tensorParallel: 2,
      dataParallel: 4,
    });
  });

  it("reads heads, experts and weight size from Qwen2.5-VL and Qwen3-VL configs", () => {
    expect(modelFacts({ num_attention_heads: 28 }, null)).toEqual({
      attentionHeads: 28,
      weightBytes: null,
      moe: false,
    });
    expect(
      modelFacts(
        { text_config: { num_attention_heads: 64, num_experts: 128 } },
        { metadata: { total_size: 471_000_000_000 } },
      ),
    ).toEqual({ attentionHeads: 64, weightBytes: 471_000_000_000, moe: true });
    expect(() => modelFacts({ vision_config: {} }, null)).toThrow(/num_attention_heads/);
  });
});
