/**
 * Canonical records that flow between stages (DESIGN.md "Contracts").
 * Every stage reads and writes these through zod, so a shard that breaks the contract
 * is caught at the boundary and becomes rejects, not a crash three stages later.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { Domain } from "../config/schema.ts";

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "a lower-case hex sha256");

export const ImageRef = z.strictObject({
  sha256: Sha256.describe("sha256 of the image bytes; also its storage key."),
  mediaType: z.enum(["image/png", "image/jpeg", "image/webp", "image/gif"]),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  bytes: z.number().int().positive().describe("Size of the image in bytes."),
  dhash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable()
    .describe("256-bit difference hash for near-duplicate checks; null for types not decoded (WebP, GIF)."),
});
export type ImageRef = z.infer<typeof ImageRef>;

export const AnswerType = z.enum(["multiple_choice", "numeric", "expression", "text", "boolean"]);
export type AnswerType = z.infer<typeof AnswerType>;

export const Question = z.strictObject({
  id: Sha256.describe("questionId(): content hash of normalized text and image bytes."),
  source: z.string().min(1),
  sourceRecordId: z.string().optional(),
  domain: Domain,
  question: z.string().min(1),
  images: z.array(ImageRef),
  /** The gold answer as the verifier reads it (core/verify/gold.ts): a solution text's box, several values joined. */
  answer: z.string().min(1),
  /** How the gold was found in the source's answer field (extractGold's `via`). */
  answerFoundBy: z
    .enum(["plain", "boxed", "boxes", "math_segment", "math_segments", "final_answer", "chain_last_side"])
    .optional(),
  /** The answer field as the source gave it, when the gold was read out of it (a solution text, boxes). */
  answerAsGiven: z.string().optional(),
  answerType: AnswerType,
  choices: z.array(z.string()).optional(),
  /** A pass rate the source carries (e.g. ViRL39K's PassRate_32BTrained), in [0, 1]. */
  sourcePassRate: z.number().min(0).max(1).optional(),
  /** Where the record was read: the source file and line (rejects name it). */
  origin: z.string().optional(),
});
export type Question = z.infer<typeof Question>;

const ContentPart = z.union([
  z.strictObject({ type: z.literal("text"), text: z.string() }),
  z.strictObject({ type: z.literal("image"), sha256: Sha256 }),
]);

export const ChatMessage = z.strictObject({
  role: z.enum(["system", "user", "assistant"]),
  content: z.union([z.string(), z.array(ContentPart)]),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

export const Usage = z.strictObject({
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
});

export const Trace = z.strictObject({
  questionId: Sha256,
  sampleIndex: z.number().int().min(0),
  model: z.string().min(1),
  /** The request as sent; images by content hash, never inline bytes. */
  messages: z.array(ChatMessage),
  response: z.string(),
  finishReason: z.enum(["stop", "length", "content_filter", "tool_calls", "error", "unknown"]),
  usage: Usage,
});
export type Trace = z.infer<typeof Trace>;

export const ReasonCode = z.string().regex(/^[a-z][a-z0-9_]*$/, "a snake_case reason code");

export const Verdict = z.strictObject({
  questionId: Sha256,
  sampleIndex: z.number().int().min(0),
  correct: z.boolean(),
  /** True when rules could not decide and a judge should (reason `undecided`). */
  undecided: z.boolean().optional(),
  extracted: z.string().nullable(),
  reason: ReasonCode,
  format: z.number().min(0).max(1),
  judged: z.strictObject({ model: z.string(), verdict: z.boolean(), reason: z.string() }).optional(),
});
export type Verdict = z.infer<typeof Verdict>;

/** A record a stage dropped, with the reason; rejects never vanish (STYLE.md). */
export const Reject = z.strictObject({
  stage: z.string(),
  reason: ReasonCode,
  detail: z.string().optional(),
  /** Where the record came from: shard key and 1-based line, or a source record id. */
  origin: z.string().optional(),
  questionId: z.string().optional(),
  /** For dedup rejects: the kept question this one duplicates. */
  duplicateOf: z.string().optional(),
  /** For dedup rejects: where the kept question's record is (`<shard key>:<line>`; it names its source). */
  duplicateAt: z.string().optional(),
  record: z.unknown().optional(),
});
export type Reject = z.infer<typeof Reject>;

/** Boilerplate the recipe strips from source questions (RECIPE.md "normalize"). */
const BOILERPLATE: readonly RegExp[] = [
  /<image>/gi,
  /answer the question using a single word or phrase\.?/gi,
  /context:\s*n\/a/gi,
  /please answer the question and provide the correct option letter, e\.g\., a, b, c, d, at the end\.?/gi,
  /please answer the question and provide the final answer at the end\.?/gi,
];

/** Normalizes question text for display and hashing: boilerplate out, NFKC, whitespace collapsed. */
export function normalizeQuestionText(text: string): string {
  let out = text.normalize("NFKC");
  for (const re of BOILERPLATE) out = out.replace(re, " ");
  return out.replace(/\s+/g, " ").trim();
}

/**
 * The question id: sha256 over the normalized text and the sha256 of each image in order.
 * The same question from two sources gets one id; the same text over another image does not.
 */
export function questionId(text: string, imageSha256s: readonly string[]): string {
  const h = createHash("sha256");
  h.update("q1\0");
  h.update(normalizeQuestionText(text));
  for (const img of imageSha256s) h.update(`\0img:${img}`);
  return h.digest("hex");
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The question as asked: its text, then one `A. option` line per choice. */
export function questionWithOptions(q: Pick<Question, "question" | "choices">): string {
  return q.choices?.length
    ? `${q.question}\n${q.choices.map((c, i) => `${"ABCDEFGH"[i]}. ${c}`).join("\n")}`
    : q.question;
}

/** The user turn: images (by content hash) first, then the question and its options. */
export function userContent(q: Question): ChatMessage["content"] {
  return [
    ...q.images.map((i) => ({ type: "image" as const, sha256: i.sha256 })),
    { type: "text" as const, text: questionWithOptions(q) },
  ];
}
