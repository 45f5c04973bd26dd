/**
 * Answer extraction and the format score (RECIPE.md "The reward").
 *
 * Preset `strict` (default): when the response has a think block, the answer is searched only after
 * it: the last `<answer>` block, else the last `\boxed{}` / `\fbox{}`; a box inside the answer block is
 * unwrapped. Nothing inside the think block ever counts. No last-number fallback.
 *
 * Preset `recipe`: the published rule: the `<answer>` block, else the last `\boxed{}`, else the last
 * number on the last non-empty line; format 1 for think+answer or a boxed answer, 0.8 for a long
 * unformatted response that still states an answer.
 *
 * Both presets accept a response that has `</think>` but no `<think>` as having its think block open at
 * the start: chat templates that prefill `<think>` (Qwen3 style) produce exactly that.
 */
import { allBoxed, lastBoxed } from "./latex.ts";

export type Preset = "strict" | "recipe";

export type Extraction =
  | {
      ok: true;
      answer: string;
      via: "answer_tag" | "boxed" | "last_number";
      /** Every box of the answer's part of the response, in order, when there are several. */
      boxes?: string[];
    }
  | {
      ok: false;
      reason: "no_boxed_answer" | "empty_answer" | "unclosed_box" | "unclosed_answer" | "unclosed_think";
    };

const THINK_OPEN = "<think>";
const THINK_CLOSE = "</think>";
const ANSWER_OPEN = "<answer>";
const ANSWER_CLOSE = "</answer>";

interface ThinkSplit {
  /** Number of `<think>` tags (an implicit prefilled one counts). */
  opens: number;
  closes: number;
  thinkContent: string;
  /** Text after the last `</think>`; the whole response when there is no think block. */
  after: string;
  hasThink: boolean;
  unclosed: boolean;
}

function countOf(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

function splitThink(response: string): ThinkSplit {
  let opens = countOf(response, THINK_OPEN);
  const closes = countOf(response, THINK_CLOSE);
  const firstOpen = response.indexOf(THINK_OPEN);
  const lastClose = response.lastIndexOf(THINK_CLOSE);
  if (opens === 0 && closes === 0) {
    return { opens, closes, thinkContent: "", after: response, hasThink: false, unclosed: false };
  }
  if (closes === 0 || (firstOpen >= 0 && lastClose < firstOpen)) {
    return { opens, closes, thinkContent: "", after: "", hasThink: true, unclosed: true };
  }
  const start = firstOpen >= 0 && firstOpen < lastClose ? firstOpen + THINK_OPEN.length : 0;
  if (opens === 0) opens = 1; // prefilled <think>
  return {
    opens,
    closes,
    thinkContent: response.slice(start, response.indexOf(THINK_CLOSE, start)),
    after: response.slice(lastClose + THINK_CLOSE.length),
    hasThink: true,
    unclosed: false,
  };
}

type AnswerBlock = { kind: "ok"; content: string; end: number } | { kind: "unclosed" } | null;

function answerBlock(text: string, which: "first" | "last"): AnswerBlock {
  const open = which === "last" ? text.lastIndexOf(ANSWER_OPEN) : text.indexOf(ANSWER_OPEN);
  if (open < 0) return null;
  const close = text.indexOf(ANSWER_CLOSE, open + ANSWER_OPEN.length);
  if (close < 0) return { kind: "unclosed" };
  return {
    kind: "ok",
    content: text.slice(open + ANSWER_OPEN.length, close),
    end: close + ANSWER_CLOSE.length,
  };
}

function fromAnswerContent(content: string): Extraction {
  const boxed = lastBoxed(content);
  let answer = content;
  if (boxed?.kind === "ok") answer = boxed.content;
  else if (boxed?.kind === "unclosed") return { ok: false, reason: "unclosed_box" };
  answer = answer.trim();
  if (answer === "") return { ok: false, reason: "empty_answer" };
  return withBoxes({ ok: true, answer, via: "answer_tag" }, content);
}

function fromBoxed(text: string): Extraction | null {
  const boxed = lastBoxed(text);
  if (!boxed) return null;
  if (boxed.kind === "unclosed") return { ok: false, reason: "unclosed_box" };
  const answer = boxed.content.trim();
  if (answer === "") return { ok: false, reason: "empty_answer" };
  return withBoxes({ ok: true, answer, via: "boxed" }, text);
}

/** Adds the part's boxes when it has several (a multi-answer question answered one box per answer). */
function withBoxes(e: Extract<Extraction, { ok: true }>, part: string): Extraction {
  const boxes = allBoxed(part).filter((b) => b !== "");
  return boxes.length >= 2 ? { ...e, boxes } : e;
}

const NUMBER = /-?\d[\d,]*(?:\.\d+)?|-?\.\d+/g;

function lastNumberOfLastLine(text: string): string | null {
  const lines = text.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    let last: string | null = null;
    for (const m of line.matchAll(NUMBER)) last = m[0];
    return last === null ? null : last.replace(/,(?=\d{3}\b)/g, "");
  }
  return null;
}

