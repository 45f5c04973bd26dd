/**
 * Gold extraction: the answer a data set's gold field holds, read the way real data sets write it.
 *
 *   extractGold(text) -> { ok: true, answer, values, via } | { ok: false, reason, detail }
 *
 * A gold may be a bare answer (`42`), a math segment (`$\frac{1}{2}$`), a solution text that ends
 * in a box (`So the answer is: \[ \boxed{11111111100} \]`), several boxes that together are the
 * answer (`\boxed{1} and \boxed{2}`), several math segments joined by list words (`$21,16$ or $11$`)
 * or a chain that ends in the value (`1 = \zzz = x = 0`). `values` holds each value the gold gives;
 * `answer` is them joined as a list (one value: the value itself), which the comparison reads.
 *
 * Used wherever a gold enters: ingest records `answer` and `via` (and rejects an unreadable gold as
 * `gold_unreadable`), and verify() reads every gold through it, so the RL reward and evaluation see
 * the same gold as SFT filtering. Pure, linear in the input, never throws.
 */
import { matchBrace } from "./latex.ts";

/** How the gold was found. */
export type GoldVia =
  /** The text as it is: no box, no math segment. */
  | "plain"
  /** The last `\boxed{}` (or the boxes after a "Final Answer" marker, all the same). */
  | "boxed"
  /** Several boxes joined by list words (`\boxed{1} and \boxed{2}`): one value per box. */
  | "boxes"
  /** The math segment of a text (the whole text, the only one, or the last when the text ends with it). */
  | "math_segment"
  /** Several math segments joined by list words (`$21,16$ or $11$`): one value per segment. */
  | "math_segments"
  /** The math right after a "final answer is" marker in a solution text without a box. */
  | "final_answer"
  /** A chain of equalities the value parser cannot read as one, ending in a value: its last side. */
  | "chain_last_side";

export type GoldProblem = "gold_empty" | "gold_unclosed_box" | "gold_empty_box" | "gold_is_prose";

export type GoldExtraction =
  | { ok: true; answer: string; values: string[]; via: GoldVia }
  | { ok: false; reason: GoldProblem; detail: string };

/** A solution text this long without a box or a math segment is prose, not an answer. */
export const MAX_PLAIN_GOLD_CHARS = 300;
/** At most this many words may join two boxes or two math segments into one multi-valued gold. */
const MAX_JOINER_WORDS = 3;

const BOX = /\\(?:boxed|fbox)\s*\{/g;
const FINAL_ANSWER = /final answer/gi;

/**
 * Undoes the escaping artifacts of golds copied through one JSON or Python layer too many: every
 * backslash doubled (`\\boxed{4}`, `-2 \\le x`) and literal `\n` for line breaks. A text with a
 * single-backslash command anywhere is left as it is (there `\\` is a row break).
 */
export function unescapeGold(text: string): string {
  let s = text.replace(/\\n(?![a-zLR])/g, "\n");
  const doubled = s.match(/\\\\(?=[A-Za-z{}$[\]()])/g)?.length ?? 0;
  const single = s.match(/(?<!\\)\\(?=[A-Za-z])/g)?.length ?? 0;
  if (doubled > 0 && single === 0 && !/\\\\\\/.test(s)) s = s.replace(/\\\\/g, "\\");
  return s;
}

interface Span {
  content: string;
  start: number;
  end: number;
}

/** Every top-level box with its span; `unclosed` when one is never closed. */
function boxSpans(text: string): { spans: Span[]; unclosed: boolean } {
  const spans: Span[] = [];
  let after = 0;
  for (const m of text.matchAll(BOX)) {
    if (m.index < after) continue;
    const braceAt = m.index + m[0].length - 1;
    const close = matchBrace(text, braceAt);
    if (close < 0) return { spans, unclosed: true };
    spans.push({ content: text.slice(braceAt + 1, close).trim(), start: m.index, end: close + 1 });
    after = close + 1;
  }
  return { spans, unclosed: false };
}

/** Math segments `$$..$$`, `$..$`, `\[..\]`, `\(..\)` with their spans (an unpaired `$` is currency). */
function mathSpans(text: string): Span[] {
  const spans: Span[] = [];
  // Inline math never spans a line break: `$5 ... \n ... $10` is two currency signs.
  const re =
    /\$\$([\s\S]*?)\$\$|(?<!\\)\$((?:[^$\\\n]|\\[^\n])*?)\$|\\\[([\s\S]*?)\\\]|\\\(((?:[^\n\\]|\\[^)\n])*?)\\\)/g;
  for (const m of text.matchAll(re)) {
    const content = (m[1] ?? m[2] ?? m[3] ?? m[4] ?? "").trim();
    spans.push({ content, start: m.index, end: m.index + m[0].length });
  }
  return spans;
}

/**
 * Text between two values that only joins them: punctuation and spacing, or a few words among which
 * a list word (`\boxed{1} papers and \boxed{2} bins`; not `\boxed{5} then \boxed{7}`).
 */
