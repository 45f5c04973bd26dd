/**
 * Writes examples/sample/replay.jsonl: recorded responses for every sample question, several per
 * question and of every kind the filters act on (right in two wordings, both in the format the system
 * prompt asks for; wrong; no think block; looping; truncated), so that the replay teacher makes
 * rejection sampling and each filter visible, and every kept answer follows the system prompt.
 *   npx tsx examples/sample/record-replay.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
interface Q {
  question: string;
  answer: string;
  choices?: string[];
}
const rows: Q[] = [];
for (const f of ["sft-vqa.jsonl", "sft-text-math.jsonl", "rl-questions.jsonl"]) {
  for (const line of readFileSync(join(here, f), "utf8").split("\n")) {
    try {
      const q = JSON.parse(line) as Q;
      if (q.question && q.answer) rows.push(q);
    } catch {
      // the sample's deliberately malformed lines
    }
  }
}

function wrong(q: Q): string {
  if (q.choices?.length) return "ABCDEFGH"[("ABCDEFGH".indexOf(q.answer) + 1) % q.choices.length]!;
  const n = Number(q.answer);
  if (Number.isFinite(n)) return String(n + 1);
  return q.answer === "red" ? "blue" : "I cannot tell";
}

const out = rows.map((q, i) => {
  const ask = q.question.replace(/<image>\n?/g, "").trim();
  const think = `Let me look carefully. The question asks: ${ask.slice(0, 80)} I will work through it step by step and check the result.`;
  const responses = [
    { content: `<think>${think}</think><answer>${q.answer}</answer>`, finish_reason: "stop" },
    { content: `<think>${think} Checking once more with another method.</think>\n<answer>${q.answer}</answer>`, finish_reason: "stop" },
    { content: `<think>${think} I may have misread a value.</think><answer>${wrong(q)}</answer>`, finish_reason: "stop" },
    { content: `The answer is ${q.answer}.`, finish_reason: "stop" },
    { content: `<think>${"I add the numbers again and get the same partial sum. ".repeat(60)}</think><answer>${q.answer}</answer>`, finish_reason: "stop" },
    { content: `<think>${think} Now a long derivation that runs out of tokens`, finish_reason: "length" },
  ];
  // RL questions: vary how often the policy is right, so the pass-rate band has something to drop.
  if (i % 3 === 0) responses.splice(2, 4, responses[0]!, responses[1]!);
  return { question: ask, responses };
});
writeFileSync(join(here, "replay.jsonl"), `${out.map((o) => JSON.stringify(o)).join("\n")}\n`);
console.log(`recorded ${out.length} questions`);
