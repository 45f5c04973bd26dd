/**
 * Stage fingerprints and revisions: what a changed config recomputes, what it keeps, and that a
 * revision clears exactly the stages that changed (against the FsStore, the same ByteStore contract
 * the S3 store implements).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RunConfig, type RunConfigInput } from "../../core/config/schema.ts";
import { keys, STAGES } from "../../core/layout/index.ts";
import {
  configLeaves,
  OPERATIONAL,
  OUTPUT_STAGES,
  planRevision,
  STAGE_INPUTS,
  stageFingerprints,
} from "../../core/pipeline/fingerprint.ts";
import { applyRevision, describeRevision, fingerprintKey } from "../../core/pipeline/revision.ts";
import { listAll } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";

const base: RunConfigInput = {
  runId: "r1",
  description: "d",
  sources: {
    sft: [{ name: "a", uri: "a.jsonl", format: "jsonl", domain: "chart", license: "CC0-1.0" }],
    rl: [{ name: "b", uri: "b.jsonl", format: "jsonl", domain: "text_math", license: "CC0-1.0" }],
  },
  teacher: {
    serving: "endpoint",
    endpoint: { url: "http://127.0.0.1:1/v1" },
    tensorParallelSize: 8,
    maxModelLen: 40000,
  },
  verification: { judge: { endpoint: { url: "http://127.0.0.1:2/v1" } } },
  mixing: { caps: { chart: 5 } },
};
const config = (edit: (c: RunConfigInput) => void = () => undefined): RunConfig => {
  const c = structuredClone(base);
  edit(c);
  return RunConfig.parse(c);
};

/** The stages a changed config recomputes, given a run whose every stage has outputs. */
function recomputed(edit: (c: RunConfigInput) => void): string[] {
  const before = stageFingerprints(config());
  const all = Object.fromEntries(OUTPUT_STAGES.map((s) => [s, true]));
  return planRevision(stageFingerprints(config(edit)), before, all)
    .filter((d) => d.action === "recompute")
    .map((d) => d.stage);
}

/** A retrained SFT model retrains RL, which may start from it, and both are evaluated again. */
const AFTER_SFT_SET = ["train-sft", "train-rl", "evaluate"];
const AFTER_DISTILL = [
  "distill",
  "verify-traces",
  "select-and-mix",
  "write-sft-dataset",
  ...AFTER_SFT_SET,
  "report",
];

