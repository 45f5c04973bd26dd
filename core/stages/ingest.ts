/**
 * ingest-source: one shard of one source into canonical Questions (and, for `traces` sources,
 * Traces). Every row becomes a question or a reject with a reason; images are checked, hashed and
 * stored once by content hash.
 */
import type { Source } from "../config/schema.ts";
import { InputContractError } from "../errors.ts";
import { checkImage } from "../images/index.ts";
import {
  type AnswerType,
  type ImageRef,
  normalizeQuestionText,
  type Question,
  questionId,
  type Trace,
  userContent,
} from "../records/index.ts";
import type { SourceRow } from "../shards/jsonl.ts";
import { extractGold } from "../verify/gold.ts";
import { missingColumns, PRESET_COLUMNS, PRESETS } from "./presets.ts";
import type { ShardRun } from "./stage.ts";

export type { SourceRow };

export interface ImageIo {
  /** Bytes of an image named by a source row (relative path, s3:// or https:// URL, data: URL); null if missing. */
  load(ref: string): Promise<Uint8Array | null>;
  /** Stores an image by content hash (once). */
  save(ref: ImageRef, bytes: Uint8Array): Promise<void>;
}

const ANSWER_TAG = /<answer>([\s\S]*?)<\/answer>/i;
const LETTER = /^\(?([A-H])\)?\.?$/;

/** The gold answer of a source row: its `<answer>` tag when there is one (RECIPE.md "normalize"). */
export function goldAnswer(raw: string): string {
  const m = ANSWER_TAG.exec(raw);
  return (m ? m[1]! : raw).trim();
}

export function inferAnswerType(answer: string, choices: readonly string[] | undefined): AnswerType {
  if (choices && choices.length > 0 && LETTER.test(answer)) return "multiple_choice";
  if (/^(?:yes|no|true|false)$/i.test(answer)) return "boolean";
  if (/^[-+]?\d[\d,]*(?:\.\d+)?%?$/.test(answer)) return "numeric";
  if (/[\\^_=<>()[\]{}]|\d/.test(answer) && !/\s[A-Za-z]{3,}\s/.test(answer)) return "expression";
  return "text";
}

function text(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  return null;
}

/** A text field of a record: absent, text, or something else (a number, a list: not coerced). */
function field(r: Record<string, unknown>, column: string): { text: string | null; wrongType?: string } {
  const v = r[column];
  if (v === undefined || v === null) return { text: null };
  if (typeof v === "string") return { text: v };
  return { text: null, wrongType: Array.isArray(v) ? "a list" : `a ${typeof v}` };
}

