/**
 * The synthetic teacher's answers (`recipe run --teacher synthetic`): for a question of the user's
 * own data, eight responses made from its gold answer, in a mix that makes every filter act: right
 * (four), wrong, unformatted, looping and truncated. Which one a request gets follows its seed, so
 * a run is reproducible; the mix is rotated per question so questions do not all fail alike. It lets
 * the whole funnel run on one's own data without a GPU or an endpoint; its datasets are not for
 * training, and every output of such a run says so.
 */
import { sha256Hex } from "../records/index.ts";

export interface SyntheticResponse {
  content: string;
  finish_reason: "stop" | "length";
}

/** What a response is, in order of the mix before it is rotated. */
export const SYNTHETIC_MIX = [
  "right",
  "right",
  "wrong",
  "right",
  "unformatted",
  "looping",
  "right",
  "truncated",
] as const;

/** A wrong answer near the gold: a number off by one, the next option letter, or another word. */
export function wrongAnswer(gold: string, choices?: readonly string[]): string {
  const t = gold.trim();
  if (/^-?\d+$/.test(t)) return String(BigInt(t) + 1n);
  if (/^-?\d*\.\d+$/.test(t)) return String(Number(t) + 1);
  if (/^[A-Z]$/.test(t)) {
    const n = Math.max(2, choices?.length ?? 4);
    return String.fromCharCode(65 + ((t.charCodeAt(0) - 65 + 1) % n));
  }
  if (choices && choices.length > 1) return choices.find((c) => c.trim() !== t) ?? `not ${t}`;
  return t === "yes" ? "no" : t === "no" ? "yes" : `not ${t}`;
}

/** The eight responses to one question, rotated by a hash of the question. */
export function syntheticResponses(
  question: string,
  gold: string,
  choices?: readonly string[],
): SyntheticResponse[] {
  const think = `Let me work through it. The question asks: ${question.slice(0, 200)} I check each step before I answer.`;
  const made: Record<(typeof SYNTHETIC_MIX)[number], SyntheticResponse> = {
    right: { content: `<think>${think}</think><answer>${gold}</answer>`, finish_reason: "stop" },
    wrong: {
      content: `<think>${think}</think><answer>${wrongAnswer(gold, choices)}</answer>`,
      finish_reason: "stop",
    },
    unformatted: { content: `${think} So the answer is ${gold}.`, finish_reason: "stop" },
    looping: {
      content: `<think>${think} ${"Let me check that again. ".repeat(60)}</think><answer>${gold}</answer>`,
      finish_reason: "stop",
    },
    truncated: { content: `<think>${think} Next I`, finish_reason: "length" },
  };
  const shift = Number.parseInt(sha256Hex(question).slice(0, 8), 16) % SYNTHETIC_MIX.length;
  return SYNTHETIC_MIX.map((_, i) => made[SYNTHETIC_MIX[(i + shift) % SYNTHETIC_MIX.length]!]);
}
