/**
 * The run.json schema. Defaults are the published OpenMMReasoner numbers (shared/RECIPE.md);
 * every one of them stays configurable. Every object is strict: an unknown key is an error,
 * so a typo can never silently fall back to a default.
 *
 * Descriptions on each field are the source of docs/run-config.md (`npm run docs`).
 */
import { z } from "zod";
import { EVAL_TASK_NAMES, RECIPE_EVAL_TASKS } from "../eval/tasks.ts";
import { EVAL_MODELS } from "../layout/index.ts";
import { type Image, unloadable } from "../models/architectures.ts";
import { PRESET_NAMES, PRESETS } from "../stages/presets.ts";

/** The recipe's domains (RECIPE.md "final mix"); a source belongs to exactly one. */

/** Refuses a model the pinned image cannot load (its architecture is not in that image's transformers and vLLM). */
function loadableBy(ctx: z.RefinementCtx, path: string[], model: string, image: Image): void {
  const problem = unloadable(model, image);
  if (problem) ctx.addIssue({ code: "custom", path, message: problem, input: model });
}

export const DOMAINS = [
  "general_vqa",
  "chart",
  "geometry",
  "image_math",
  "text_math",
  "multiple_choice",
  "puzzle",
  "science",
] as const;
export const Domain = z.enum(DOMAINS).describe("One of the recipe's domains.");
export type Domain = z.infer<typeof Domain>;

/** Step Functions execution names: 1-80 chars of letters, digits, '-' and '_'. The run id is one. */
export const RunId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/,
    "1-80 letters, digits, '-' or '_', starting with a letter or digit",
  )
  .describe(
    "Run id: names the S3 prefix `runs/<runId>/` and the Step Functions execution. 1-80 letters, digits, `-`, `_`.",
  );

const probability = z.number().min(0).max(1);
const positiveInt = z.number().int().positive();

const ColumnMapping = z
  .strictObject({
    question: z.string().default("question").describe("Column holding the question text."),
    answer: z.string().default("answer").describe("Column holding the gold answer."),
    images: z
      .string()
      .default("images")
      .describe("Column holding images: a list of bytes, `{bytes}` / `{path}` objects, paths or URLs."),
    choices: z.string().default("choices").describe("Column holding multiple-choice options (optional)."),
    response: z
      .string()
      .default("response")
      .describe("Column holding an existing response (sources of kind `traces` only)."),
    id: z.string().optional().describe("Column holding the source's own record id, kept for lineage."),
    passRate: z
      .string()
      .optional()
      .describe(
        "Column holding a pass rate the source already measured, in [0, 1] (ViRL39K's `PassRate_32BTrained`, the RL release's `avg_reward`). With `rl.passRateFrom: \"source\"`, the source's questions skip the difficulty rollouts.",
      ),
  })
  .describe("Maps the source's columns onto the canonical Question fields.");

export const Source = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]*$/, "lower-case letters, digits, '.', '_' or '-'")
      .describe("Short name of the source; used in record lineage, reports and data cards."),
    uri: z
      .string()
      .regex(/^(s3:\/\/|file:\/\/|\.{0,2}\/|[A-Za-z0-9_])/, "an s3:// URI, file:// URI or relative path")
      .describe(
        "Where the source lives: `s3://bucket/prefix/` (all shards below it) or a path relative to run.json for local runs.",
      ),
    format: z
      .enum(["jsonl", "parquet"])
      .optional()
      .describe("File format of the source shards. A `preset` implies it; required otherwise."),
    kind: z
      .enum(["questions", "traces"])
      .default("questions")
      .describe(
        "`questions` are distilled by the teacher; `traces` already carry responses and are only verified and filtered.",
      ),
    preset: z
      .enum(PRESET_NAMES)
      .optional()
      .describe(
        "A reader for a known public data set in its real schema (see Source presets below); it replaces `columns`.",
      ),
    domain: Domain,
    license: z.string().min(1).describe("License of the source, copied into the data card."),
    maxSamples: positiveInt
      .optional()
      .describe(
        "Keep at most this many questions from the source: the first ones, in file order, that survive dedup and decontamination.",
      ),
    columns: ColumnMapping.prefault({}),
  })
  .transform((source, ctx) => {
    // A preset knows its data set's format; a source without one must say it.
    const format = source.format ?? (source.preset ? PRESETS[source.preset]!.format : undefined);
    if (format) return { ...source, format };
    ctx.addIssue({
      code: "custom",
      path: ["format"],
      message: 'required: "jsonl" or "parquet" (only a preset implies it)',
      params: { expected: '"jsonl" | "parquet"' },
      input: undefined,
    });
    return z.NEVER;
  })
  .describe("One input data set.");
export type Source = z.infer<typeof Source>;

export const DEFAULT_SYSTEM_PROMPT =
  "You are a helpful assistant. When answering, first think about the reasoning process step by step " +
  "inside <think> </think> tags, then give the final answer inside <answer> </answer> tags, and nothing else. " +
  "For example: <think> reasoning here </think><answer> final answer here </answer>.";

