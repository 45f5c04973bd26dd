/**
 * A large generated verification workload: the kinds of answers teachers and policies give, in the
 * formats they give them, about half right. Deterministic for a given seed and size.
 */
import { seeded } from "../lib/stats.ts";

export interface MixCase {
  id: string;
  response: string;
  answer: string;
  choices?: string[];
}

export function generateMix(size: number, seed = 1): MixCase[] {
  const rand = seeded(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]) => xs[int(0, xs.length - 1)]!;
  const filler = (words: number) =>
    Array.from({ length: words }, () =>
      pick(["so", "the", "area", "is", "then", "we", "get", "x", "=", "2", "hence"]),
    ).join(" ");
  const wrap = (ans: string) => {
    const think = `<think>${filler(int(20, 400))}</think>`;
    switch (int(0, 4)) {
      case 0:
        return `${think}<answer>${ans}</answer>`;
      case 1:
        return `${think}The answer is $\\boxed{${ans}}$.`;
      case 2:
        return `${think}<answer>\\boxed{${ans}}</answer>`;
      case 3:
        return `${filler(int(10, 60))} so the answer is \\boxed{${ans}}`;
      default:
        return `${think}\n<answer> ${ans} </answer>`;
    }
  };
  const kinds: (() => { gold: string; right: string; wrong: string; choices?: string[] })[] = [
    () => {
      const n = int(-5000, 5000);
      return {
        gold: String(n),
        right: pick([String(n), `${n}.0`, `\\text{${n}}`]),
        wrong: String(n + int(1, 9)),
      };
    },
    () => {
      const [a, b] = [int(1, 40), int(2, 40)];
      return {
        gold: `\\frac{${a}}{${b}}`,
        right: pick([`${a}/${b}`, `\\dfrac{${a * 2}}{${b * 2}}`, `${a / b}`]),
        wrong: `\\frac{${a + 1}}{${b}}`,
      };
    },
    () => {
      const [a, b] = [int(1, 9), int(1, 9)];
      return {
        gold: `x^2+${a + b}x+${a * b}`,
        right: pick([`(x+${a})(x+${b})`, `x^{2} + ${a + b}x + ${a * b}`]),
        wrong: `(x+${a})(x+${b + 1})`,
      };
    },
    () => {
      const r = int(2, 12);
      return {
        gold: `${r * r}\\pi`,
        right: pick([`${r * r}\\pi`, `\\pi \\cdot ${r * r}`, (r * r * Math.PI).toFixed(4)]),
        wrong: `${2 * r}\\pi`,
      };
    },
    () => {
      const [a, b] = [int(-9, 0), int(1, 9)];
      return {
        gold: `[${a}, ${b})`,
        right: pick([`[${a},${b})`, `${a} \\le x < ${b}`]),
        wrong: `(${a}, ${b})`,
      };
    },
    () => {
      const k = int(2, 9);
      return {
        gold: `\\{-${k}, ${k}\\}`,
        right: pick([`\\{${k}, -${k}\\}`, `-${k}, ${k}`, `x = \\pm ${k}`]),
        wrong: `${k}`,
      };
    },
    () => {
      const choices = ["12", "15", "18", "21"];
      const g = int(0, 3);
      const letter = "ABCD"[g]!;
      return {
        gold: letter,
        right: pick([letter, `(${letter})`, `${letter}. ${choices[g]}`, choices[g]!]),
        wrong: "ABCD"[(g + 1) % 4]!,
        choices,
      };
    },
    () => {
      const word = pick(["red", "blue", "triangle", "photosynthesis", "Paris", "mitochondria"]);
      return {
        gold: word,
        right: pick([word, word.toUpperCase(), `the ${word}`]),
        wrong: pick(["green", "square", "London"]),
      };
    },
    () => {
      const a = int(2, 50);
      return {
        gold: `${a}\\sqrt{2}`,
        right: pick([`\\sqrt{${2 * a * a}}`, `${a}\\sqrt2`]),
        wrong: `${a}\\sqrt{3}`,
      };
    },
  ];
  const out: MixCase[] = [];
  for (let i = 0; i < size; i++) {
    const k = pick(kinds)();
    const correct = rand() < 0.5;
    let response = wrap(correct ? k.right : k.wrong);
    if (i % 997 === 0) response = `<think>${"word ".repeat(20000)}</think><answer>${k.right}</answer>`;
    if (i % 1009 === 0) response = `<think>w</think>\\boxed{${"{".repeat(3000)}`;
    const c: MixCase = { id: `mix-${i}`, response, answer: k.gold };
    if (k.choices) c.choices = k.choices;
    out.push(c);
  }
  return out;
}
