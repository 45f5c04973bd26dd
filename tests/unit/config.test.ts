import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  configHash,
  parseRunConfigText,
  resolveRunConfig,
  validateRunConfig,
} from "../../core/config/index.ts";
import { ConfigError } from "../../core/errors.ts";

const minimal = {
  runId: "run-1",
  sources: { sft: [{ name: "a", uri: "s3://bucket/a/", format: "jsonl", domain: "chart", license: "MIT" }] },
};

function problems(input: unknown) {
  const result = validateRunConfig(input);
  if (result.ok) throw new Error("expected the config to be invalid");
  return result.problems;
}

describe("run config", () => {
  it("fills every default from the recipe into a minimal config", () => {
    const result = validateRunConfig(minimal);

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const c = result.config;
    expect(c.teacher.samplesPerQuestion).toBe(8);
    expect(c.teacher.temperature).toBe(1);
    expect(c.teacher.maxTokens).toBe(16384);
    expect(c.teacher.model).toBe("Qwen/Qwen3-VL-235B-A22B-Instruct");
    expect(c.training.rl.rolloutsPerPrompt).toBe(16);
    expect(c.training.rl.clipRatioLow).toBe(3e-4);
    expect(c.training.rl.clipRatioHigh).toBe(4e-4);
    expect(c.training.rl.learningRate).toBe(1e-6);
    expect(c.training.rl.maxResponseLength).toBe(28696);
    expect(c.training.rl.lossAggMode).toBe("seq-mean-token-mean");
    expect(c.training.rl.useKlLoss).toBe(false);
    expect(c.rl.rolloutsPerQuestion).toBe(8);
    expect(c.rl.topP).toBe(0.9);
    expect(c.verification.extractionPreset).toBe("strict");
    expect(c.sources.sft[0]!.kind).toBe("questions");
    expect(c.sources.sft[0]!.columns.question).toBe("question");
    expect(c.filters.maxResponseChars).toBeUndefined();
  });

  it("reports a missing required field with its path", () => {
    const found = problems({ sources: minimal.sources });

    expect(found).toEqual([
      expect.objectContaining({ path: "$.runId", expected: "string", found: "undefined (missing)" }),
    ]);
  });

  it("reports a wrong type with the expected and found values", () => {
    const found = problems({ ...minimal, teacher: { samplesPerQuestion: "8" } });

    expect(found).toEqual([
      expect.objectContaining({ path: "$.teacher.samplesPerQuestion", expected: "number", found: '"8"' }),
    ]);
  });

  it("reports an out-of-range value", () => {
    const found = problems({ ...minimal, teacher: { temperature: 3.5 } });

    expect(found).toEqual([
      expect.objectContaining({ path: "$.teacher.temperature", expected: "number <= 2", found: "3.5" }),
    ]);
  });

  it("treats an unknown key as an error so a typo never falls back to a default", () => {
    const found = problems({ ...minimal, teacher: { samplesPerQuestoin: 4 } });

    expect(found).toEqual([
      expect.objectContaining({
        path: "$.teacher.samplesPerQuestoin",
        found: "4",
        message: 'unknown key "samplesPerQuestoin"',
      }),
    ]);
  });

  it("lists three independent mistakes at once", () => {
    const found = problems({
      runId: "has spaces",
      sources: { sft: [{ ...minimal.sources.sft[0], format: "csv" }] },
      mixing: { sed: 3 },
    });

    expect(found.map((p) => p.path).sort()).toEqual(["$.mixing.sed", "$.runId", "$.sources.sft[0].format"]);
  });

  it("requires an endpoint when the teacher is served by an endpoint", () => {
    const found = problems({ ...minimal, teacher: { serving: "endpoint" } });

    expect(found.map((p) => p.path)).toEqual(["$.teacher.endpoint"]);
  });

  it("refuses deploy settings and secrets in run.json, each with where it is set instead", () => {
    const found = problems({
      ...minimal,
      teacher: {
        serving: "endpoint",
        endpoint: { url: "https://h/v1", apiKeySecretArn: "arn:aws:secretsmanager:us-east-1:1:secret:k" },
      },
      verification: {
        judge: { endpoint: { url: "https://j/v1", apiKeySecretArn: "arn:aws:secretsmanager:x" } },
      },
      batch: { instanceTypes: ["p5.48xlarge"], maxVcpus: 64, gpusPerJob: 4, capacity: "spot" },
    });

    const byPath = Object.fromEntries(found.map((p) => [p.path, p]));
    expect(Object.keys(byPath).sort()).toEqual([
      "$.batch.capacity",
      "$.batch.gpusPerJob",
      "$.batch.instanceTypes",
      "$.batch.maxVcpus",
      "$.teacher.endpoint.apiKeySecretArn",
      "$.verification.judge.endpoint.apiKeySecretArn",
    ]);
    expect(byPath["$.batch.instanceTypes"]!.message).toContain("npx cdk deploy -c largeInstanceTypes=");
    expect(byPath["$.batch.instanceTypes"]!.found).toBe('["p5.48xlarge"]');
    expect(byPath["$.batch.gpusPerJob"]!.message).toContain("-c gpusPerJob=");
    expect(byPath["$.teacher.endpoint.apiKeySecretArn"]!.message).toContain("-c teacherApiKeySecretArn=");
    expect(byPath["$.verification.judge.endpoint.apiKeySecretArn"]!.message).toContain(
      "-c judgeApiKeySecretArn=",
    );
  });

  it("rejects mixing ratios that do not sum to one", () => {
    const found = problems({ ...minimal, mixing: { ratios: { chart: 0.5, text_math: 0.4 } } });

    expect(found).toEqual([expect.objectContaining({ path: "$.mixing.ratios", found: "0.9" })]);
  });

  it("rejects an LSH band count that does not divide the MinHash length", () => {
    const found = problems({ ...minimal, dedup: { minhashPermutations: 128, lshBands: 30 } });

    expect(found.map((p) => p.path)).toEqual(["$.dedup.lshBands"]);
  });

  it("rejects a pass-rate band whose minimum is not below its maximum", () => {
    const found = problems({ ...minimal, rl: { passRateBand: { min: 0.6, max: 0.5 } } });

    expect(found.map((p) => p.path)).toEqual(["$.rl.passRateBand.max"]);
  });

  it("rejects duplicate source names within a branch", () => {
    const src = minimal.sources.sft[0]!;
    const found = problems({ ...minimal, sources: { sft: [src, { ...src }] } });

    expect(found.map((p) => p.path)).toEqual(["$.sources.sft[1].name"]);
  });

  it("reports text that is not JSON as one problem at the root", () => {
    const result = parseRunConfigText('{"runId": "x",');

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]!.path).toBe("$");
  });

  it("refuses models the pinned images cannot load, naming the architecture and the versions", () => {
    const omni = "Qwen/Qwen3-Omni-30B-A3B-Instruct";

    const found = problems({
      ...minimal,
      teacher: { model: omni },
      rl: { policyModel: omni },
      training: { rl: { enabled: true, startModel: `s3://models/${omni.split("/")[1]}/` } },
    });

    expect(found.map((p) => [p.path, p.message])).toEqual([
      [
        "$.teacher.model",
        `${omni} is a Qwen3OmniMoeForConditionalGeneration, which the generate image cannot load: not in both its transformers 4.57.1 and vLLM 0.11.0`,
      ],
      [
        "$.rl.policyModel",
        `${omni} is a Qwen3OmniMoeForConditionalGeneration, which the generate image cannot load: not in both its transformers 4.57.1 and vLLM 0.11.0`,
      ],
      [
        "$.training.rl.startModel",
        "s3://models/Qwen3-Omni-30B-A3B-Instruct/ is a Qwen3OmniMoeForConditionalGeneration, which the train-rl image cannot load: not in both its transformers 4.57.1 and vLLM 0.11.0",
      ],
    ]);
  });

  it("accepts the recipe's models in the pinned images: a Qwen3-VL teacher, a Qwen2.5-VL or Qwen3-VL policy", () => {
    const result = validateRunConfig({
      ...minimal,
      teacher: { model: "Qwen/Qwen3-VL-235B-A22B-Instruct" },
      rl: { policyModel: "Qwen/Qwen3-VL-8B-Instruct" },
      training: { rl: { enabled: true, startModel: "Qwen/Qwen2.5-VL-7B-Instruct" } },
    });

    expect(result.ok).toBe(true);
  });

  it("refuses RL training's old flat keys, naming where each moved (never ignores them)", () => {
    const found = problems({
      ...minimal,
      training: { enabled: true, startModel: "s3://m/ck/", algorithm: "grpo" },
    });

    expect(found.map((p) => [p.path, p.message])).toEqual([
      [
        "$.training.enabled",
        "moved: RL training's settings are under training.rl; write training.rl.enabled instead of training.enabled",
      ],
      [
        "$.training.algorithm",
        "moved: RL training's settings are under training.rl; write training.rl.algorithm instead of training.algorithm",
      ],
      [
        "$.training.startModel",
        "moved: RL training's settings are under training.rl; write training.rl.startModel instead of training.startModel",
      ],
    ]);
  });

  it("lists a moved key with every other problem of the config, not only once the others are fixed", () => {
    const found = problems({
      ...minimal,
      training: { enabled: true, sft: { nodes: 0 } },
      evaluation: { models: ["xl"] },
    });

    expect(found.map((p) => p.path).sort()).toEqual([
      "$.evaluation.models[0]",
      "$.training.enabled",
      "$.training.sft.nodes",
    ]);
  });

  it("refuses evaluating a model the run does not train, before anything starts", () => {
    const found = problems({ ...minimal, evaluation: { enabled: true, models: ["base", "rl"] } });

    expect(found.map((p) => [p.path, p.message])).toEqual([
      [
        "$.evaluation.models[1]",
        "this run does not train the rl model (training.rl.enabled is false): leave it out or turn that training on",
      ],
    ]);
    expect(
      validateRunConfig({
        ...minimal,
        training: { rl: { enabled: true } },
        evaluation: { enabled: true, models: ["rl"] },
      }).ok,
    ).toBe(true);
  });

  it("leaves RL's start model unset by default (train-rl starts from SFT's output, or the base model)", () => {
    const c = resolveRunConfig(minimal);

    expect(c.training.rl.startModel).toBeUndefined();
    expect(c.training.sft.baseModel).toBe("Qwen/Qwen2.5-VL-7B-Instruct");
    expect(Object.keys(c.training).sort()).toEqual(["rl", "sft"]);
  });

  it("refuses a base model train-rl cannot load when RL would start from it", () => {
    const found = problems({
      ...minimal,
      training: { sft: { baseModel: "Qwen/Qwen3-Omni-30B-A3B-Instruct" }, rl: { enabled: true } },
    });

    expect(found.map((p) => p.path)).toEqual(["$.training.sft.baseModel"]);
  });

  it("refuses SFT training in a run with no SFT sources (nothing to train on)", () => {
    const found = problems({
      runId: "r",
      sources: { rl: [{ name: "b", uri: "b.jsonl", format: "jsonl", domain: "chart", license: "x" }] },
      training: { sft: { enabled: true } },
    });

    expect(found.map((p) => p.path)).toEqual(["$.training.sft.enabled"]);
  });

  it("throws a ConfigError carrying every problem from resolveRunConfig", () => {
    const act = () => resolveRunConfig({ runId: "" });

    expect(act).toThrow(ConfigError);
    try {
      act();
    } catch (err) {
      expect((err as ConfigError).problems.map((p) => p.path)).toEqual(["$.runId", "$.sources"]);
    }
  });

  it("hashes equal configs equally regardless of key order", () => {
    const a = resolveRunConfig(minimal);
    const b = resolveRunConfig({ sources: minimal.sources, runId: "run-1" });
    const c = resolveRunConfig({ ...minimal, teacher: { temperature: 0.7 } });

    expect(configHash(a)).toBe(configHash(b));
    expect(configHash(a)).not.toBe(configHash(c));
  });

  it.each(["examples/run.sample.json", "examples/openmmreasoner.run.json"])(
    "accepts the shipped example %s",
    (file) => {
      const result = parseRunConfigText(readFileSync(file, "utf8"));

      expect(result.ok ? [] : result.problems).toEqual([]);
    },
  );

  it("encodes the published recipe's mix and sampling in the openmmreasoner example", () => {
    const c = resolveRunConfig(JSON.parse(readFileSync("examples/openmmreasoner.run.json", "utf8")));

    expect(c.teacher.samplesPerQuestion).toBe(8);
    expect(c.mixing.ratios).toEqual({ general_vqa: 0.659, image_math: 0.236, text_math: 0.105 });
    expect(c.mixing.totalRows).toBe(874357);
    expect(c.training.rl.rolloutsPerPrompt).toBe(16);
    expect(c.sources.rl.map((s) => s.name)).toContain("thinklite-vl-hard");
  });
});
