import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { reward, verify } from "../../core/verify/index.ts";
import { verdictForLine, verifyCommand } from "../../core/verify/lines.ts";

const good = "<think>2 + 2 = 4</think><answer>4</answer>";

/** A 300-element set of radicals answered in reverse order: many comparisons, a right answer. */
function bigSetAnswer() {
  const items = Array.from({ length: 300 }, (_, i) => `\\sqrt{${i + 2}}`);
  return {
    response: `<answer>\\{${[...items].reverse().join(", ")}\\}</answer>`,
    answer: `\\{${items.join(", ")}\\}`,
  };
}

describe("verify", () => {
  it("scores the reward as 0.9 accuracy plus 0.1 format", () => {
    expect(verify({ response: good, answer: "4" }).score).toBeCloseTo(1, 12);
    expect(verify({ response: good, answer: "5" }).score).toBeCloseTo(0.1, 12);
    expect(verify({ response: "\\boxed{4}", answer: "4" }).score).toBeCloseTo(0.9, 12);
    expect(reward(1, 0.8)).toBeCloseTo(0.98, 12);
  });

  it("reports a missing gold answer as invalid_gold instead of a mismatch", () => {
    const v = verify({ response: good, answer: "  " });

    expect(v).toMatchObject({ correct: false, reason: "invalid_gold" });
  });

  it("gives the same verdict when the clock jumps forward between steps", () => {
    const input = { response: "<think>w</think><answer>\\sqrt{8}</answer>", answer: "2\\sqrt{2}" };
    let t = 0;
    const jumping = () => {
      t += 100; // every reading of the clock is 100 ms later (the old 50 ms budget was spent at once)
      return t;
    };

    const v = verify(input, { now: jumping });

    expect(v).toMatchObject({ correct: true, reason: "match_symbolic" });
  });

  it("reports verifier_budget_exceeded, the same on every machine, when the step budget is spent", () => {
    const input = bigSetAnswer();

    const small = verify(input, { stepBudget: 5000 });
    const large = verify(input, { stepBudget: 10_000_000 });

    expect(small).toMatchObject({ correct: false, reason: "verifier_budget_exceeded" });
    expect(small.defect).toBeUndefined();
    expect(large).toMatchObject({ correct: true, reason: "match_set" });
  });

  it("reports a fired hang guard as a verifier defect, not as a quiet wrong answer", () => {
    const input = bigSetAnswer();
    let t = 0;
    const stalled = () => {
      t += 60_000; // the machine stalls for a minute between two readings
      return t;
    };

    const v = verify(input, { now: stalled, stepBudget: 10_000_000 });

    expect(v).toMatchObject({ correct: false, reason: "verifier_timeout", defect: "hang_guard" });
  });

  it("only reports undecided when a judge is allowed", () => {
    const input = { response: "<think>w</think><answer>a red barn by a river</answer>", answer: "a barn" };

    expect(verify(input, { judge: true })).toMatchObject({
      correct: false,
      undecided: true,
      reason: "undecided",
    });
    expect(verify(input, { judge: false })).toMatchObject({
      correct: false,
      undecided: false,
      reason: "answer_mismatch",
    });
  });

  it("tolerates non-string fields from untyped callers", () => {
    const v = verify({ response: 42 as unknown as string, answer: "4" });

    expect(v).toMatchObject({ correct: false, reason: "no_boxed_answer" });
  });
});

describe("recipe verify (CLI contract)", () => {
  async function run(text: string, preset: "strict" | "recipe" = "strict") {
    let out = "";
    const code = await verifyCommand(
      { input: "-", preset, judge: false },
      (t) => (out += t),
      Readable.from([text]),
    );
    return {
      code,
      lines: out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
    };
  }

  it("writes one verdict per input line, in input order, with exactly the contract's fields", async () => {
    const input = [
      { id: "a", response: good, answer: "4" },
      { id: "b", response: good, answer: "5", extra: "ignored" },
      { id: 3, response: "<think>x</think>\\boxed{B}", answer: "B", choices: ["1", "2"] },
    ]
      .map((l) => JSON.stringify(l))
      .join("\n");

    const { code, lines } = await run(input);

    expect(code).toBe(0);
    expect(lines).toEqual([
      { id: "a", correct: true, extracted: "4", reason: "match_exact", format: 1 },
      { id: "b", correct: false, extracted: "4", reason: "answer_mismatch", format: 1 },
      { id: 3, correct: true, extracted: "B", reason: "match_choice", format: 1 },
    ]);
  });

  it("turns a malformed line into invalid_input and keeps going", async () => {
    const { lines } = await run(
      `not json\n{"id":"x","response":"r"}\n${JSON.stringify({ id: "ok", response: good, answer: "4" })}\n`,
    );

    expect(lines.map((l) => [l.id, l.reason])).toEqual([
      [null, "invalid_input"],
      ["x", "invalid_input"],
      ["ok", "match_exact"],
    ]);
  });

  it("uses the recipe preset when asked", () => {
    const line = JSON.stringify({ id: "r", response: "so the total is 42", answer: "42" });

    expect(verdictForLine(line, { preset: "strict", judge: false }).reason).toBe("no_boxed_answer");
    expect(verdictForLine(line, { preset: "recipe", judge: false })).toMatchObject({
      correct: true,
      extracted: "42",
    });
  });

  it("prints an undecided verdict as correct false with reason undecided", () => {
    const line = JSON.stringify({
      id: "u",
      response: "<think>w</think><answer>a big red barn</answer>",
      answer: "a barn",
    });

    expect(verdictForLine(line, { preset: "strict", judge: true })).toMatchObject({
      correct: false,
      reason: "undecided",
    });
  });
});

describe("verifier start-up (regression)", () => {
  it("decides the first symbolic verdict of a fresh process within the default budget, not as a timeout", async () => {
    const { execFileSync } = await import("node:child_process");
    const script =
      'import { verify } from "./core/verify/index.ts"; console.log(JSON.stringify(verify({ response: "<think>w</think><answer>\\\\sqrt{8}</answer>", answer: "2\\\\sqrt{2}" })));';

    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
    });

    expect(JSON.parse(out)).toMatchObject({ correct: true, reason: "match_symbolic" });
  });
});