export function extractAnswer(response: string, preset: Preset): Extraction {
  if (preset === "recipe") {
    const block = answerBlock(response, "first");
    if (block?.kind === "ok") return fromAnswerContent(block.content);
    const boxed = fromBoxed(response);
    if (boxed) return boxed;
    const number = lastNumberOfLastLine(response);
    if (number !== null) return { ok: true, answer: number, via: "last_number" };
    return { ok: false, reason: block?.kind === "unclosed" ? "unclosed_answer" : "no_boxed_answer" };
  }
  const think = splitThink(response);
  if (think.unclosed) return { ok: false, reason: "unclosed_think" };
  const block = answerBlock(think.after, "last");
  if (block?.kind === "ok") return fromAnswerContent(block.content);
  const boxed = fromBoxed(think.after);
  if (boxed) return boxed;
  return { ok: false, reason: block?.kind === "unclosed" ? "unclosed_answer" : "no_boxed_answer" };
}

/** Characters that may trail a well-formed answer without counting as "something after it". */
const TRAILING_NOISE = /^[\s.!,;:)\]}*_`'"-]*(?:<\|im_end\|>|<\|endoftext\|>|<\/s>|<\|eot_id\|>)?[\s.]*$/;

/**
 * Format score in [0, 1]. strict: 1 when there is exactly one closed, non-empty think block followed by
 * a non-empty answer block (or a boxed answer) and nothing of substance after it; else 0.
 */
export function formatScore(response: string, preset: Preset): number {
  const think = splitThink(response);
  if (preset === "recipe") {
    if (think.hasThink && !think.unclosed) {
      const block = answerBlock(think.after, "first");
      if (block?.kind === "ok" && block.content.trim() !== "") return 1;
    }
    const boxed = lastBoxed(response);
    if (boxed?.kind === "ok" && boxed.content.trim() !== "") return 1;
    if (response.trim().length >= LONG_RESPONSE_CHARS && lastNumberOfLastLine(response) !== null) return 0.8;
    return 0;
  }
  if (!think.hasThink || think.unclosed || think.opens !== 1 || think.closes !== 1) return 0;
  if (think.thinkContent.trim() === "") return 0;
  const before = response.slice(0, Math.max(0, response.indexOf(THINK_OPEN)));
  if (before.trim() !== "") return 0;
  const after = think.after;
  const block = answerBlock(after, "first");
  if (block?.kind === "ok") {
    if (countOf(after, ANSWER_OPEN) !== 1) return 0;
    if (after.slice(0, after.indexOf(ANSWER_OPEN)).trim() !== "") return 0;
    if (fromAnswerContent(block.content).ok !== true) return 0;
    return TRAILING_NOISE.test(after.slice(block.end)) ? 1 : 0;
  }
  if (block?.kind === "unclosed") return 0;
  const boxed = lastBoxed(after);
  if (boxed?.kind !== "ok" || boxed.content.trim() === "") return 0;
  // A boxed answer may sit inside a short concluding sentence; nothing of substance may follow the box.
  const tail = after.slice(boxed.end);
  return TRAILING_NOISE.test(tail.replace(/\$+/g, "")) ? 1 : 0;
}

/** Our reading of the published rule's "long unformatted response": at least this many characters. */
export const LONG_RESPONSE_CHARS = 200;