const Endpoint = z
  .strictObject({
    url: z.url().describe("Base URL of an OpenAI-compatible API, e.g. `https://host/v1`."),
    apiKeySecretArn: z
      .string()
      .optional()
      .describe(
        "Refused: an API key's secret is a deploy setting (`-c teacherApiKeySecretArn=<arn>` or `-c judgeApiKeySecretArn=<arn>`), so that only the GPU jobs or the verify step are granted that one secret. run.json names no secrets.",
      ),
  })
  .describe("A hosted OpenAI-compatible endpoint.");

/** run.json never names a secret: the key's secret is given at deploy time, where its grant is made. */
function refuseSecret(
  ctx: z.RefinementCtx,
  path: (string | number)[],
  context: string,
  value: unknown,
): void {
  ctx.addIssue({
    code: "custom",
    path,
    message: `set the API key's secret at deploy time: npx cdk deploy -c ${context}=<secret ARN> (the stack grants exactly that secret); remove it from run.json`,
    params: { expected: "absent: run.json names no secrets" },
    input: value,
  });
}

/** An S3 folder: `s3://bucket/prefix/`. */
const S3Folder = z
  .string()
  .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.+/, "an s3://bucket/prefix/ folder");

export const Teacher = z
  .strictObject({
    model: z.string().min(1).default("Qwen/Qwen3-VL-235B-A22B-Instruct").describe("Teacher model id."),
    serving: z
      .enum(["batch", "endpoint"])
      .default("batch")
      .describe("`batch`: vLLM inside the AWS Batch GPU job; `endpoint`: call `teacher.endpoint`."),
    endpoint: Endpoint.optional(),
    samplesPerQuestion: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(8)
      .describe(
        "Rejection sampling: answers drawn per question (the recipe studied 1, 2, 4, 8 and chose 8).",
      ),
    temperature: z.number().min(0).max(2).default(1.0).describe("Sampling temperature."),
    topP: z.number().gt(0).max(1).default(1.0).describe("Nucleus sampling top_p."),
    maxTokens: positiveInt.max(262144).default(16384).describe("Max new tokens per response."),
    systemPrompt: z
      .string()
      .min(1)
      .default(DEFAULT_SYSTEM_PROMPT)
      .describe("System prompt sent with each question."),
    requestConcurrency: positiveInt.max(4096).default(64).describe("Requests in flight per generate job."),
    maxAttempts: positiveInt.max(10).default(3).describe("Attempts per request before it counts as failed."),
    requestTimeoutSeconds: positiveInt.default(1800).describe("Timeout of one request."),
    tensorParallelSize: positiveInt
      .optional()
      .describe(
        "vLLM tensor parallelism. Must divide the job's GPU count and the model's attention heads. Defaults to the smallest such split that holds the weights, with data parallelism over the other GPUs.",
      ),
    maxModelLen: positiveInt
      .optional()
      .describe(
        "vLLM context length. Defaults to the response budget (`maxTokens`) plus 16,384 prompt tokens, not the model's maximum (vLLM refuses to start when one full-length sequence does not fit).",
      ),
    maxImagesPerPrompt: positiveInt.default(8).describe("vLLM `--limit-mm-per-prompt` image limit."),
    weightsUri: S3Folder.optional().describe(
      "The teacher's weights staged in S3 (a Hugging Face model folder, e.g. `s3://<BucketName>/models/Qwen3-VL-235B-A22B-Instruct/`): each generate job copies them to its host through the VPC's S3 gateway endpoint instead of downloading ~470 GB from the Hub through the NAT gateway. Stage them once: `huggingface-cli download <model> --local-dir m && aws s3 sync m s3://<BucketName>/models/<name>/`.",
    ),
  })
  .superRefine((t, ctx) => {
    if (t.endpoint?.apiKeySecretArn !== undefined)
      refuseSecret(
        ctx,
        ["endpoint", "apiKeySecretArn"],
        "teacherApiKeySecretArn",
        t.endpoint.apiKeySecretArn,
      );
    if (t.serving === "endpoint" && !t.endpoint) {
      ctx.addIssue({
        code: "custom",
        path: ["endpoint"],
        message: "required when serving is 'endpoint'",
        input: undefined,
      });
    }
    // Served by the generate image's vLLM (an endpoint serves whatever it serves).
    if (t.serving === "batch") loadableBy(ctx, ["model"], t.model, "generate");
  })
  .describe("The teacher that writes the SFT traces.");

export const Judge = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Send answers the rules cannot decide to the LLM judge."),
    model: z.string().min(1).default("Qwen/Qwen3-235B-A22B-Instruct-2507").describe("Judge model id."),
    endpoint: Endpoint.optional().describe(
      "Judge endpoint; when absent the judge runs in the generate Batch job.",
    ),
    maxTokens: positiveInt.default(16).describe("Max tokens of the judge's 1/0 reply."),
    maxPredictionChars: positiveInt
      .max(2000)
      .default(200)
      .describe(
        "Longest prediction sent to the judge. A longer one is never sent (it could carry instructions to the judge): it stays wrong with reason `judge_prediction_too_long`.",
      ),
  })
  .superRefine((j, ctx) => {
    if (j.endpoint?.apiKeySecretArn !== undefined)
      refuseSecret(ctx, ["endpoint", "apiKeySecretArn"], "judgeApiKeySecretArn", j.endpoint.apiKeySecretArn);
  })
  .describe("LLM judge, the last resort of answer verification.");

