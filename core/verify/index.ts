/**
 * The answer verifier: one implementation for SFT filtering, difficulty estimation and the RL reward.
 * Pure and synchronous; never throws; every verdict carries a snake_case reason.
 *
 *   verify({ response, answer, choices }, options) -> { correct, undecided, extracted, reason, format, score }
 *   reward = 0.9 * accuracy + 0.1 * format   (RECIPE.md)
 */

import {
  Budget,
  BudgetExceeded,
  DEFAULT_HANG_GUARD_MS,
  DEFAULT_STEP_BUDGET,
  HangGuardFired,
} from "./budget.ts";
import { warmUp } from "./expr.ts";
import { type Extraction, extractAnswer, formatScore, LONG_RESPONSE_CHARS, type Preset } from "./extract.ts";
import { chainLastSide, extractGold, type GoldExtraction, type GoldProblem, type GoldVia } from "./gold.ts";
import { type Normalized, normalizeAnswer, textForm } from "./normalize.ts";
import { type CompareOptions, compareValues, isList, parseValue, type Value } from "./value.ts";

export { DEFAULT_HANG_GUARD_MS, DEFAULT_STEP_BUDGET } from "./budget.ts";

export type { Preset } from "./extract.ts";
export { extractAnswer, formatScore } from "./extract.ts";
export type { GoldExtraction, GoldProblem, GoldVia } from "./gold.ts";
export { extractGold } from "./gold.ts";

export interface VerifyInput {
  response: string;
  /** The gold answer. */
  answer: string;
  /** Multiple-choice options, in letter order (A, B, C, ...). */
  choices?: readonly string[] | null;
  answerType?: string | null;
}

export interface VerifyOptions {
  preset?: Preset;
  /** When true, answers the rules cannot decide come back `undecided` for an LLM judge. */
  judge?: boolean;
  relativeTolerance?: number;
  /** Counted steps one verdict may spend (the bound on its work; the same on every machine). */
  stepBudget?: number;
  /** Last-resort guard against a hang, in ms; when it fires the result carries `defect`. */
  hangGuardMs?: number;
  now?: () => number;
}

export interface VerifyResult {
  correct: boolean;
  /** Rules could not decide and a judge is allowed: reason is `undecided`. */
  undecided: boolean;
  extracted: string | null;
  reason: string;
  format: number;
  /** 0.9 * accuracy + 0.1 * format. */
  score: number;
  /** Set when the verdict is a verifier defect (the hang guard fired, or a rule threw): count and log it. */
  defect?: string;
}

export const ACCURACY_WEIGHT = 0.9;
export const FORMAT_WEIGHT = 0.1;

export function reward(accuracy: number, format: number): number {
  return ACCURACY_WEIGHT * accuracy + FORMAT_WEIGHT * format;
}

const LETTERS = "ABCDEFGH";

/** Reads a choice letter from an answer: `B`, `(B)`, `b`, `B.`, `B. 12`, `(B) 12`, `Option B`. */
export function choiceLetter(answer: string): { letter: string } | { hedge: true } | null {
  const s = answer.trim().replace(/^(?:option|choice|answer)\s*:?\s*/i, "");
  let m = /^\(?([A-Ha-h])\)?[.:]?$/.exec(s);
  if (m) return { letter: m[1]!.toUpperCase() };
  m = /^(?:\(([A-Ha-h])\)|([A-H])[.:)])\s+\S/.exec(s);
  if (m) return { letter: (m[1] ?? m[2])!.toUpperCase() };
  if (/^\(?[A-Ha-h]\)?(?:\s*(?:,|and|or|\/|&)\s*\(?[A-Ha-h]\)?)+$/i.test(s)) {
    const letters = new Set(s.toUpperCase().match(/\b[A-H]\b/g) ?? []);
    if (letters.size > 1) return { hedge: true };
    if (letters.size === 1) return { letter: [...letters][0]! };
  }
  return null;
}

function isGoldLetter(gold: string, input: VerifyInput): boolean {
  const bare = gold.trim().replace(/^\((.)\)$/, "$1");
  if (!/^[A-Ha-h]$/.test(bare)) return false;
  return /^[A-H]$/.test(bare) || (input.choices?.length ?? 0) > 0 || input.answerType === "multiple_choice";
}

interface Decision {
  correct: boolean;
  undecided?: boolean;
  reason: string;
}

interface Context {
  /** The input with its gold as extractGold reads it. */
  input: VerifyInput;
  preset: Preset;
  judge: boolean;
  tolerance: number;
  budget: Budget;
  /** Each side normalized and parsed into a typed value once per verdict, however often it is compared. */
  read(text: string): { norm: Normalized; value: Value };
}

