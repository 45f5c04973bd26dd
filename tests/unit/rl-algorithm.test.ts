import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { resolveRunConfig, validateRunConfig } from "../../core/config/index.ts";
import { configWarnings } from "../../core/config/warnings.ts";
import { estimateCost } from "../../core/cost.ts";
import { stageFingerprints } from "../../core/pipeline/fingerprint.ts";
import { rlStartModel } from "../../core/train/start-model.ts";
import { verlOverrides } from "../../core/train/verl.ts";

const base = {
  runId: "r",
  sources: { rl: [{ name: "a", uri: "s3://b/a/", format: "parquet", domain: "puzzle", license: "x" }] },
};
/** SFT training needs an SFT set to train on. */
const withSft = {
  ...base,
  sources: {
    ...base.sources,
    sft: [{ name: "s", uri: "s3://b/s/", format: "parquet", domain: "chart", license: "x" }],
  },
};

function overrides(training: Record<string, unknown>): Map<string, string> {
  const config = resolveRunConfig({ ...base, training: { rl: training } });
  const list = verlOverrides(config, {
    trainFiles: ["/d/a.parquet"],
    valFiles: ["/d/val.parquet"],
    checkpointDir: "/ck",
    rewardPath: "/r.py",
    modelPath: "m",
  });
  return new Map(list.map((o) => [o.slice(0, o.indexOf("=")), o.slice(o.indexOf("=") + 1)]));
}

// shared/RECIPE.md, "The repository's RL scripts for the algorithms it compares".
const COMMON = {
  "algorithm.adv_estimator": "grpo",
  "algorithm.use_kl_in_reward": "False",
  "algorithm.kl_ctrl.kl_coef": "0",
  "actor_rollout_ref.actor.use_kl_loss": "False",
  "actor_rollout_ref.actor.kl_loss_coef": "0",
  "data.max_response_length": "28696",
  "actor_rollout_ref.rollout.temperature": "1",
  "actor_rollout_ref.actor.use_dynamic_bsz": "True",
  "actor_rollout_ref.ref.log_prob_use_dynamic_bsz": "True",
  "actor_rollout_ref.rollout.log_prob_use_dynamic_bsz": "True",
};
const RECIPE: Record<string, Record<string, string>> = {
  gspo: {
    ...COMMON,
    "actor_rollout_ref.actor.policy_loss.loss_mode": "gspo",
    "actor_rollout_ref.actor.loss_agg_mode": "seq-mean-token-mean",
    "actor_rollout_ref.actor.clip_ratio_low": "0.0003",
    "actor_rollout_ref.actor.clip_ratio_high": "0.0004",
  },
  grpo: {
    ...COMMON,
    "actor_rollout_ref.actor.policy_loss.loss_mode": "vanilla",
    "actor_rollout_ref.actor.loss_agg_mode": "token-mean",
    "actor_rollout_ref.actor.clip_ratio_low": "0.2",
    "actor_rollout_ref.actor.clip_ratio_high": "0.2",
  },
  dapo: {
    ...COMMON,
    "actor_rollout_ref.actor.policy_loss.loss_mode": "vanilla",
    "actor_rollout_ref.actor.loss_agg_mode": "token-mean",
    "actor_rollout_ref.actor.clip_ratio_low": "0.2",
    "actor_rollout_ref.actor.clip_ratio_high": "0.2",
  },
};

describe("training.rl.algorithm", () => {
  it("defaults to GSPO", () => {
    expect(resolveRunConfig(base).training.rl.algorithm).toBe("gspo");
  });

  for (const [algorithm, expected] of Object.entries(RECIPE)) {
    it(`${algorithm} renders the recipe repository's settings, field by field`, () => {
      const o = overrides({ algorithm });

      for (const [key, value] of Object.entries(expected)) expect([key, o.get(key)]).toEqual([key, value]);
    });
  }

  it("renders no overlong buffer for any algorithm (the recipe runs with it off)", () => {
    for (const algorithm of Object.keys(RECIPE)) {
      const o = overrides({ algorithm });
      // verl's batch reward manager has no overlong penalty (its dapo manager does, off by default).
      expect(o.get("reward_model.reward_manager")).toBe("batch");
      expect([...o.keys()].filter((k) => k.includes("overlong_buffer"))).toEqual([]);
    }
  });

  it("an explicit per-field setting wins over the algorithm's", () => {
    const o = overrides({ algorithm: "grpo", clipRatioHigh: 0.28, lossAggMode: "seq-mean-token-mean" });

    expect(o.get("actor_rollout_ref.actor.clip_ratio_high")).toBe("0.28");
    expect(o.get("actor_rollout_ref.actor.clip_ratio_low")).toBe("0.2");
    expect(o.get("actor_rollout_ref.actor.loss_agg_mode")).toBe("seq-mean-token-mean");
    expect(o.get("actor_rollout_ref.actor.policy_loss.loss_mode")).toBe("vanilla");
  });

  it("the resolved config states the settings the algorithm chose", () => {
    const t = resolveRunConfig({ ...base, training: { rl: { algorithm: "dapo" } } }).training.rl;

    expect([t.lossMode, t.lossAggMode, t.clipRatioLow, t.clipRatioHigh]).toEqual([
      "vanilla",
      "token-mean",
      0.2,
      0.2,
    ]);
  });

  it("refuses an unknown algorithm, listing the known ones", () => {
    const r = validateRunConfig({ ...base, training: { rl: { algorithm: "ppo" } } });

    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([
      expect.objectContaining({ path: "$.training.rl.algorithm", expected: 'one of "gspo", "grpo", "dapo"' }),
    ]);
  });

  it("still refuses token-level clip ratios under GSPO's sequence-level loss", () => {
    const r = validateRunConfig({ ...base, training: { rl: { algorithm: "gspo", clipRatioHigh: 0.2 } } });

    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.path)).toEqual(["$.training.rl.clipRatioHigh"]);
  });

  it("a changed algorithm retrains the policy", () => {
    const gspo = stageFingerprints(resolveRunConfig({ ...base, training: { rl: { algorithm: "gspo" } } }));
    const grpo = stageFingerprints(resolveRunConfig({ ...base, training: { rl: { algorithm: "grpo" } } }));

    expect(grpo["train-rl"].reads["training.rl.algorithm"]).toBe("grpo");
    expect(grpo["train-rl"].fingerprint).not.toBe(gspo["train-rl"].fingerprint);
    expect(grpo["write-rl-dataset"].fingerprint).toBe(gspo["write-rl-dataset"].fingerprint);
  });
});

