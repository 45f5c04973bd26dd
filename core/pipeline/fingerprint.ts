/**
 * Stage fingerprints (DESIGN.md "Reruns and revisions"): what determines a stage's output is the
 * resolved config fields it reads, the fingerprints of the stages it reads from, and a version of
 * its own logic. A rerun keeps a finished stage only when that hash is unchanged; otherwise the
 * stage and everything after it are computed again (the generation cache makes a recomputed
 * generation stage ask only what really changed).
 *
 * Pure: the store-facing half (reading the recorded fingerprints, clearing what changed) is in
 * revision.ts.
 */
import { canonicalJson } from "../config/index.ts";
import type { RunConfig } from "../config/schema.ts";
import type { Stage } from "../layout/index.ts";
import { sha256Hex } from "../records/index.ts";

/** Every stage but validate-config, which runs on every execution and decides the rest. */
export type OutputStage = Exclude<Stage, "validate-config">;

interface StageInputs {
  /** Config paths (a path covers everything below it) whose values determine the output. */
  reads: readonly string[];
  /** Stages whose output this stage reads. */
  after: readonly OutputStage[];
  /**
   * The version of the stage's logic: raise it when a change to the code changes what the stage
   * writes for the same input, so that finished runs compute the stage again.
   */
  logic: number;
}

/** The verifier's settings that decide a verdict (the hang guard only stops a defect). */
const VERDICT = [
  "verification.extractionPreset",
  "verification.numericRelativeTolerance",
  "verification.itemStepBudget",
  "verification.judge.enabled",
  "verification.judge.model",
  "verification.judge.maxTokens",
  "verification.judge.maxPredictionChars",
] as const;

/** What a data card states about the run (the SFT card also names the teacher and its sources). */
const CARD = ["description", "verification.judge.model", "verification.judge.enabled"] as const;

/**
 * Config fields that change how a run is carried out but not what it writes: shard sizes,
 * concurrency, retries, timeouts and where a model is served. The generation cache's key leaves out
 * the same things (DESIGN.md "Contracts"): the same model asked the same thing is the same request,
 * whichever endpoint serves it.
 */
export const OPERATIONAL: readonly string[] = [
  "$schema",
  "runId",
  "batch",
  "orchestration",
  "teacher.serving",
  "teacher.endpoint",
  "teacher.requestConcurrency",
  "teacher.maxAttempts",
  "teacher.requestTimeoutSeconds",
  "teacher.tensorParallelSize",
  "teacher.maxModelLen",
  "teacher.weightsUri",
  "rl.policyWeightsUri",
  "verification.hangGuardMs",
  "verification.judge.endpoint",
  "training.rl.saveFreq",
  "training.rl.checkpointSyncMinutes",
  "training.sft.saveTotalLimit",
  "training.sft.checkpointSyncMinutes",
];