export const Verification = z
  .strictObject({
    extractionPreset: z
      .enum(["strict", "recipe"])
      .default("strict")
      .describe(
        "`strict`: answer only after the think block, no last-number fallback. `recipe`: the published rule, with its fallback and format scores.",
      ),
    numericRelativeTolerance: z
      .number()
      .min(0)
      .max(0.1)
      .default(1e-4)
      .describe("Relative tolerance when comparing decimals."),
    itemStepBudget: positiveInt
      .min(1000)
      .max(10_000_000)
      .default(200_000)
      .describe(
        "Work one verdict may do, in counted steps (expression nodes evaluated, values compared), never in time: the same trace gets the same verdict on any machine under any load. An item that needs more is `verifier_budget_exceeded`.",
      ),
    hangGuardMs: positiveInt
      .min(1000)
      .max(600_000)
      .default(10_000)
      .describe(
        "Last-resort guard against a verifier hang, far above any normal item. When it fires the verdict is `verifier_timeout` and it is counted and logged as a verifier defect.",
      ),
    judge: Judge.prefault({}),
  })
  .describe("How answers are extracted and checked (one verifier for SFT filter, difficulty and RL reward).");

export const Filters = z
  .strictObject({
    requireFormat: z
      .boolean()
      .default(true)
      .describe("Reject traces without one closed `<think>` block followed by an answer."),
    dropTruncated: z.boolean().default(true).describe("Reject traces whose finish reason is `length`."),
    minResponseChars: z.number().int().min(0).default(1).describe("Reject responses shorter than this."),
    maxResponseChars: positiveInt
      .optional()
      .describe("Reject responses longer than this. Off by default: the recipe found length filtering hurt."),
    repetition: z
      .strictObject({
        enabled: z.boolean().default(true).describe("Reject degenerate, looping responses."),
        ngram: z
          .number()
          .int()
          .min(2)
          .max(64)
          .default(20)
          .describe("Word n-gram size checked for repetition."),
        maxRepeatedFraction: probability
          .default(0.5)
          .describe("Reject when repeated n-grams cover more than this fraction of the response."),
      })
      .prefault({}),
  })
  .describe(
    "Quality filters on traces. The recipe's lesson: over-filtering hurts, so only clear defects are on by default.",
  );

export const Benchmark = z.strictObject({
  name: z.string().min(1).describe("Benchmark name, e.g. `MathVista`."),
  uri: z.string().min(1).describe("JSONL or Parquet of the benchmark's questions."),
  format: z.enum(["jsonl", "parquet"]).default("jsonl"),
  questionColumn: z.string().default("question"),
});

export const Dedup = z
  .strictObject({
    nearDuplicateThreshold: z
      .number()
      .gt(0)
      .max(1)
      .default(0.8)
      .describe(
        "Estimated Jaccard similarity of question shingles at or above which two questions are near-duplicates. (The recipe used embedding cosine >= 0.99; MinHash Jaccard 0.8 is this project's scalable equivalent.)",
      ),
    shingleSize: z
      .number()
      .int()
      .min(1)
      .max(16)
      .default(5)
      .describe("Character or word n-gram size of shingles."),
    minhashPermutations: z
      .number()
      .int()
      .min(16)
      .max(1024)
      .default(128)
      .describe("MinHash signature length."),
    lshBands: positiveInt.default(32).describe("LSH bands (must divide `minhashPermutations`)."),
    imageHashMaxDistance: z
      .number()
      .int()
      .min(0)
      .max(256)
      .default(2)
      .describe(
        "Max Hamming distance between two images' 256-bit perceptual hashes (dHash) for them to count as the same image. A resized or re-encoded copy is within 1-2; two charts of one layout with other values differ by 4 or more.",
      ),
    decontamination: z
      .strictObject({
        benchmarks: z
          .array(Benchmark)
          .default([])
          .describe("Benchmarks whose questions must not leak into training."),
        ngram: z.number().int().min(3).max(50).default(13).describe("Word n-gram size of the overlap test."),
      })
      .prefault({}),
  })
  .superRefine((d, ctx) => {
    if (d.minhashPermutations % d.lshBands !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["lshBands"],
        message: `must divide minhashPermutations (${d.minhashPermutations})`,
        input: d.lshBands,
      });
    }
  })
  .describe("Exact and near-duplicate removal, and benchmark decontamination.");