describe("recipe estimate", () => {
  it("names the algorithm whose steps it prices", () => {
    const config = resolveRunConfig({ ...base, training: { rl: { enabled: true, algorithm: "dapo" } } });

    const e = estimateCost(config, {
      sftQuestions: 0,
      rlQuestions: 10,
      avgTeacherTokens: 1,
      avgRolloutTokens: 1,
    });

    expect(e.lines.find((l) => l.stage === "train-rl")?.what).toBe("1500 DAPO steps on 1 x 8 GPU nodes");
  });
});

describe("config warnings", () => {
  const WARNING =
    "$.training.rl.startModel: RL starts from the base model Qwen/Qwen2.5-VL-7B-Instruct, not from an SFT cold-start checkpoint as the recipe does; set training.sft.enabled to train one in this run (RL then starts from it), or training.rl.startModel to your SFT checkpoint (s3://…)";

  it("warns when RL training starts from the base model with SFT off", () => {
    expect(configWarnings(resolveRunConfig({ ...base, training: { rl: { enabled: true } } }))).toEqual([
      WARNING,
    ]);
    // Named explicitly, it is still the base model.
    expect(
      configWarnings(
        resolveRunConfig({
          ...base,
          training: { rl: { enabled: true, startModel: "Qwen/Qwen2.5-VL-7B-Instruct" } },
        }),
      ),
    ).toEqual([WARNING]);
  });

  it("says nothing when training is off, starts from a checkpoint, or from this run's SFT", () => {
    expect(configWarnings(resolveRunConfig(base))).toEqual([]);
    expect(
      configWarnings(
        resolveRunConfig({
          ...base,
          training: { rl: { enabled: true, startModel: "s3://my-bucket/models/sft/" } },
        }),
      ),
    ).toEqual([]);
    expect(
      configWarnings(
        resolveRunConfig({ ...withSft, training: { sft: { enabled: true }, rl: { enabled: true } } }),
      ),
    ).toEqual([]);
  });

  it("the published example trains SFT, starts GSPO from it and evaluates, so it warns of nothing", () => {
    const c = resolveRunConfig(JSON.parse(readFileSync("examples/openmmreasoner.run.json", "utf8")));

    expect([c.training.sft.enabled, c.training.rl.enabled, c.training.rl.algorithm]).toEqual([
      true,
      true,
      "gspo",
    ]);
    expect(c.training.rl.startModel).toBeUndefined();
    expect(rlStartModel(c, "pipeline", c.runId)).toBe(`s3://pipeline/runs/${c.runId}/models/sft/`);
    expect(c.evaluation.enabled).toBe(true);
    expect(configWarnings(c)).toEqual([]);
  });
});

describe("rlStartModel", () => {
  const start = (training: Record<string, unknown>) =>
    rlStartModel(resolveRunConfig({ ...withSft, training }), "pipeline", "r");

  it("is the run's SFT output when train-sft runs", () => {
    expect(start({ sft: { enabled: true }, rl: { enabled: true } })).toBe("s3://pipeline/runs/r/models/sft/");
  });

  it("is the base model SFT would train when SFT is off", () => {
    expect(start({ rl: { enabled: true } })).toBe("Qwen/Qwen2.5-VL-7B-Instruct");
    expect(start({ sft: { baseModel: "s3://m/base/" }, rl: { enabled: true } })).toBe("s3://m/base/");
  });

  it("an explicit startModel wins, SFT on or off", () => {
    for (const sft of [{ enabled: true }, { enabled: false }])
      expect(start({ sft, rl: { enabled: true, startModel: "s3://m/ck/" } })).toBe("s3://m/ck/");
  });
});