/** What each stage reads, in STAGES order (which is an order where inputs come first). */
export const STAGE_INPUTS: Record<OutputStage, StageInputs> = {
  "ingest-sft": { reads: ["sources.sft", "ingest"], after: [], logic: 1 },
  "ingest-rl": { reads: ["sources.rl", "ingest", "rl.passRateFrom"], after: [], logic: 1 },
  "dedup-sft": { reads: ["dedup"], after: ["ingest-sft"], logic: 1 },
  "dedup-rl": {
    reads: ["dedup", "rl.removeSftOverlap", "sources.sft"],
    after: ["ingest-rl", "dedup-sft"],
    logic: 1,
  },
  "plan-distill": { reads: ["sources.sft", "teacher.samplesPerQuestion"], after: ["dedup-sft"], logic: 1 },
  distill: {
    reads: [
      "teacher.model",
      "teacher.samplesPerQuestion",
      "teacher.temperature",
      "teacher.topP",
      "teacher.maxTokens",
      "teacher.systemPrompt",
      "teacher.maxImagesPerPrompt",
    ],
    after: ["plan-distill"],
    logic: 1,
  },
  "verify-traces": { reads: [...VERDICT, "filters"], after: ["ingest-sft", "distill"], logic: 1 },
  "select-and-mix": { reads: ["mixing"], after: ["verify-traces"], logic: 1 },
  "write-sft-dataset": {
    reads: [
      ...CARD,
      "sources.sft",
      "teacher.model",
      "teacher.systemPrompt",
      "output",
      "mixing.blankImageForTextOnly",
    ],
    after: ["select-and-mix"],
    logic: 1,
  },
  // The rows it trains on (what select-and-mix chose, as write-sft-dataset lays them out), not the card.
  "train-sft": {
    reads: ["training.sft", "teacher.systemPrompt", "output", "mixing.blankImageForTextOnly"],
    after: ["select-and-mix"],
    logic: 1,
  },
  "plan-rollouts": {
    reads: ["rl.enabled", "rl.passRateFrom", "rl.rolloutsPerQuestion"],
    after: ["dedup-rl"],
    logic: 1,
  },
  "estimate-difficulty": {
    reads: [
      "rl.policyModel",
      "rl.rolloutsPerQuestion",
      "rl.temperature",
      "rl.topP",
      "rl.maxTokens",
      "teacher.systemPrompt",
    ],
    after: ["plan-rollouts"],
    logic: 1,
  },
  "filter-rl": {
    reads: [...VERDICT, "rl.passRateBand", "rl.passRateFrom"],
    after: ["dedup-rl", "estimate-difficulty"],
    logic: 1,
  },
  "write-rl-dataset": {
    reads: [...CARD, "sources.rl", "teacher.systemPrompt", "rl", "output"],
    after: ["filter-rl"],
    logic: 1,
  },
  // The rows it trains on, not the data card: a new description does not retrain a policy.
  // Its start model: training.rl.startModel, else SFT's output or, SFT off, the base model.
  "train-rl": {
    reads: [
      "training.rl",
      "training.sft.enabled",
      "training.sft.baseModel",
      ...VERDICT,
      "teacher.systemPrompt",
    ],
    after: ["filter-rl", "train-sft"],
    logic: 1,
  },
  // A changed evaluation setting re-evaluates only; a retrained model is evaluated again.
  evaluate: {
    reads: ["evaluation", ...VERDICT, "training.sft.baseModel"],
    after: ["train-sft", "train-rl"],
    logic: 1,
  },
  // The report states everything; it is cheap to write again.
  report: {
    reads: [""],
    after: ["write-sft-dataset", "train-sft", "write-rl-dataset", "train-rl", "evaluate"],
    logic: 1,
  },
};

export const OUTPUT_STAGES = Object.keys(STAGE_INPUTS) as OutputStage[];

/** What a stage's folder records about the revision that wrote it (`<stage>/fingerprint.json`). */
export interface StageFingerprint {
  stage: OutputStage;
  fingerprint: string;
  logic: number;
  /** The values of the config fields it reads, by path (absent optional fields are left out). */
  reads: Record<string, unknown>;
  /** The fingerprints of the stages it reads from. */
  after: Record<string, string>;
  /**
   * The source objects it reads, as a listing gives them (`s3://bucket/key` -> `<size> <etag>`;
   * source-identity.ts): absent for a stage that reads no source data.
   */
  data?: Record<string, string>;
  /**
   * Who answered the stage's model requests (not part of the fingerprint: the cache key leaves the
   * endpoint out too): every model and endpoint that served its kept outputs, oldest first.
   */
  servedBy?: string[];
}

/** An endpoint as a data card may name it: no user, password, query or fragment (where keys hide). */
export function publicUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    u.hash = "";
    return u.toString();
  } catch {
    return "(not a URL)";
  }
}

/** The model and endpoint that answer a stage's requests under this config, or null for none. */
export function servingOf(config: RunConfig, stage: OutputStage): string | null {
  const inJob = "vLLM in the generate Batch job";
  if (stage === "distill") {
    const t = config.teacher;
    // recipe run names the bundled replay server's models replay/<model> (cli/run.ts).
    if (t.model.startsWith("replay/"))
      return `teacher ${t.model} via the bundled replay server (recorded responses)`;
    if (t.model.startsWith("synthetic/"))
      return `teacher ${t.model} via the bundled synthetic teacher (answers made from the gold answers; not for training)`;
    return `teacher ${t.model} via ${t.serving === "endpoint" && t.endpoint ? publicUrl(t.endpoint.url) : inJob}`;
  }
  if (stage === "verify-traces" || stage === "filter-rl") {
    const j = config.verification.judge;
    return j.enabled ? `judge ${j.model} via ${j.endpoint ? publicUrl(j.endpoint.url) : inJob}` : null;
  }
  return null;
}

function isUnder(path: string, prefix: string): boolean {
  return prefix === "" || path === prefix || path.startsWith(`${prefix}.`);
}

function operational(path: string): boolean {
  return OPERATIONAL.some((p) => isUnder(path, p));
}