export const Mixing = z
  .strictObject({
    seed: z.number().int().min(0).default(42).describe("Seed of the reproducible domain sampler."),
    tracesPerQuestion: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(8)
      .describe("Max verified traces kept per question (answer diversity)."),
    traceNearDuplicateThreshold: probability
      .default(0.9)
      .describe(
        "Two traces of one question at or above this Jaccard similarity count as copies; one is kept.",
      ),
    ratios: z
      .partialRecord(Domain, probability)
      .optional()
      .describe("Target share of the final SFT set per domain; shares must sum to 1."),
    caps: z.partialRecord(Domain, positiveInt).optional().describe("Max rows per domain."),
    totalRows: positiveInt
      .optional()
      .describe("Target size of the SFT set; with `ratios`, rows per domain follow."),
    blankImageForTextOnly: z
      .boolean()
      .default(false)
      .describe(
        "Add a blank placeholder image to text-only rows (works around multimodal loaders that hang).",
      ),
  })
  .superRefine((m, ctx) => {
    if (m.ratios) {
      const sum = Object.values(m.ratios).reduce((a, b) => a + (b ?? 0), 0);
      if (Math.abs(sum - 1) > 1e-6) {
        ctx.addIssue({ code: "custom", path: ["ratios"], message: "shares must sum to 1", input: sum });
      }
    }
  })
  .describe("Per-question trace selection and the domain mix of the SFT set.");

export const Rl = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Build the RL set."),
    policyModel: z
      .string()
      .min(1)
      .default("Qwen/Qwen2.5-VL-7B-Instruct")
      .describe("Model whose rollouts estimate difficulty (the recipe's repository used the base model)."),
    rolloutsPerQuestion: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(8)
      .describe("Rollouts per question for difficulty estimation."),
    temperature: z.number().min(0).max(2).default(1.0),
    topP: z.number().gt(0).max(1).default(0.9),
    maxTokens: positiveInt.default(8192),
    policyWeightsUri: S3Folder.optional().describe(
      "The policy's weights staged in S3 for the rollout jobs (see `teacher.weightsUri`).",
    ),
    passRateBand: z
      .strictObject({
        min: probability
          .default(0)
          .describe("Drop questions whose pass rate is at or below this (never solved)."),
        max: probability
          .default(1)
          .describe("Drop questions whose pass rate is at or above this (always solved)."),
        enabled: z
          .boolean()
          .default(true)
          .describe("This project's addition; the recipe publishes no threshold."),
      })
      .prefault({})
      .refine((b) => b.min < b.max, { message: "min must be below max", path: ["max"] }),
    removeSftOverlap: z.boolean().default(true).describe("Drop RL questions already in the SFT set."),
    passRateFrom: z
      .enum(["rollouts", "source"])
      .default("rollouts")
      .describe(
        "`rollouts`: measure every RL question's pass rate with policy rollouts (GPU). `source`: RL sources that map `columns.passRate` use that pass rate and are not rolled out (a run whose RL sources all carry one needs no GPU for difficulty); other sources are rolled out.",
      ),
  })
  // Its rollouts are served by the generate image's vLLM.
  .superRefine((r, ctx) => loadableBy(ctx, ["policyModel"], r.policyModel, "generate"))
  .describe("The RL set: difficulty estimation and the informative pass-rate band.");

/**
 * The settings of the recipe repository's RL script for each algorithm its paper compares
 * (shared/RECIPE.md; all three use adv_estimator grpo, no KL, 28,696-token responses, temperature
 * 1.0, dynamic batch size and no overlong buffer, which are the other fields' defaults). GRPO and
 * DAPO as published: the repository ships only the GSPO scripts.
 */
export const RL_ALGORITHMS = {
  gspo: { lossMode: "gspo", lossAggMode: "seq-mean-token-mean", clipRatioLow: 3e-4, clipRatioHigh: 4e-4 },
  grpo: { lossMode: "vanilla", lossAggMode: "token-mean", clipRatioLow: 0.2, clipRatioHigh: 0.2 },
  dapo: { lossMode: "vanilla", lossAggMode: "token-mean", clipRatioLow: 0.2, clipRatioHigh: 0.2 },
} as const;

/** The default start model of RL training: the base model, not the SFT cold-start checkpoint. */
export const BASE_START_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct";

/**
 * The SFT cold start (shared/RECIPE.md "Stage 1b"): lmms-engine's fsdp2_trainer on the run's SFT set,
 * with the recipe repository's settings as defaults. Its output, `runs/<id>/models/sft/`, is where RL
 * training starts unless `training.startModel` says otherwise.
 */
