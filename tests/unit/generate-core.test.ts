import { describe, expect, it } from "vitest";
import { resolveRunConfig } from "../../core/config/index.ts";
import { AdaptiveLimit, backoffMs, cacheKey, retryAfterMs, samplingFor } from "../../core/generate/index.ts";
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
