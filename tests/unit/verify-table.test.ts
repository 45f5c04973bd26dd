/**
 * The verifier regression table (tests/fixtures/verify-cases.jsonl): every rule, and every verifier
 * bug ever fixed, as (response, gold, expected verdict) rows. Add a row for each bug you fix.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type Preset, verify } from "../../core/verify/index.ts";

interface Case {
  id: string;
  response: string;
  answer: string;
  choices?: string[];
  answerType?: string;
  preset?: Preset;
  judge?: boolean;
  expect: { correct: boolean; reason?: string; format?: number };
  note: string;
}

const cases: Case[] = readFileSync("tests/fixtures/verify-cases.jsonl", "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l));

describe("verifier regression table", () => {
  it("has at least 300 cases, each with a unique id and a note", () => {
    expect(cases.length).toBeGreaterThanOrEqual(300);
    expect(new Set(cases.map((c) => c.id)).size).toBe(cases.length);
    expect(cases.filter((c) => c.note.trim() === "")).toEqual([]);
  });

  it.each(cases.map((c) => [`${c.id}: ${c.note}`, c] as const))("%s", (_name, c) => {
    const verdict = verify(c, { preset: c.preset ?? "strict", judge: c.judge ?? false });

    const got: Case["expect"] = { correct: verdict.correct };
    if (c.expect.reason !== undefined) got.reason = verdict.reason;
    if (c.expect.format !== undefined) got.format = verdict.format;
    expect(got).toEqual(c.expect);
    expect(verdict.reason).toMatch(/^[a-z][a-z0-9_]*$/);
    expect(verdict.score).toBeCloseTo(0.9 * (verdict.correct ? 1 : 0) + 0.1 * verdict.format, 12);
  });

  it("gives every row the same verdict whatever the clock does (verdicts do not depend on machine load)", () => {
    let t = 0;
    const frozen = () => 0;
    const jumping = () => {
      t += 250; // a loaded machine: a quarter of a second passes between any two readings
      return t;
    };
    const run = (now: () => number) =>
      cases.map((c) => {
        const v = verify(c, { preset: c.preset ?? "strict", judge: c.judge ?? false, now });
        return `${c.id} ${v.correct} ${v.reason} ${v.format}`;
      });

    expect(run(jumping)).toEqual(run(frozen));
  });

  it("covers every reason code the verifier can give", () => {
    const reasons = new Set(
      cases.map((c) => verify(c, { preset: c.preset ?? "strict", judge: c.judge ?? false }).reason),
    );

    for (const reason of [
      "match_exact",
      "match_numeric",
      "match_symbolic",
      "match_choice",
      "match_choice_content",
      "match_interval",
      "match_tuple",
      "match_set",
      "match_equation",
      "match_matrix",
      "numeric_out_of_range",
      "match_inequality",
      "match_text",
      "match_relaxed",
      "answer_mismatch",
      "gold_unreadable",
      "hedged_answer",
      "no_boxed_answer",
      "empty_answer",
      "unclosed_box",
      "unclosed_answer",
      "unclosed_think",
      "undecided",
    ]) {
      expect(reasons, reason).toContain(reason);
    }
  });
});