export const SftTraining = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe("Train the SFT cold start (lmms-engine) on the run's SFT set after write-sft-dataset."),
    baseModel: z
      .string()
      .min(1)
      .default(BASE_START_MODEL)
      .describe(
        "The model SFT trains (a model id or an s3:// Hugging Face folder); also the evaluated `base`.",
      ),
    learningRate: z.number().positive().max(1e-2).default(5e-5).describe("lmms-engine `learning_rate`."),
    lrScheduler: z
      .enum(["cosine", "constant", "wsd"])
      .default("cosine")
      .describe(
        "lmms-engine `lr_scheduler_type`: the ones its fsdp2_trainer has (each after `warmupRatio` of linear warm-up; `wsd` is warm-up, stable, decay).",
      ),
    warmupRatio: z.number().min(0).max(1).default(0.1).describe("lmms-engine `warmup_ratio`."),
    weightDecay: z.number().min(0).default(0).describe("lmms-engine `weight_decay`."),
    packingLength: positiveInt.default(61440).describe("Tokens per packed sequence (`packing_length`)."),
    perDeviceBatchSize: positiveInt.default(1).describe("`per_device_train_batch_size`."),
    gradientAccumulationSteps: positiveInt.default(1).describe("`gradient_accumulation_steps`."),
    maxSteps: positiveInt.default(4300).describe("lmms-engine `max_steps`."),
    epochs: positiveInt.default(1).describe("lmms-engine `num_train_epochs`."),
    saveSteps: positiveInt
      .default(2000)
      .describe("Checkpoint every N steps (`save_steps`); each goes to S3."),
    saveTotalLimit: positiveInt
      .default(3)
      .describe("Checkpoints kept on the node's disk (`save_total_limit`)."),
    imageMaxPixels: positiveInt.default(4194304).describe("The processor's `image_max_pixels`."),
    gradientCheckpointing: z.boolean().default(true),
    useLiger: z.boolean().default(true).describe("Liger kernels (`use_liger_kernel`)."),
    useRmpad: z.boolean().default(true).describe("Remove padding (`use_rmpad`)."),
    sequenceParallelSize: positiveInt
      .default(1)
      .describe("Ulysses sequence parallelism (`sp_ulysses_degree`)."),
    nodes: positiveInt
      .max(64)
      .default(4)
      .describe(
        "Training nodes (the published run: 4 of 8 GPUs). More than 1 runs as an AWS Batch multi-node parallel job on on-demand capacity.",
      ),
    gpusPerNode: positiveInt.max(8).default(8),
    checkpointSyncMinutes: positiveInt.default(15).describe("How often checkpoints are copied to S3."),
  })
  .describe("SFT cold-start training with lmms-engine, the recipe's stage 1b.");