describe("stage fingerprints", () => {
  it("cover every config field: each one is read by a stage or named operational", () => {
    // A field added to the schema and to no stage would never recompute anything: this fails first.
    const unclaimed = Object.keys(configLeaves(config())).filter(
      (path) =>
        !OUTPUT_STAGES.filter((s) => s !== "report").some((s) =>
          STAGE_INPUTS[s].reads.some((p) => path === p || path.startsWith(`${p}.`)),
        ),
    );
    expect(unclaimed).toEqual([]);
    expect(Object.keys(configLeaves(config())).some((p) => OPERATIONAL.includes(p))).toBe(false);
  });

  it("list input stages before the stages that read them", () => {
    for (const stage of OUTPUT_STAGES)
      for (const input of STAGE_INPUTS[stage].after)
        expect(STAGES.indexOf(input), `${input} before ${stage}`).toBeLessThan(STAGES.indexOf(stage));
  });

  it.each<[string, (c: RunConfigInput) => void, string[]]>([
    [
      "the teacher model",
      (c) => {
        c.teacher!.model = "other/teacher";
      },
      AFTER_DISTILL,
    ],
    [
      "the system prompt",
      (c) => {
        c.teacher!.systemPrompt = "Answer.";
      },
      [
        ...AFTER_DISTILL.slice(0, 4),
        "train-sft",
        "estimate-difficulty",
        "filter-rl",
        "write-rl-dataset",
        "train-rl",
        "evaluate",
        "report",
      ],
    ],
    [
      "the mixing seed",
      (c) => {
        c.mixing!.seed = 1;
      },
      ["select-and-mix", "write-sft-dataset", ...AFTER_SFT_SET, "report"],
    ],
    [
      "a domain cap",
      (c) => {
        c.mixing!.caps = { chart: 6 };
      },
      ["select-and-mix", "write-sft-dataset", ...AFTER_SFT_SET, "report"],
    ],
    [
      "the judge model",
      (c) => {
        c.verification!.judge!.model = "j";
      },
      [
        "verify-traces",
        "select-and-mix",
        "write-sft-dataset",
        "train-sft",
        "filter-rl",
        "write-rl-dataset",
        "train-rl",
        "evaluate",
        "report",
      ],
    ],
    [
      "the pass-rate band",
      (c) => {
        c.rl = { passRateBand: { min: 0.1 } };
      },
      ["filter-rl", "write-rl-dataset", "train-rl", "evaluate", "report"],
    ],
    [
      "the SFT sources",
      (c) => {
        c.sources!.sft![0]!.uri = "c.jsonl";
      },
      [
        "ingest-sft",
        "dedup-sft",
        "dedup-rl",
        "plan-distill",
        ...AFTER_DISTILL.slice(0, 4),
        "train-sft",
        "plan-rollouts",
        "estimate-difficulty",
        "filter-rl",
        "write-rl-dataset",
        "train-rl",
        "evaluate",
        "report",
      ],
    ],
    [
      "the data card's description",
      (c) => {
        c.description = "e";
      },
      ["write-sft-dataset", "write-rl-dataset", "report"],
    ],
    [
      "an RL training setting",
      (c) => {
        c.training = { rl: { learningRate: 2e-6 } };
      },
      ["train-rl", "evaluate", "report"],
    ],
    [
      "an SFT training setting",
      (c) => {
        c.training = { sft: { learningRate: 1e-5 } };
      },
      AFTER_SFT_SET.concat("report"),
    ],
    [
      "the SFT set's layout",
      (c) => {
        c.output = { sftLayouts: ["lmms-engine"] };
      },
      // write-rl-dataset reads output too (its layouts' settings).
      ["write-sft-dataset", "train-sft", "write-rl-dataset", "train-rl", "evaluate", "report"],
    ],
    [
      "whether RL starts from this run's SFT (its start model)",
      (c) => {
        c.training = { sft: { enabled: true } };
      },
      AFTER_SFT_SET.concat("report"),
    ],
    [
      "an evaluation setting",
      (c) => {
        c.evaluation = { tasks: ["recipe_mathvista_testmini"], limit: 10 };
      },
      ["evaluate", "report"],
    ],
    [
      "which models are evaluated",
      (c) => {
        c.evaluation = { models: ["sft", "rl"] };
      },
      ["evaluate", "report"],
    ],
  ])(
    "a change to %s recomputes exactly the stages that read it, and those after them",
    (_, edit, expected) => {
      expect(recomputed(edit)).toEqual(expected);
    },
  );

  it.each<[string, (c: RunConfigInput) => void]>([
    [
      "the teacher's endpoint",
      (c) => Object.assign(c.teacher!, { endpoint: { url: "https://elsewhere/v1" } }),
    ],
    ["how the teacher is served", (c) => Object.assign(c.teacher!, { serving: "batch" })],
    [
      "request concurrency and retries",
      (c) => void Object.assign(c.teacher!, { requestConcurrency: 3, maxAttempts: 5 }),
    ],
    [
      "vLLM's parallelism and context",
      (c) => void Object.assign(c.teacher!, { tensorParallelSize: 4, maxModelLen: 50000 }),
    ],
    [
      "the judge's endpoint",
      (c) => Object.assign(c.verification!.judge!, { endpoint: { url: "https://j/v1" } }),
    ],
    [
      "how often checkpoints are saved and copied to S3",
      (c) =>
        void Object.assign(c, {
          training: {
            sft: { saveTotalLimit: 5, checkpointSyncMinutes: 5 },
            rl: { saveFreq: 4, checkpointSyncMinutes: 5 },
          },
        }),
    ],
    [
      "the shard size and Map concurrency",
      (c) =>
        void Object.assign(c, { batch: { questionsPerShard: 7 }, orchestration: { mapMaxConcurrency: 3 } }),
    ],
  ])("a change to %s (operational) recomputes nothing", (_, edit) => {
    expect(recomputed(edit)).toEqual([]);
  });

  it("says why a stage is recomputed, in the config's own paths", () => {
    const before = stageFingerprints(config());
    const now = stageFingerprints(
      config((c) => {
        c.teacher!.model = "other/teacher";
      }),
    );
    const all = Object.fromEntries(OUTPUT_STAGES.map((s) => [s, true]));
    const plan = planRevision(now, before, all);

    expect(plan.find((d) => d.stage === "distill")).toEqual({
      stage: "distill",
      action: "recompute",
      because: ["teacher.model changed"],
    });
    expect(plan.find((d) => d.stage === "verify-traces")).toMatchObject({ because: ["distill recomputed"] });
    expect(plan.find((d) => d.stage === "ingest-sft")).toEqual({ stage: "ingest-sft", action: "keep" });
  });

  it("recomputes the stage that reads a changed, added or removed source file, and names the file", () => {
    const a = "s3://b/sources/a.jsonl";
    const before = stageFingerprints(config(), {
      "ingest-sft": { [a]: "10 e1", "s3://b/sources/x.jsonl": "3 e" },
    });
    const now = stageFingerprints(config(), {
      "ingest-sft": { [a]: "11 e2", "s3://b/sources/y.jsonl": "4 e" },
    });
    const all = Object.fromEntries(OUTPUT_STAGES.map((s) => [s, true]));
    const plan = planRevision(now, before, all);

    expect(plan.find((d) => d.stage === "ingest-sft")).toEqual({
      stage: "ingest-sft",
      action: "recompute",
      because: [`${a} changed`, "s3://b/sources/x.jsonl removed", "s3://b/sources/y.jsonl added"],
    });
    expect(plan.find((d) => d.stage === "dedup-sft")).toMatchObject({ because: ["ingest-sft recomputed"] });
    expect(plan.find((d) => d.stage === "ingest-rl")).toEqual({ stage: "ingest-rl", action: "keep" });
  });

  it("keeps every stage when the source files list the same sizes and ETags", () => {
    const data = { "ingest-sft": { "s3://b/sources/a.jsonl": "10 e1" } };
    const all = Object.fromEntries(OUTPUT_STAGES.map((s) => [s, true]));
    const plan = planRevision(stageFingerprints(config(), data), stageFingerprints(config(), data), all);

    expect(plan.every((d) => d.action === "keep")).toBe(true);
  });

  it("recomputes a stage that has outputs but no recorded fingerprint, and starts a stage with neither", () => {
    const now = stageFingerprints(config());
    const plan = planRevision(now, {}, { "ingest-sft": true });

    expect(plan.find((d) => d.stage === "ingest-sft")).toMatchObject({ action: "recompute" });
    expect(plan.find((d) => d.stage === "dedup-sft")).toEqual({ stage: "dedup-sft", action: "new" });
  });
});

