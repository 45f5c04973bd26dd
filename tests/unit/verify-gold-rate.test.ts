/**
 * The gold-parse rate per preset (bench/verifier/gold-rate.ts) over records in each preset's real
 * schema: every preset's golds are read, and only the broken ones are unreadable.
 */
import { describe, expect, it } from "vitest";
import { goldRates } from "../../bench/verifier/gold-rate.ts";
import { readGoldKind } from "../../core/verify/index.ts";

describe("gold-parse rate", () => {
  it("reads a value, text, or nothing from a gold, and says how it was found", () => {
    expect(readGoldKind("\\boxed{1} and \\boxed{-2}")).toEqual({
      kind: "value",
      via: "boxes",
      value: "list",
    });
    expect(readGoldKind("$1\\leq|z|\\leq \\frac{3}{2}$")).toEqual({
      kind: "value",
      via: "math_segment",
      value: "union",
    });
    expect(readGoldKind("\\boxed{B}")).toEqual({ kind: "value", via: "boxed", value: "choice" });
    expect(readGoldKind("the moon")).toEqual({ kind: "text", via: "plain" });
    expect(readGoldKind("\\boxed{2\\sqrt{2}")).toEqual({ kind: "unreadable", reason: "gold_unclosed_box" });
  });

  it("covers every preset, and finds unreadable only the two broken ViRL39K golds of the fixtures", () => {
    const rates = goldRates();

    expect(rates.map((r) => r.preset).sort()).toEqual(
      [
        "algopuzzlevqa",
        "llava-cot-100k",
        "miromind-m1-sft",
        "mmk12",
        "mmr1-sft",
        "openmmreasoner-rl-74k",
        "openmmreasoner-sft-874k",
        "openvlthinker-sft",
        "puzzlevqa",
        "thinklite-vl-hard",
        "tqa",
        "virl39k",
        "we-math2-pro",
        "we-math2-sft",
        "we-math2-standard",
      ].sort(),
    );
    expect(rates.filter((r) => r.unreadable > 0).map((r) => [r.preset, r.unreadableReasons])).toEqual([
      ["virl39k", { gold_unclosed_box: 1, gold_empty_box: 1 }],
    ]);
    expect(rates.every((r) => r.noAnswer === 0)).toBe(true);
  });
});