export const RlTraining = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe("Run verl RL training (`algorithm`, GSPO by default) at the end of the run."),
    algorithm: z
      .enum(["gspo", "grpo", "dapo"])
      .default("gspo")
      .describe(
        "The RL algorithm, with the settings of the recipe repository's script for it: `gspo` (loss mode `gspo`, `seq-mean-token-mean`, clip 3e-4/4e-4), `grpo` and `dapo` (as published: loss mode `vanilla`, `token-mean`, clip 0.2/0.2). It sets `lossMode`, `lossAggMode`, `clipRatioLow` and `clipRatioHigh`; any of them given explicitly wins.",
      ),
    startModel: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Model to train (an s3:// Hugging Face folder or a model id). Default: the run's SFT output `s3://<bucket>/runs/<runId>/models/sft/` when `training.sft.enabled` (the recipe's cold start), else the base model `training.sft.baseModel`, of which `recipe validate` warns. One given here wins.",
      ),
    advEstimator: z
      .literal("grpo")
      .default("grpo")
      .describe("verl `algorithm.adv_estimator` (GSPO uses grpo)."),
    lossMode: z
      .enum(["gspo", "vanilla"])
      .optional()
      .describe("verl `policy_loss.loss_mode`. Default: the `algorithm`'s."),
    lossAggMode: z
      .enum(["seq-mean-token-mean", "token-mean", "seq-mean-token-sum"])
      .optional()
      .describe("verl `actor.loss_agg_mode`. Default: the `algorithm`'s."),
    rolloutsPerPrompt: z
      .number()
      .int()
      .min(2)
      .max(64)
      .default(16)
      .describe("Rollouts per prompt (GSPO x16)."),
    rolloutTemperature: z
      .number()
      .gt(0)
      .max(1.3)
      .default(1.0)
      .describe("Rollout temperature; the recipe saw GSPO collapse at 1.4."),
    rolloutTopP: z.number().gt(0).max(1).default(1.0),
    clipRatioLow: z
      .number()
      .positive()
      .optional()
      .describe("verl `actor.clip_ratio_low`. Default: the `algorithm`'s."),
    clipRatioHigh: z
      .number()
      .positive()
      .optional()
      .describe("verl `actor.clip_ratio_high`. Default: the `algorithm`'s."),
    trainBatchSize: positiveInt.default(128).describe("Prompts per training batch."),
    ppoMiniBatchSize: positiveInt.default(128),
    learningRate: z.number().positive().max(1e-3).default(1e-6),
    warmupSteps: z.number().int().min(0).default(25),
    weightDecay: z.number().min(0).default(0.1),
    gradClip: z.number().positive().default(1.0),
    entropyCoeff: z.number().min(0).default(0),
    useKlLoss: z.boolean().default(false),
    useKlInReward: z.boolean().default(false),
    maxPromptLength: positiveInt.default(4096),
    maxResponseLength: positiveInt.default(28696),
    dynamicBatchSize: z.boolean().default(true),
    epochs: positiveInt
      .default(15)
      .describe(
        "verl `trainer.total_epochs`. Training stops at whichever of epochs and totalSteps comes first: with fewer than totalSteps x trainBatchSize / epochs prompts (12,800 at the defaults) the epochs end it early; `recipe validate` and the data card say which.",
      ),
    totalSteps: positiveInt.default(1500).describe("verl `trainer.total_training_steps`."),
    saveFreq: positiveInt.default(16).describe("Checkpoint every N steps."),
    testFreq: positiveInt
      .default(16)
      .describe("verl `trainer.test_freq`: validate on the held-out prompts every N steps."),
    validationPrompts: positiveInt
      .default(256)
      .describe(
        "Prompts of the RL set held out for validation (a seeded sample, never trained on; at most a tenth of the set, so a small set still trains). verl `data.val_files`.",
      ),
    validationSeed: z.number().int().min(0).default(42).describe("Seed of the held-out sample."),
    validationBatchSize: positiveInt
      .default(64)
      .describe(
        "verl `data.val_batch_size`: held-out prompts decoded per batch (verl's default null sends the whole set at once).",
      ),
    maxCheckpointsToKeep: positiveInt
      .default(2)
      .describe(
        "verl `trainer.max_actor_ckpt_to_keep`: checkpoints (with optimizer state) kept on the node's disk; every one is also in S3.",
      ),
    rolloutTensorParallelSize: positiveInt
      .default(2)
      .describe(
        "verl `rollout.tensor_model_parallel_size` (verl's Qwen2.5-VL example: 2). Must divide gpusPerNode and the policy's attention heads.",
      ),
    rolloutGpuMemoryUtilization: z
      .number()
      .gt(0)
      .max(0.95)
      .default(0.6)
      .describe(
        "verl `rollout.gpu_memory_utilization` (verl's Qwen2.5-VL example: 0.6; verl's default 0.5).",
      ),
    sequenceParallelSize: positiveInt
      .default(1)
      .describe(
        "Ulysses sequence parallelism of the actor and reference (verl `ulysses_sequence_parallel_size`): splits each 32K-token sequence over this many GPUs. Must divide gpusPerNode.",
      ),
    fsdpOffload: z
      .boolean()
      .default(false)
      .describe(
        "Offload the actor's parameters and optimizer state to CPU (verl `fsdp_config.param_offload` and `optimizer_offload`): slower, for a policy that does not fit otherwise. The reference model is always offloaded, as in verl's Qwen2.5-VL example.",
      ),
    nodes: positiveInt
      .max(64)
      .default(1)
      .describe(
        "Training nodes (the published run used 8). More than 1 runs as an AWS Batch multi-node parallel job on on-demand capacity (Batch runs no multi-node job on Spot).",
      ),
    gpusPerNode: positiveInt.max(8).default(8),
    checkpointSyncMinutes: positiveInt.default(15).describe("How often checkpoints are copied to S3."),
  })
  .superRefine((t, ctx) => {
    if (t.enabled && t.startModel !== undefined) loadableBy(ctx, ["startModel"], t.startModel, "train-rl");
    const r = withAlgorithm(t);
    if (r.lossMode === "gspo" && (r.clipRatioLow > 0.05 || r.clipRatioHigh > 0.05)) {
      ctx.addIssue({
        code: "custom",
        path: [r.clipRatioHigh > 0.05 ? "clipRatioHigh" : "clipRatioLow"],
        message: "GSPO clips sequence-level ratios: use values around 1e-4 (the recipe uses 3e-4/4e-4)",
        input: r.clipRatioHigh > 0.05 ? r.clipRatioHigh : r.clipRatioLow,
      });
    }
    for (const [key, size] of [
      ["rolloutTensorParallelSize", t.rolloutTensorParallelSize],
      ["sequenceParallelSize", t.sequenceParallelSize],
    ] as const) {
      if (t.gpusPerNode % size !== 0)
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `must divide gpusPerNode (${t.gpusPerNode})`,
          input: size,
        });
    }
    if (t.ppoMiniBatchSize > t.trainBatchSize) {
      ctx.addIssue({
        code: "custom",
        path: ["ppoMiniBatchSize"],
        message: `must not exceed trainBatchSize (${t.trainBatchSize})`,
        input: t.ppoMiniBatchSize,
      });
    }
  })
  // The resolved config states what the algorithm chose, so validate prints it and fingerprints hash it.
  .transform(withAlgorithm)
  .describe("verl RL training (GSPO by default), the recipe's stage 2 (OpenMMReasoner, arXiv 2511.16334).");

/** RL training's settings, which were flat under `training` before `training.sft` came. */
export const RL_TRAINING_KEYS = Object.keys(RlTraining.in.shape) as (keyof typeof RlTraining.in.shape)[];

/**
 * An old run.json's flat RL field, refused with its new place, never silently ignored; refused by the
 * field itself, so it is listed with every other problem of the config, not only once they are fixed.
 */
const movedToRl = (key: string) =>
  z
    .unknown()
    .optional()
    .superRefine((value, ctx) => {
      if (value === undefined) return;
      ctx.addIssue({
        code: "custom",
        message: `moved: RL training's settings are under training.rl; write training.rl.${key} instead of training.${key}`,
        params: { expected: `absent: moved to training.rl.${key}` },
        input: value,
      });
    })
    .describe(`Refused: moved to \`training.rl.${key}\`.`);