describe("applyRevision", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("clears the stages that changed, keeps the rest, never touches run.json, the cache or images", async () => {
    dir = mkdtempSync(join(tmpdir(), "revision-"));
    const store = new FsStore(dir);
    const first = await applyRevision(store, "r1", config(), 1);
    expect(first.stages.every((d) => d.action === "new")).toBe(true);
    const written = [
      keys.runConfig("r1"),
      keys.resolvedConfig("r1"),
      keys.success("r1", "ingest-sft"),
      keys.stats("r1", "ingest-sft", 0),
      keys.shard("r1", "distill", 0),
      keys.success("r1", "distill"),
      keys.stats("r1", "verify-traces", 0),
      keys.dataset("r1", "sft", "sft.jsonl.gz"),
      keys.dataset("r1", "rl", "train.parquet"),
      keys.report("r1", "report.html"),
      keys.generationCache("a".repeat(64)),
      keys.image("b".repeat(64)),
    ];
    for (const k of written) await store.write(k, "x");

    const second = await applyRevision(
      store,
      "r1",
      config((c) => {
        c.teacher!.model = "t2";
      }),
      2,
    );

    const left = new Set([
      ...(await listAll(store, "runs/")),
      ...(await listAll(store, "cache/")),
      ...(await listAll(store, "images/")),
    ]);
    const gone = written.filter((k) => !left.has(k));
    expect(gone).toEqual([
      keys.shard("r1", "distill", 0),
      keys.success("r1", "distill"),
      keys.stats("r1", "verify-traces", 0),
      keys.dataset("r1", "sft", "sft.jsonl.gz"),
      keys.report("r1", "report.html"),
    ]);
    expect(second.removed).toBe(5);
    expect(left.has(fingerprintKey("r1", "distill"))).toBe(true);
    expect(describeRevision(second)).toContain("distill: recomputed (teacher.model changed)");
    expect(describeRevision(second)).toContain("ingest-sft: skipped (unchanged)");

    // The same config again: nothing changes.
    const third = await applyRevision(
      store,
      "r1",
      config((c) => {
        c.teacher!.model = "t2";
      }),
      3,
    );
    expect(third.removed).toBe(0);
    expect(third.stages.some((d) => d.action === "recompute")).toBe(false);
  });

  it("clears a stage fully when the revision that began clearing it was killed part way", async () => {
    dir = mkdtempSync(join(tmpdir(), "revision-"));
    const store = new FsStore(dir);
    await applyRevision(store, "r1", config(), 1);
    const outputs = [0, 1, 2, 3].map((i) => keys.stats("r1", "select-and-mix", i));
    for (const k of [...outputs, keys.success("r1", "select-and-mix")]) await store.write(k, "x");
    const changed = config((c) => {
      c.mixing!.seed = 9;
    });
    // A store that dies after two deletes: the first revision is killed in the middle of clearing.
    let deletes = 0;
    const dying = Object.create(store, {
      delete: {
        value: async (k: string) => {
          if (++deletes > 2) throw new Error("killed");
          await store.delete(k);
        },
      },
    }) as FsStore;
    await expect(applyRevision(dying, "r1", changed, 2)).rejects.toThrow("killed");
    expect((await listAll(store, keys.stagePrefix("r1", "select-and-mix"))).length).toBeGreaterThan(1);

    const r = await applyRevision(store, "r1", changed, 3);

    expect(r.stages.find((d) => d.stage === "select-and-mix")?.action).toBe("recompute");
    expect(await listAll(store, keys.stagePrefix("r1", "select-and-mix"))).toEqual([
      fingerprintKey("r1", "select-and-mix"),
    ]);
    expect(await applyRevision(store, "r1", changed, 4)).toMatchObject({ removed: 0 });
  });
});