function reader(): Context["read"] {
  const seen = new Map<string, { norm: Normalized; value: Value }>();
  return (text) => {
    let r = seen.get(text);
    if (!r) {
      const norm = normalizeAnswer(text);
      r = { norm, value: parseValue(norm) };
      seen.set(text, r);
    }
    return r;
  };
}

function equivalent(gold: string, pred: string, ctx: Context): Decision {
  const { norm: gn, value: gv } = ctx.read(gold);
  const { norm: pn, value: pv } = ctx.read(pred);
  if (gn.text === pn.text || gn.text.replace(/\s+/g, "") === pn.text.replace(/\s+/g, "")) {
    return { correct: true, reason: "match_exact" };
  }
  const opts: CompareOptions = {
    relativeTolerance: ctx.tolerance,
    budget: ctx.budget,
    refusal: { refused: false },
  };
  if (!isList(gv) && pv.kind === "list" && pv.open === "") return { correct: false, reason: "hedged_answer" };
  const match = compareValues(gv, pv, opts);
  if (match) return { correct: true, reason: match };
  if (moreValuesThanGold(gv, pv, opts)) return { correct: false, reason: "hedged_answer" };
  const gt = textForm(gn.text);
  const pt = textForm(pn.text);
  const textual = gv.kind === "text" || pv.kind === "text";
  if (textual && gt !== "" && gt === pt) return { correct: true, reason: "match_text" };
  if (ctx.preset === "recipe" && relaxedMatch(gt, pt)) return { correct: true, reason: "match_relaxed" };
  if (opts.refusal?.refused) return { correct: false, reason: "numeric_out_of_range" };
  if (ctx.judge && gv.kind === "text" && pv.kind === "text" && !(singleWord(gt) && singleWord(pt))) {
    return { correct: false, undecided: true, reason: "undecided" };
  }
  return { correct: false, reason: "answer_mismatch" };
}

/**
 * A hedge is decided against the gold's own count: a bare list that holds every value of a
 * multi-valued gold and more besides (gold `1, 2`, answer `1, 2, 3`).
 */
function moreValuesThanGold(gold: Value, pred: Value, opts: CompareOptions): boolean {
  if (gold.kind !== "list" || pred.kind !== "list" || pred.open !== "") return false;
  if (gold.open !== "" && gold.open !== "{") return false;
  if (pred.items.length <= gold.items.length) return false;
  return gold.items.every((g) => pred.items.some((p) => compareValues(g, p, opts) !== null));
}

function singleWord(s: string): boolean {
  return !/\s/.test(s);
}

/** The published relaxed exact match: one string contains the other and is at least 90 % of its length. */
function relaxedMatch(a: string, b: string): boolean {
  if (a === "" || b === "") return false;
  const [short, long] = a.length <= b.length ? [a, b] : [b, a];
  return long.includes(short) && short.length >= 0.9 * long.length;
}

function decide(pred: string, ctx: Context): Decision {
  const { input } = ctx;
  const gold = input.answer;
  const choices = input.choices ?? [];
  if (isGoldLetter(gold, input)) {
    const goldLetter = gold
      .trim()
      .replace(/^\((.)\)$/, "$1")
      .toUpperCase();
    const picked = choiceLetter(normalizeAnswer(pred).text);
    if (picked && "hedge" in picked) return { correct: false, reason: "hedged_answer" };
    if (picked) {
      return picked.letter === goldLetter
        ? { correct: true, reason: "match_choice" }
        : { correct: false, reason: "answer_mismatch" };
    }
    // No letter: compare the answer with the options' contents.
    const hits = choices.flatMap((c, i) =>
      equivalent(c, pred, { ...ctx, judge: false }).correct ? [LETTERS[i]!] : [],
    );
    if (hits.length === 1) {
      return hits[0] === goldLetter
        ? { correct: true, reason: "match_choice_content" }
        : { correct: false, reason: "answer_mismatch" };
    }
    return { correct: false, reason: hits.length > 1 ? "hedged_answer" : "answer_mismatch" };
  }
  if (choices.length > 0) {
    // A free-form gold with options: a letter answer stands for its option's content.
    const picked = choiceLetter(normalizeAnswer(pred).text);
    if (picked && "hedge" in picked) return { correct: false, reason: "hedged_answer" };
    if (picked) {
      const content = choices[LETTERS.indexOf(picked.letter)];
      if (content !== undefined) {
        const d = equivalent(gold, content, { ...ctx, judge: false });
        return d.correct
          ? { correct: true, reason: "match_choice" }
          : { correct: false, reason: "answer_mismatch" };
      }
    }
  }
  return equivalent(gold, pred, ctx);
}

/**
 * A multi-answer question answered one box per answer (`\boxed{(2,2)}` and `\boxed{(6,2)}` for gold
 * `(2,2),(6,2)`): the boxes of the answer's part, taken together, are the answer. One box of several
 * stays what it was.
 */