export const Training = z
  .strictObject({
    sft: SftTraining.prefault({}),
    rl: RlTraining.prefault({}),
    ...(Object.fromEntries(RL_TRAINING_KEYS.map((k) => [k, movedToRl(k)])) as Record<
      (typeof RL_TRAINING_KEYS)[number],
      ReturnType<typeof movedToRl>
    >),
  })
  .superRefine((t, ctx) => {
    // Without SFT and a startModel, RL trains the base model: train-rl's image must load it.
    if (t.rl.enabled && t.rl.startModel === undefined && !t.sft.enabled)
      loadableBy(ctx, ["sft", "baseModel"], t.sft.baseModel, "train-rl");
  })
  // The resolved config holds only the two sections: code reading a moved key does not compile.
  .transform(({ sft, rl }) => ({ sft, rl }))
  .describe("Model training: the SFT cold start (`sft`), then RL (`rl`).");

/** The algorithm's settings, under any the config gives explicitly. */
function withAlgorithm<
  T extends {
    algorithm: keyof typeof RL_ALGORITHMS;
    lossMode?: "gspo" | "vanilla" | undefined;
    lossAggMode?: "seq-mean-token-mean" | "token-mean" | "seq-mean-token-sum" | undefined;
    clipRatioLow?: number | undefined;
    clipRatioHigh?: number | undefined;
  },
>(t: T) {
  const preset = RL_ALGORITHMS[t.algorithm];
  return {
    ...t,
    lossMode: t.lossMode ?? preset.lossMode,
    lossAggMode: t.lossAggMode ?? preset.lossAggMode,
    clipRatioLow: t.clipRatioLow ?? preset.clipRatioLow,
    clipRatioHigh: t.clipRatioHigh ?? preset.clipRatioHigh,
  };
}

/** Evaluation of the run's models on the recipe's benchmarks (shared/RECIPE.md "Stage 3"). */
export const Evaluation = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        "Evaluate the models (lmms-eval, served by vLLM, scored by this project's verifier) at the end of the run.",
      ),
    models: z
      .array(z.enum(EVAL_MODELS))
      .min(1)
      .optional()
      .describe(
        "Which models: `base`, `sft`, `rl`. Default: all the run has (the base model and those it trains).",
      ),
    tasks: z
      .array(z.enum(EVAL_TASK_NAMES))
      .min(1)
      .default([...RECIPE_EVAL_TASKS])
      .describe(
        "Benchmarks: this project's lmms-eval task definitions (core/eval/tasks.ts), each answer scored by its verifier. Default: every one defined.",
      ),
    limit: positiveInt.optional().describe("Questions per task (a smoke test); all by default."),
    maxNewTokens: positiveInt.default(49152).describe("Generation limit per answer (the recipe's: 49,152)."),
    batchSize: positiveInt
      .default(256)
      .describe("Requests in flight to the served model (the recipe's: 256)."),
    gpuMemoryUtilization: z.number().gt(0).max(0.95).default(0.7).describe("vLLM `gpu_memory_utilization`."),
  })
  .describe("Evaluation of the base, SFT and RL models on the recipe's benchmarks, the recipe's stage 3.");

/**
 * Settings of the deployed compute environments and job definitions, which a run cannot change:
 * where each is set instead. run.json that names one is refused with that hint (never ignored).
 */
export const DEPLOY_ONLY_BATCH: Record<string, string> = {
  instanceTypes:
    "the GPU queues' instance types are set at deploy time: npx cdk deploy -c largeInstanceTypes=p5.48xlarge -c smallInstanceTypes=g6e.48xlarge (validate-config sends each generate job to the queue that holds its model)",
  maxVcpus: "each compute environment's vCPU limit is set at deploy time: npx cdk deploy -c maxVcpus=<n>",
  gpusPerJob: "the generate job definition's GPUs are set at deploy time: npx cdk deploy -c gpusPerJob=<n>",
  capacity:
    "each deployed queue tries spot first; on-demand takes jobs only once spot is at its maxVcpus (recipe estimate --capacity prices either)",
};

const deployOnly = (key: string) =>
  z.unknown().optional().describe(`Refused (not a run setting): ${DEPLOY_ONLY_BATCH[key]}.`);

export const Batch = z
  .strictObject({
    instanceTypes: deployOnly("instanceTypes"),
    maxVcpus: deployOnly("maxVcpus"),
    capacity: deployOnly("capacity"),
    gpusPerJob: deployOnly("gpusPerJob"),
    questionsPerShard: positiveInt
      .max(100000)
      .default(2000)
      .describe("Questions per shard, i.e. per array child."),
    maxArraySize: z.number().int().min(2).max(10000).default(10000).describe("Max Batch array size."),
    jobTimeoutHours: positiveInt
      .max(336)
      .default(24)
      .describe("Time limit of each attempt of a distill or rollout job (the Batch job's attempt timeout)."),
  })
  .superRefine((b, ctx) => {
    for (const [key, where] of Object.entries(DEPLOY_ONLY_BATCH)) {
      if ((b as Record<string, unknown>)[key] === undefined) continue;
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `not a run setting: ${where}; remove it from run.json`,
        params: { expected: "absent: not a run setting" },
        input: (b as Record<string, unknown>)[key],
      });
    }
  })
  .describe("AWS Batch sizing of the GPU jobs.");