// C0 controls other than tab, line feed and carriage return, DEL, and C1 controls: finding them is
// this pattern's purpose.
// biome-ignore lint/suspicious/noControlCharactersInRegex: it detects control characters
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a text cannot be used as it is (a control character, a lone surrogate), or null. */
export function textProblem(
  value: string,
): { reason: "control_characters" | "invalid_unicode"; detail: string } | null {
  const c = CONTROL.exec(value);
  if (c) {
    const code = `U+${c[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
    return { reason: "control_characters", detail: `${code} at character ${c.index}` };
  }
  const s = LONE_SURROGATE.exec(value);
  if (s) {
    const code = `U+${s[0].charCodeAt(0).toString(16).toUpperCase()}`;
    return { reason: "invalid_unicode", detail: `lone surrogate ${code} at character ${s.index}` };
  }
  return null;
}

/** `<image>` placeholders in a question (LLaVA / LLaMA-Factory style). */
const PLACEHOLDER = /<image>/gi;

/** Columns that hold images in the public data sets, when the source maps another one. */
const IMAGE_LIKE = [
  "image",
  "images",
  "image_path",
  "image_paths",
  "img",
  "decoded_image",
  "picture",
  "figure",
];

/** Image column values: a list or one of: bytes, {bytes}, {path}, a path or URL string. */
function imageEntries(v: unknown): (Uint8Array | string)[] | "invalid" {
  if (v === null || v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  const out: (Uint8Array | string)[] = [];
  for (const item of list) {
    if (item instanceof Uint8Array) out.push(item);
    else if (typeof item === "string") out.push(item);
    else if (item && typeof item === "object") {
      const o = item as { bytes?: unknown; path?: unknown; url?: unknown };
      if (o.bytes instanceof Uint8Array && o.bytes.length > 0) out.push(o.bytes);
      else if (typeof o.bytes === "string" && o.bytes.length > 0) out.push(`data:;base64,${o.bytes}`);
      else if (typeof o.path === "string" && o.path) out.push(o.path);
      else if (typeof o.url === "string" && o.url) out.push(o.url);
      else return "invalid";
    } else return "invalid";
  }
  return out;
}

/**
 * The image paths a source row refers to (relative to its table, as ingest reads them), after the
 * source's preset reads it: what a local upload must carry besides the table. URLs and embedded
 * bytes are left out; a row a preset rejects refers to nothing.
 */
export function rowImagePaths(source: Source, raw: unknown): string[] {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return [];
  const preset = source.preset ? PRESETS[source.preset]! : null;
  let r = raw as Record<string, unknown>;
  if (preset) {
    if (missingColumns(preset, r).length > 0) return [];
    const read = preset.read(r);
    if ("reject" in read) return [];
    r = read as Record<string, unknown>;
  }
  const column = preset ? PRESET_COLUMNS.images : source.columns.images;
  const entries = imageEntries(r[column]);
  if (entries === "invalid") return [];
  return entries.filter(
    (e): e is string => typeof e === "string" && !/^[a-z][a-z0-9+.-]*:/i.test(e) && e !== "",
  );
}

/**
 * The question, gold answer and options of a source row as ingest reads them (after the preset),
 * or null when ingest would reject it for a missing one: what the bundled local teachers need to
 * know about a user's own data before the run.
 */
export function rowQuestion(
  source: Source,
  raw: unknown,
): { question: string; answer: string; choices?: string[] } | null {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return null;
  const preset = source.preset ? PRESETS[source.preset]! : null;
  let r = raw as Record<string, unknown>;
  if (preset) {
    if (missingColumns(preset, r).length > 0) return null;
    const read = preset.read(r);
    if ("reject" in read) return null;
    r = read as Record<string, unknown>;
  }
  const cols = preset ? PRESET_COLUMNS : source.columns;
  const q = field(r, cols.question).text;
  const a = field(r, cols.answer).text;
  if (!q || !a) return null;
  const question = normalizeQuestionText(q);
  const answer = goldAnswer(a);
  if (!question || !answer) return null;
  const choices = choicesOf(r[cols.choices]);
  return { question, answer, ...(Array.isArray(choices) ? { choices } : {}) };
}

function choicesOf(v: unknown): string[] | undefined | "invalid" {
  if (v === null || v === undefined) return undefined;
  if (!Array.isArray(v)) return "invalid";
  const out = v.map(text);
  if (out.some((c) => c === null)) return "invalid";
  return out.length > 0 ? (out as string[]) : undefined;
}

export interface IngestOptions {
  source: Source;
  systemPrompt: string;
  /** Longest question accepted (`ingest.maxQuestionChars`). @default 16,000 */
  maxQuestionChars?: number;
  /** Rows after this many questions are skipped (source `maxSamples`, counted across the source). */
  remaining?: number;
}

/** Ingests rows into `run`; returns how many questions were emitted. */
export async function ingestRows(
  rows: AsyncIterable<SourceRow>,
  options: IngestOptions,
  images: ImageIo,
  run: ShardRun,
): Promise<number> {
  const { source } = options;
  const preset = source.preset ? PRESETS[source.preset]! : null;
  // A preset hands over canonical columns; otherwise the source's own mapping applies.
  const cols: Source["columns"] = preset
    ? { ...PRESET_COLUMNS, ...(preset.passRate ? { passRate: "passRate" } : {}) }
    : source.columns;
  let firstRecord = true;
  const maxQuestionChars = options.maxQuestionChars ?? 16_000;
  // Rows often share images by path: check and store each referenced image once per shard.
  const checkedRefs = new Map<string, ReturnType<typeof checkImage> | null>();
  let emitted = 0;
  // Trace sample indexes stay unique across shards of a source: shard * 1e6 + ordinal in the shard.
  let traceIndex = run.shard * 1_000_000;
  // Opened up front: a traces source's shard exists even when every record is rejected (verify reads it).
  const traceShard = source.kind === "traces" ? run.side("traces") : null;
  for await (const row of rows) {
    run.seen();
    if (options.remaining !== undefined && emitted >= options.remaining) {
      await run.reject({ reason: "over_sample_cap", origin: row.origin });
      continue;
    }
    if (!row.ok) {
      await run.reject({ reason: "invalid_json", origin: row.origin, detail: row.error });
      continue;
    }
    const raw = row.value as Record<string, unknown>;
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
      await run.reject({ reason: "invalid_record", origin: row.origin, detail: "not an object" });
      continue;
    }
    let r = raw;
    if (preset) {
      // The schema a preset expects is checked once, on the first record: a source whose columns
      // differ (another release, a renamed column) fails naming the column, never a silent default.
      if (firstRecord) {
        const missing = missingColumns(preset, raw);
        if (missing.length > 0)
          throw new InputContractError(
            `source ${source.name}, preset ${source.preset}: column "${missing[0]}" not found (columns: ${Object.keys(raw).join(", ")})`,
          );
      }
      firstRecord = false;
      const read = preset.read(raw);
      if ("reject" in read) {
        await run.reject({ reason: read.reject, origin: row.origin, detail: read.detail });
        continue;
      }
      r = read as Record<string, unknown>;
    }
    // Text fields are text: a number or a list where a question, answer or response belongs is a
    // malformed record, not something to coerce.
    const texts = {
      [cols.question]: field(r, cols.question),
      [cols.answer]: field(r, cols.answer),
      ...(source.kind === "traces" ? { [cols.response]: field(r, cols.response) } : {}),
    };
    const wrong = Object.entries(texts).find(([, f]) => f.wrongType !== undefined);
    if (wrong) {
      await run.reject({
        reason: "invalid_record",
        origin: row.origin,
        detail: `column "${wrong[0]}" holds ${wrong[1].wrongType}, not text`,
      });
      continue;
    }
    const rawQuestion = texts[cols.question]!.text;
    const question = rawQuestion === null ? "" : normalizeQuestionText(rawQuestion);
    if (question === "") {
      await run.reject({ reason: "missing_question", origin: row.origin, record: r });
      continue;
    }
    if (rawQuestion!.length > maxQuestionChars) {
      await run.reject({
        reason: "question_too_long",
        origin: row.origin,
        detail: `${rawQuestion!.length} characters, over ingest.maxQuestionChars ${maxQuestionChars}`,
      });
      continue;
    }
    const rawAnswer = texts[cols.answer]!.text;
    const given = rawAnswer === null ? "" : goldAnswer(rawAnswer);
    if (given === "") {
      await run.reject({ reason: "missing_answer", origin: row.origin, record: r });
      continue;
    }
    // The gold as the verifier will read it; a gold it cannot read costs every trace of the question.
    const gold = extractGold(given);
    if (!gold.ok) {
      await run.reject({
        reason: "gold_unreadable",
        origin: row.origin,
        detail: `${gold.reason}: ${gold.detail}`,
      });
      continue;
    }
    const answer = gold.answer;
    const choices = choicesOf(r[cols.choices]);
    if (choices === "invalid") {
      await run.reject({ reason: "invalid_choices", origin: row.origin, record: r });
      continue;
    }
    let response: string | null = null;
    if (source.kind === "traces") {
      response = texts[cols.response]!.text;
      if (!response) {
        await run.reject({ reason: "missing_response", origin: row.origin });
        continue;
      }
    }
    const bad = (
      [
        [cols.question, rawQuestion!],
        [cols.answer, rawAnswer!],
        ...(response !== null ? [[cols.response, response] as const] : []),
        ...(choices ?? []).map((c, k) => [`${cols.choices}[${k}]`, c] as const),
      ] as const
    )
      .map(([column, value]) => ({ column, problem: textProblem(value) }))
      .find((x) => x.problem !== null);
    if (bad?.problem) {
      await run.reject({
        reason: bad.problem.reason,
        origin: row.origin,
        detail: `column "${bad.column}": ${bad.problem.detail}`,
      });
      continue;
    }
    // Checked before any image is loaded and stored: a record rejected here costs no image I/O.
    let sourcePassRate: number | undefined;
    if (cols.passRate) {
      const v = r[cols.passRate];
      const rate =
        typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : Number.NaN;
      if (v === undefined || v === null) {
        await run.reject({
          reason: "missing_pass_rate",
          origin: row.origin,
          detail: `column "${cols.passRate}" is empty`,
        });
        continue;
      }
      if (!Number.isFinite(rate) || rate < 0 || rate > 1) {
        await run.reject({
          reason: "invalid_pass_rate",
          origin: row.origin,
          detail: `column "${cols.passRate}" holds ${JSON.stringify(v)}, not a number from 0 to 1`,
        });
        continue;
      }
      sourcePassRate = rate;
    }
    const entries = imageEntries(r[cols.images]);
    if (entries === "invalid") {
      await run.reject({ reason: "invalid_image_field", origin: row.origin });
      continue;
    }
    // No silent image loss: a question that refers to images must come with them, one per
    // `<image>` placeholder; images in a column the source does not map are not dropped quietly.
    const placeholders = rawQuestion!.match(PLACEHOLDER)?.length ?? 0;
    if (entries.length === 0) {
      const unmapped = IMAGE_LIKE.find(
        (c) =>
          c !== cols.images &&
          r[c] !== undefined &&
          r[c] !== null &&
          !(Array.isArray(r[c]) && r[c].length === 0),
      );
      if (placeholders > 0 || unmapped) {
        await run.reject({
          reason: "missing_image",
          origin: row.origin,
          detail: unmapped
            ? `column "${unmapped}" looks like images, but the source reads images from "${cols.images}" (set columns.images)`
            : `the question has ${placeholders} <image> placeholder(s) and column "${cols.images}" has no image`,
        });
        continue;
      }
    } else if (placeholders > 0 && placeholders !== entries.length) {
      await run.reject({
        reason: "image_count_mismatch",
        origin: row.origin,
        detail: `${placeholders} <image> placeholder(s), ${entries.length} image(s)`,
      });
      continue;
    }
    const refs: ImageRef[] = [];
    let imageProblem: string | null = null;
    let imageAt: string | null = null;
    for (const [n, entry] of entries.entries()) {
      // What the reject names: the path as the source gave it, or the embedded image's position.
      imageAt = typeof entry === "string" ? entry : `embedded image ${n + 1} of ${entries.length}`;
      let checked = typeof entry === "string" ? checkedRefs.get(entry) : undefined;
      if (checked === undefined) {
        const bytes = typeof entry === "string" ? await images.load(entry) : entry;
        checked = bytes ? checkImage(bytes) : null;
        if (bytes && checked?.ok) await images.save(checked.ref, bytes);
        if (typeof entry === "string" && checkedRefs.size < 10_000) checkedRefs.set(entry, checked);
      }
      if (!checked) {
        imageProblem = "image_not_found";
        break;
      }
      if (!checked.ok) {
        imageProblem = checked.reason;
        break;
      }
      refs.push(checked.ref);
    }
    if (imageProblem) {
      await run.reject({ reason: imageProblem, origin: row.origin, detail: imageAt ?? undefined });
      continue;
    }
    const q: Question = {
      id: questionId(
        question,
        refs.map((i) => i.sha256),
      ),
      source: source.name,
      domain: source.domain,
      question,
      images: refs,
      answer,
      answerFoundBy: gold.via,
      answerType: inferAnswerType(answer, choices),
      origin: row.origin,
    };
    if (answer !== given) q.answerAsGiven = given;
    if (sourcePassRate !== undefined) q.sourcePassRate = sourcePassRate;
    const sourceId = cols.id ? text(r[cols.id]) : null;
    if (sourceId) q.sourceRecordId = sourceId;
    if (choices) q.choices = choices;
    await run.emit(q);
    emitted += 1;
    if (response !== null && traceShard) {
      const trace: Trace = {
        questionId: q.id,
        sampleIndex: traceIndex++,
        model: `source:${source.name}`,
        messages: [
          { role: "system", content: options.systemPrompt },
          { role: "user", content: userContent(q) },
        ],
        response,
        finishReason: "stop",
        usage: { promptTokens: 0, completionTokens: 0 },
      };
      await traceShard.write(trace);
    }
  }
  run.count("questions", emitted);
  return emitted;
}

export { userContent };