/**
 * The config's values as leaf paths: objects are walked, arrays are values (a source list is one
 * input, in order). Operational fields are left out.
 */
export function configLeaves(config: RunConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (value: unknown, path: string): void => {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
    } else if (value !== undefined && !operational(path)) {
      out[path] = value;
    }
  };
  walk(config, "");
  return out;
}

/**
 * Every stage's fingerprint for a resolved config and, when given, the identity of the source data
 * each stage reads (a changed, added or removed source file changes the stages that read it).
 */
export function stageFingerprints(
  config: RunConfig,
  data: Partial<Record<OutputStage, Record<string, string>>> = {},
): Record<OutputStage, StageFingerprint> {
  const leaves = configLeaves(config);
  const out = {} as Record<OutputStage, StageFingerprint>;
  for (const stage of OUTPUT_STAGES) {
    const spec = STAGE_INPUTS[stage];
    const reads: Record<string, unknown> = {};
    for (const [path, value] of Object.entries(leaves))
      if (spec.reads.some((p) => isUnder(path, p))) reads[path] = value;
    const after: Record<string, string> = {};
    for (const s of spec.after) after[s] = out[s].fingerprint;
    const files = data[stage];
    const fingerprint = sha256Hex(
      canonicalJson({ logic: spec.logic, reads, after, ...(files ? { data: files } : {}) }),
    );
    const serving = servingOf(config, stage);
    out[stage] = {
      stage,
      fingerprint,
      logic: spec.logic,
      reads,
      after,
      ...(files ? { data: files } : {}),
      ...(serving ? { servedBy: [serving] } : {}),
    };
  }
  return out;
}

export type StageDecision =
  | { stage: OutputStage; action: "keep" }
  | { stage: OutputStage; action: "new" }
  | { stage: OutputStage; action: "recompute"; because: string[] };

/** Why a recorded fingerprint differs from the current one, in words a person reads in a log. */
function reasons(now: StageFingerprint, before: StageFingerprint, recomputed: ReadonlySet<string>): string[] {
  const why: string[] = [];
  const paths = new Set([...Object.keys(now.reads), ...Object.keys(before.reads)]);
  for (const p of [...paths].sort())
    if (canonicalJson(now.reads[p]) !== canonicalJson(before.reads[p])) why.push(`${p} changed`);
  const files = new Set([...Object.keys(now.data ?? {}), ...Object.keys(before.data ?? {})]);
  const fileWhy: string[] = [];
  for (const f of [...files].sort()) {
    const a = before.data?.[f];
    const b = now.data?.[f];
    if (a === b) continue;
    fileWhy.push(`${f} ${a === undefined ? "added" : b === undefined ? "removed" : "changed"}`);
  }
  // A log line, not a listing: a source of thousands of files says how many more.
  why.push(...fileWhy.slice(0, 3));
  if (fileWhy.length > 3) why.push(`${fileWhy.length - 3} more source files changed`);
  for (const s of Object.keys(now.after))
    if (now.after[s] !== before.after?.[s]) why.push(recomputed.has(s) ? `${s} recomputed` : `${s} changed`);
  if (now.logic !== before.logic)
    why.push(`the stage's logic changed (version ${before.logic} -> ${now.logic})`);
  return why.length > 0 ? why : ["its inputs changed"];
}

/**
 * Decides, per stage, whether its outputs stay. `recorded` is what each stage folder's
 * fingerprint.json says (null: none); `hasOutputs` whether the folder holds anything else. A stage
 * with outputs but no fingerprint (written before fingerprints existed, or by a revision killed
 * before it recorded one) is recomputed: nothing says which config made it.
 */
export function planRevision(
  current: Record<OutputStage, StageFingerprint>,
  recorded: Partial<Record<OutputStage, StageFingerprint | null>>,
  hasOutputs: Partial<Record<OutputStage, boolean>>,
): StageDecision[] {
  const recomputed = new Set<string>();
  return OUTPUT_STAGES.map((stage): StageDecision => {
    const now = current[stage];
    const before = recorded[stage] ?? null;
    if (!hasOutputs[stage]) return { stage, action: "new" };
    if (before?.fingerprint === now.fingerprint) return { stage, action: "keep" };
    recomputed.add(stage);
    return {
      stage,
      action: "recompute",
      because: before ? reasons(now, before, recomputed) : ["no fingerprint recorded for its outputs"],
    };
  });
}