function decideBoxes(extraction: Extract<Extraction, { ok: true }>, ctx: Context): Decision | null {
  const boxes = extraction.boxes;
  if (!boxes || boxes.length < 2) return null;
  const gold = ctx.read(ctx.input.answer).value;
  const unordered = gold.kind === "list" && (gold.open === "" || gold.open === "{");
  if (!unordered || gold.items.length !== boxes.length) return null;
  const d = equivalent(ctx.input.answer, boxes.join(", "), ctx);
  return d.correct ? d : null;
}

/**
 * The gold as the verifier compares it: extractGold's answer, and for a chain the value parser cannot
 * read (`1 = \zzz = x = 0`) its last side. Never throws.
 */
export function readGold(raw: string): GoldExtraction {
  const gold = extractGold(raw);
  if (!gold.ok || gold.values.length !== 1) return gold;
  const last = chainLastSide(gold.answer);
  if (last !== null && parseValue(normalizeAnswer(gold.answer)).kind === "text") {
    return { ok: true, answer: last, values: [last], via: "chain_last_side" };
  }
  return gold;
}

/** What a gold reads as: a value the rules compare (number, expression, set, ...), text, or nothing. */
export type GoldReading =
  | { kind: "value"; via: GoldVia; value: Value["kind"] | "choice" }
  | { kind: "text"; via: GoldVia }
  | { kind: "unreadable"; reason: GoldProblem };

/** How a gold field reads (the gold-parse rate of a source). Never throws. */
export function readGoldKind(raw: string): GoldReading {
  const gold = readGold(raw);
  if (!gold.ok) return { kind: "unreadable", reason: gold.reason };
  if (/^\(?[A-H]\)?$/.test(gold.answer.trim())) return { kind: "value", via: gold.via, value: "choice" };
  const value = parseValue(normalizeAnswer(gold.answer));
  return value.kind === "text"
    ? { kind: "text", via: gold.via }
    : { kind: "value", via: gold.via, value: value.kind };
}

/** Verifies one response against its gold answer. Never throws. */
export function verify(input: VerifyInput, options: VerifyOptions = {}): VerifyResult {
  warmUp();
  const preset = options.preset ?? "strict";
  const ctx: Context = {
    input,
    preset,
    judge: options.judge ?? false,
    tolerance: options.relativeTolerance ?? 1e-4,
    budget: new Budget(
      options.stepBudget ?? DEFAULT_STEP_BUDGET,
      options.hangGuardMs ?? DEFAULT_HANG_GUARD_MS,
      options.now,
    ),
    read: reader(),
  };
  try {
    const response = typeof input.response === "string" ? input.response : "";
    const format = formatScore(response, preset);
    if (typeof input.answer !== "string" || input.answer.trim() === "") {
      return result(false, false, null, "invalid_gold", format);
    }
    // Every gold is read the same way, wherever it comes from (SFT filtering, the RL reward, evaluation).
    const gold = readGold(input.answer);
    if (!gold.ok) return result(false, false, null, "gold_unreadable", format);
    ctx.input = { ...input, answer: gold.answer };
    const extraction = extractAnswer(response, preset);
    if (!extraction.ok) {
      const short = response.trim().length > 0 && response.trim().length < LONG_RESPONSE_CHARS;
      if (preset === "recipe" && ctx.judge && short && format === 0) {
        // The published rule lets the judge read a short unformatted response whole.
        return result(false, true, response.trim(), "undecided", format);
      }
      return result(false, false, null, extraction.reason, format);
    }
    let d = decide(extraction.answer, ctx);
    let extracted = extraction.answer;
    if (!d.correct) {
      const joined = decideBoxes(extraction, ctx);
      if (joined) {
        d = joined;
        extracted = extraction.boxes!.join(", ");
      }
    }
    return result(d.correct, d.undecided ?? false, extracted, d.reason, format);
  } catch (err) {
    // The step budget is deterministic: the same item runs out on every machine.
    if (err instanceof BudgetExceeded) return result(false, false, null, "verifier_budget_exceeded", 0);
    // Rules are written not to throw and the budget should stop any long item first: either is a defect.
    const defect = err instanceof HangGuardFired ? "hang_guard" : `threw: ${(err as Error)?.message ?? err}`;
    const reason = err instanceof HangGuardFired ? "verifier_timeout" : "verifier_error";
    return { ...result(false, false, null, reason, 0), defect };
  }
}

function result(
  correct: boolean,
  undecided: boolean,
  extracted: string | null,
  reason: string,
  format: number,
): VerifyResult {
  return { correct, undecided, extracted, reason, format, score: reward(correct ? 1 : 0, format) };
}
