import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { extractAnswer, formatScore, verify } from "../../core/verify/index.ts";

const token = fc.constantFrom(
  "<think>",
  "</think>",
  "<answer>",
  "</answer>",
  "\\boxed{",
  "\\fbox{",
  "{",
  "}",
  "\\{",
  "\\}",
  "\\frac",
  "\\sqrt",
  "\\left(",
  "\\right)",
  "^",
  "_",
  "$",
  "\\text{",
  "(",
  ")",
  "[",
  "]",
  ",",
  "=",
  "<",
  "\\le",
  "\\pm",
  " or ",
  "x",
  "2",
  "-",
  ".",
  "%",
  "\u00b0",
  "\u2212",
  "\n",
  " ",
);
const adversarialText = fc
  .array(fc.oneof(token, fc.string({ maxLength: 4 })), { maxLength: 60 })
  .map((t) => t.join(""));

describe("verifier properties", () => {
  it("never throws on arbitrary strings, in either preset", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), adversarialText),
        adversarialText,
        (response, gold) => {
          for (const preset of ["strict", "recipe"] as const) {
            extractAnswer(response, preset);
            formatScore(response, preset);
            const v = verify({ response, answer: gold }, { preset, judge: true });
            expect(v.reason).toMatch(/^[a-z][a-z0-9_]*$/);
            expect([0, 0.8, 1]).toContain(v.format);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("gives the same verdict for the same input", () => {
    fc.assert(
      fc.property(adversarialText, adversarialText, (response, gold) => {
        expect(verify({ response, answer: gold })).toEqual(verify({ response, answer: gold }));
      }),
      { numRuns: 500 },
    );
  });

  it("never treats anything inside the think block as the answer under strict", () => {
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 1000 }), fc.string(), (n, filler) => {
        const clean = filler.replace(/<\/?(?:think|answer)>|\\boxed|\\fbox/g, "");
        const response = `<think>${clean} \\boxed{${n}} <answer>${n}</answer></think>`;
        const v = verify({ response, answer: String(n) });
        expect(v.correct).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

/** Answers with their meaning fixed, and rewrites that must not change it. */
const integer = fc.integer({ min: -100000, max: 100000 }).map(String);
const fraction = fc
  .tuple(fc.integer({ min: -50, max: 50 }), fc.integer({ min: 1, max: 50 }))
  .map(([a, b]) => `\\frac{${a}}{${b}}`);
const decimal = fc
  .tuple(fc.integer({ min: -999, max: 999 }), fc.integer({ min: 1, max: 999 }))
  .map(([a, b]) => `${a}.${String(b).padStart(3, "0")}`);
const polynomial = fc
  .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: -9, max: 9 }), fc.integer({ min: -9, max: 9 }))
  .map(([a, b, c]) => `${a}x^{2}${b < 0 ? "-" : "+"}${Math.abs(b)}x${c < 0 ? "-" : "+"}${Math.abs(c)}`);
const radical = fc
  .tuple(fc.integer({ min: 1, max: 9 }), fc.constantFrom(2, 3, 5, 7))
  .map(([a, r]) => `${a}\\sqrt{${r}}`);
const interval = fc
  .tuple(
    fc.integer({ min: -20, max: 0 }),
    fc.integer({ min: 1, max: 20 }),
    fc.constantFrom("(", "["),
    fc.constantFrom(")", "]"),
  )
  .map(([a, b, o, c]) => `${o}${a}, ${b}${c}`);
const set = fc
  .uniqueArray(fc.integer({ min: -30, max: 30 }), { minLength: 2, maxLength: 5 })
  .map((xs) => `\\{${xs.join(", ")}\\}`);
const answer = fc.oneof(integer, fraction, decimal, polynomial, radical, interval, set);

/** Rewrites of the content: spacing, fraction and bracket commands, minus signs, exponent braces. */
const contentRewrites: ((s: string) => string)[] = [
  (s) => s,
  (s) => ` ${s.replaceAll(",", " , ")} `,
  (s) => s.replaceAll("\\frac", "\\dfrac"),
  (s) => s.replaceAll("\\frac", "\\tfrac"),
  (s) =>
    s
      .replaceAll("(", "\\left(")
      .replaceAll(")", "\\right)")
      .replaceAll("[", "\\left[")
      .replaceAll("]", "\\right]"),
  (s) => s.replaceAll("-", "\u2212"),
  (s) => s.replaceAll("^{2}", "^2"),
  (s) => s.replaceAll("\\sqrt{", "\\sqrt {"),
];
/** Rewrites around the answer: delimiters, boxes, labels, a trailing period. */
const wrapperRewrites: ((s: string) => string)[] = [
  (s) => s,
  (s) => `$${s}$`,
  (s) => `\\(${s}\\)`,
  (s) => `\\boxed{${s}}`,
  (s) => `${s}.`,
  (s) => `The answer is ${s}`,
  (s) => (/^[\d.\-\\{}a-z^+ \u2212]+$/.test(s) && !s.includes("\\{") ? `x = ${s}` : s),
  (s) => (/^-?\d+(?:\.\d+)?$/.test(s) ? `\\text{${s}}` : s),
];

describe("normalization-preserving rewrites", () => {
  it("an answer always matches itself after any rewrite that keeps its meaning", () => {
    fc.assert(
      fc.property(
        answer,
        fc.nat(contentRewrites.length - 1),
        fc.nat(wrapperRewrites.length - 1),
        (gold, i, j) => {
          const written = wrapperRewrites[j]!(contentRewrites[i]!(gold));
          const v = verify({ response: `<think>work</think><answer>${written}</answer>`, answer: gold });
          expect({ written, correct: v.correct, reason: v.reason }).toMatchObject({ correct: true });
        },
      ),
      { numRuns: 3000 },
    );
  });
});