function isJoiner(between: string): boolean {
  const words = between
    .replace(/\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}/g, " $1 ")
    .replace(/\\(?:quad|qquad|,|;|:|!| )/g, " ")
    .replace(/\\[()[\]]|\$/g, " ")
    .replace(/[^A-Za-z0-9]+/g, " ")
    .trim();
  if (words === "") return true;
  if (/\d/.test(words)) return false;
  const list = words.split(/\s+/);
  const listWord = /[,;&]/.test(between) || list.some((w) => /^(?:and|or)$/i.test(w));
  return listWord && list.length <= MAX_JOINER_WORDS;
}

/** The last run of spans whose gaps are joiners. */
function lastJoinedRun(text: string, spans: Span[]): Span[] {
  let from = spans.length - 1;
  while (from > 0 && isJoiner(text.slice(spans[from - 1]!.end, spans[from]!.start))) from--;
  return spans.slice(from);
}

function distinct(values: string[]): string[] {
  const seen = new Set<string>();
  return values.filter((v) => {
    const key = v.replace(/\s+/g, "");
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function ok(values: string[], via: GoldVia): GoldExtraction {
  return { ok: true, answer: values.join(", "), values, via };
}

/** Top-level `=` signs (not in `<=`, `>=`, `\ne`, brackets). */
function topLevelEquals(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "=" && depth === 0 && !/[<>!:]/.test(s[i - 1] ?? "")) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.trim());
}

/**
 * A chain `a = b = ... = v` whose last side is a plain value (a number, or a short constant without
 * letters): the value, else null. Only used when the chain is not readable as a relation (see
 * `readableAsValue` in verify), so a gold the value parser understands is never rewritten.
 */
export function chainLastSide(answer: string): string | null {
  const sides = topLevelEquals(answer);
  if (sides.length < 3) return null;
  const last = sides.at(-1)!;
  if (last === "" || sides.some((s) => s === "")) return null;
  return /^-?(?:\d+(?:\.\d+)?|\\frac\{\d+\}\{\d+\}|\d+\/\d+)$/.test(last.replace(/\s+/g, "")) ? last : null;
}

/** Reads the gold answer out of a gold field. Never throws. */
export function extractGold(raw: string): GoldExtraction {
  const text = unescapeGold(raw).trim();
  if (text === "") return { ok: false, reason: "gold_empty", detail: "the gold is empty" };

  const boxes = boxSpans(text);
  if (boxes.unclosed) {
    return { ok: false, reason: "gold_unclosed_box", detail: "a \\boxed{ in the gold is never closed" };
  }
  if (boxes.spans.length > 0) {
    // After a "Final Answer" marker, only its boxes count.
    let spans = boxes.spans;
    const marker = [...text.matchAll(FINAL_ANSWER)].at(-1);
    if (marker) {
      const after = spans.filter((b) => b.start > marker.index);
      if (after.length > 0) spans = after;
    }
    const run = lastJoinedRun(text, spans);
    const values = distinct(run.map((b) => b.content));
    if (values.some((v) => v === "")) {
      return { ok: false, reason: "gold_empty_box", detail: "the gold's box is empty" };
    }
    return ok(values, values.length > 1 ? "boxes" : "boxed");
  }

  const segments = mathSpans(text);
  const marker = [...text.matchAll(FINAL_ANSWER)].at(-1);
  const afterMarker = marker ? segments.filter((m) => m.start > marker.index) : [];
  if (afterMarker.length > 0) {
    // "Final Answer: The final answer is $28\%$. I hope it is correct.": the first run after it.
    let end = 1;
    while (
      end < afterMarker.length &&
      isJoiner(text.slice(afterMarker[end - 1]!.end, afterMarker[end]!.start))
    )
      end++;
    const values = afterMarker
      .slice(0, end)
      .map((m) => m.content)
      .filter((v) => v !== "");
    if (values.length > 0) return ok(values, "final_answer");
  }
  if (segments.length > 0) {
    const outside = text.slice(0, segments[0]!.start) + text.slice(segments.at(-1)!.end);
    const run = lastJoinedRun(text, segments);
    const endsWithIt = /^[\s.,;:!]*$/.test(text.slice(segments.at(-1)!.end));
    if (run.length === segments.length && /^[\s.,;:!]*$/.test(outside)) {
      const values = run.map((s) => s.content).filter((v) => v !== "");
      if (values.length === 0) return { ok: false, reason: "gold_empty", detail: "the gold's math is empty" };
      if (values.length === 1) return ok(values, "math_segment");
      return ok(values, "math_segments");
    }
    const proseWords = outside.replace(/[^A-Za-z]+/g, " ").trim();
    const fewWords = proseWords === "" || proseWords.split(" ").length <= MAX_JOINER_WORDS;
    // The text ends with its math (`..., so $c = 7$.`), or says little beside it (`Answer: $5$`).
    if (endsWithIt || (segments.length === 1 && fewWords)) {
      const values = run.map((s) => s.content).filter((v) => v !== "");
      if (values.length === 1) return ok(values, "math_segment");
      if (values.length > 1) return ok(values, "math_segments");
    }
  }

  if (text.length > MAX_PLAIN_GOLD_CHARS && /[.!?]\s+\S[\s\S]*[.!?]/.test(text)) {
    return {
      ok: false,
      reason: "gold_is_prose",
      detail: `a ${text.length}-character text with no box and no math segment to take the answer from`,
    };
  }
  return ok([text], "plain");
}
