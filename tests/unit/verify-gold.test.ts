/**
 * Gold extraction (core/verify/gold.ts): golds as data sets give them. Each form has rows that must
 * stay unread or single-valued: a near-miss of the rule.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { extractGold, unescapeGold } from "../../core/verify/gold.ts";
import { readGold, verify } from "../../core/verify/index.ts";

const read = (raw: string) => {
  const g = extractGold(raw);
  return g.ok ? { answer: g.answer, via: g.via } : { reason: g.reason };
};

describe("gold extraction", () => {
  it.each([
    ["42", "42", "plain"],
    ["$\\frac{1}{2}$", "\\frac{1}{2}", "math_segment"],
    [" So the answer is: \\[ \\boxed{11111111100} \\]", "11111111100", "boxed"],
    [
      "Thus, the domain of the function \\( f(x) \\) is: \\[ \\boxed{(2, 12) \\cup (12, 102)} \\]",
      "(2, 12) \\cup (12, 102)",
      "boxed",
    ],
    [
      "SoHi YES. could answer therefore\\boxed{840}.,but let me put this after.\n**Final Answer**\n\\boxed{840}",
      "840",
      "boxed",
    ],
    [
      "the answer should be \\boxed{003}. But let me check again.\n**Final Answer**\n\\boxed{004}",
      "004",
      "boxed",
    ],
    ["$21,16$ or $11$", "21,16, 11", "math_segments"],
    ["$\\boxed{1}\\boxed{2}$", "1, 2", "boxes"],
    ["\\boxed{1} papers and \\boxed{2} bins", "1, 2", "boxes"],
    ["$\\boxed{35 cm} ++++++ \\boxed{4}$", "35 cm, 4", "boxes"],
    [
      "Final Answer: The final answer is $28 \\%$. I hope it is correct. Note: $5$ is wrong.",
      "28 \\%",
      "final_answer",
    ],
    ["The area is $24$.", "24", "math_segment"],
  ])("reads %j as %j (%s)", (raw, answer, via) => {
    expect(read(raw)).toEqual({ answer, via });
  });

  it("keeps only the last box when words that are not a list join them (near-miss of several boxes)", () => {
    expect(read("\\boxed{1} no no no no no \\boxed{2}")).toEqual({ answer: "2", via: "boxed" });
  });

  it("joins boxes only through a list word or punctuation (near-miss: 'then' between two boxes)", () => {
    expect(read("we get \\boxed{5} then \\boxed{7}")).toEqual({ answer: "7", via: "boxed" });
  });

  it("does not take a math segment out of prose that goes on after it (near-miss of a math-segment gold)", () => {
    const prose = "It increases when $x > 0$ and decreases everywhere else on the line";
    expect(read(prose)).toEqual({ answer: prose, via: "plain" });
    expect(read("Answer: $5$")).toEqual({ answer: "5", via: "math_segment" });
  });

  it("does not pair dollar signs across a line break (two prices, not math)", () => {
    expect(read("costs $5 each\nand $10 in all")).toEqual({
      answer: "costs $5 each\nand $10 in all",
      via: "plain",
    });
  });

  it.each([
    ["", "gold_empty"],
    ["   ", "gold_empty"],
    ["\\boxed{W(n) = 1 \\text{ and } W(n) = -1", "gold_unclosed_box"],
    ["So the answer is \\boxed{}.", "gold_empty_box"],
    [
      "We first note that the sequence is increasing. Then we check each case in turn, and the count grows by one each time. " +
        "Summing the cases over all the residues, the pattern repeats every seven terms. Therefore the required count follows from the pattern above, as claimed, and we are done with it. Nothing else remains to be checked here.",
      "gold_is_prose",
    ],
  ])("cannot read %j: %s", (raw, reason) => {
    expect(read(raw)).toEqual({ reason });
  });

  it("undoes doubled backslashes only when every command is doubled", () => {
    expect(unescapeGold("$-2 \\\\le x \\\\le 7$")).toBe("$-2 \\le x \\le 7$");
    expect(unescapeGold("\\begin{pmatrix}1\\\\x\\end{pmatrix}")).toBe("\\begin{pmatrix}1\\\\x\\end{pmatrix}");
    expect(unescapeGold("\\\\boxed{004}.\\n\\nBut")).toBe("\\boxed{004}.\n\nBut");
    expect(unescapeGold("x \\neq 2")).toBe("x \\neq 2");
  });

  it("reads a chain the value parser cannot read by its last side, and leaves a readable chain alone", () => {
    expect(readGold("$1 = \\zzz = x = 0$")).toMatchObject({ ok: true, answer: "0", via: "chain_last_side" });
    expect(readGold("x = 5+5+1 = 11")).toMatchObject({ ok: true, answer: "x = 5+5+1 = 11", via: "plain" });
  });
});

describe("verify reads the gold through gold extraction", () => {
  const v = (answer: string, boxed: string) =>
    verify({ response: `<think>w</think>\\boxed{${boxed}}`, answer }, { preset: "strict" });

  it("takes a solution text's last box as the gold", () => {
    expect(v(" So the answer is: \\[ \\boxed{11111111100} \\]", "11,\\!111,\\!111,\\!100").correct).toBe(
      true,
    );
    expect(v(" So the answer is: \\[ \\boxed{11111111100} \\]", "11111111101").correct).toBe(false);
  });

  it("rejects an unreadable gold as gold_unreadable, never as a mismatch", () => {
    expect(v("\\boxed{W(n) = 1", "1")).toMatchObject({ correct: false, reason: "gold_unreadable" });
  });

  it("answers a gold of several boxes with the list of their values, in any order", () => {
    expect(v("$\\boxed{1}\\boxed{2}$", "2, 1").correct).toBe(true);
    expect(v("$\\boxed{1}\\boxed{2}$", "1").correct).toBe(false);
    expect(v("$\\boxed{1}\\boxed{2}$", "1, 2, 3")).toMatchObject({ correct: false, reason: "hedged_answer" });
  });
});

describe("a gold means the same however it is wrapped", () => {
  const table: {
    id: string;
    response: string;
    answer: string;
    preset?: "strict" | "recipe";
    judge?: boolean;
  }[] = readFileSync("tests/fixtures/verify-cases.jsonl", "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));

  it("gives every table row the same verdict with its gold bare, as math, boxed, and boxed in a solution text", () => {
    const bare = table.filter((c) => !/\$|\\boxed|\\fbox|\\\[|\\\(/.test(c.answer));
    const differ: string[] = [];
    for (const c of bare) {
      const o = { preset: c.preset ?? "strict", judge: c.judge ?? false } as const;
      const base = verify(c, o);
      for (const wrapped of [
        `$${c.answer}$`,
        `\\boxed{${c.answer}}`,
        `So the answer is: \\[ \\boxed{${c.answer}} \\]`,
      ]) {
        const v = verify({ ...c, answer: wrapped }, o);
        if (v.correct !== base.correct || v.reason !== base.reason) differ.push(`${c.id} ${wrapped}`);
      }
    }

    expect(bare.length).toBeGreaterThan(400);
    expect(differ).toEqual([]);
  });
});