export const Orchestration = z
  .strictObject({
    mapMaxConcurrency: positiveInt.max(10000).default(200).describe("Distributed Map MaxConcurrency."),
    toleratedFailurePercentage: z
      .number()
      .min(0)
      .max(100)
      .default(0)
      .describe(
        "Distributed Map ToleratedFailurePercentage: the share of a fan-out's shards that may fail while the others run to the end. The stage is still not marked done: the run fails naming the shards without a result (runs/<run-id>/<stage>/missing.json), and starting it again computes only those.",
      ),
  })
  .describe("Step Functions fan-out settings.");

export const Ingest = z
  .strictObject({
    maxQuestionChars: positiveInt
      .default(16_000)
      .describe(
        "Longest question accepted, in characters (about 4,000-8,000 tokens): longer ones are rejected as `question_too_long` instead of being sent to the teacher once per sample.",
      ),
  })
  .describe("Checks on each source record before it becomes a question.");

export const SFT_LAYOUTS = ["llama-factory", "lmms-engine"] as const;

export const Output = z
  .strictObject({
    sftLayouts: z
      .array(z.enum(SFT_LAYOUTS))
      .min(1)
      .default(["llama-factory", "lmms-engine"])
      .describe(
        "SFT file layouts written. `llama-factory`: `sft.jsonl.gz` and `sft-*.parquet` (`messages` with `<image>` markers, an `images` list, images embedded in the Parquet). `lmms-engine`: `lmms-engine/sft-*.parquet` in the layout of the recipe's trainer and its SFT-874K release (`id`, `messages` whose content items are `text` / `image_url`, image paths relative to the dataset folder, its `data_folder`).",
      ),
  })
  .describe("Dataset files written.");

export const RunConfig = z
  .strictObject({
    $schema: z.string().optional().describe("Optional JSON Schema reference for editors."),
    runId: RunId,
    description: z.string().optional().describe("Free text, copied into data cards."),
    sources: z
      .strictObject({
        sft: z.array(Source).default([]).describe("SFT sources, in processing (dedup priority) order."),
        rl: z.array(Source).default([]).describe("RL sources, in processing (dedup priority) order."),
      })
      .refine((s) => s.sft.length + s.rl.length > 0, { message: "at least one SFT or RL source is needed" })
      .superRefine((s, ctx) => {
        const seen = new Set<string>();
        for (const [branch, list] of [
          ["sft", s.sft],
          ["rl", s.rl],
        ] as const) {
          list.forEach((src, i) => {
            const key = `${branch}/${src.name}`;
            if (seen.has(key)) {
              ctx.addIssue({
                code: "custom",
                path: [branch, i, "name"],
                message: "source names must be unique",
                input: src.name,
              });
            }
            seen.add(key);
          });
        }
      })
      .describe("Input data sets."),
    ingest: Ingest.prefault({}),
    teacher: Teacher.prefault({}),
    verification: Verification.prefault({}),
    filters: Filters.prefault({}),
    dedup: Dedup.prefault({}),
    mixing: Mixing.prefault({}),
    rl: Rl.prefault({}),
    training: Training.prefault({}),
    evaluation: Evaluation.prefault({}),
    batch: Batch.prefault({}),
    orchestration: Orchestration.prefault({}),
    output: Output.prefault({}),
  })
  .superRefine((c, ctx) => {
    // train-sft trains on the SFT set this run writes: without SFT sources there is none, and RL
    // would wait for a model that never comes.
    if (c.training.sft.enabled && c.sources.sft.length === 0)
      ctx.addIssue({
        code: "custom",
        path: ["training", "sft", "enabled"],
        message:
          "train-sft trains on this run's SFT set, but sources.sft is empty: add SFT sources, or turn it off and give training.rl.startModel",
        input: true,
      });
    // A model named for evaluation that this run never trains would fail the evaluate job at the
    // end of the run: refuse it before anything starts.
    const trains = { base: true, sft: c.training.sft.enabled, rl: c.training.rl.enabled };
    if (c.evaluation.enabled)
      (c.evaluation.models ?? []).forEach((m, i) => {
        if (!trains[m])
          ctx.addIssue({
            code: "custom",
            path: ["evaluation", "models", i],
            message: `this run does not train the ${m} model (training.${m}.enabled is false): leave it out or turn that training on`,
            input: m,
          });
      });
  })
  .describe("A recipe-pipeline run.");

/** What the user writes (defaults optional). */
export type RunConfigInput = z.input<typeof RunConfig>;
/** The resolved config (every default filled in). */
export type RunConfig = z.output<typeof RunConfig>;
