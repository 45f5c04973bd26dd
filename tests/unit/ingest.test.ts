/**
 * ingest-source on records as the public data sets and their users get them wrong: each malformed
 * kind becomes a reject with its own reason (and a detail that names the column), never a silently
 * damaged question; no question that refers to an image is written without one.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Source } from "../../core/config/schema.ts";
import { INGEST_STAGE, keys } from "../../core/layout/index.ts";
import type { Question } from "../../core/records/index.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { readShard } from "../../core/shards/jsonl.ts";
import { ingestRows, type SourceRow, textProblem } from "../../core/stages/ingest.ts";
import { runShard } from "../../core/stages/stage.ts";

const PNG = readFileSync("examples/sample/images/bar-0.png");

async function ingest(records: unknown[], source: Record<string, unknown> = {}, maxQuestionChars?: number) {
  const store = new FsStore(mkdtempSync(join(tmpdir(), "recipe-ingest-")));
  const src = Source.parse({
    name: "s",
    uri: "s.jsonl",
    format: "jsonl",
    domain: "general_vqa",
    license: "MIT",
    ...source,
  });
  async function* rows(): AsyncGenerator<SourceRow> {
    for (const [i, value] of records.entries()) yield { origin: `s.jsonl:${i + 1}`, ok: true, value };
  }
  const images = {
    load: async (ref: string) => (ref.endsWith("ok.png") ? new Uint8Array(PNG) : null),
    save: async () => undefined,
  };
  const stage = INGEST_STAGE.sft;
  await runShard(store, "r", stage, 0, (run) =>
    ingestRows(rows(), { source: src, systemPrompt: "sys", maxQuestionChars }, images, run).then(
      () => undefined,
    ),
  );
  const read = async <T>(key: string) => {
    const out: T[] = [];
    for await (const l of readShard(store, key)) if (l.ok) out.push(l.value as T);
    return out;
  };
  return {
    questions: await read<Question>(keys.shard("r", stage, 0)),
    rejects: (
      await read<{ reason: string; origin: string; detail?: string }>(keys.rejects("r", stage, 0))
    ).map((r) => [r.origin.split(":")[1], r.reason, r.detail ?? ""]),
  };
}

describe("ingest: malformed text", () => {
  it("rejects NUL and other control characters, lone surrogates and over-long questions, each with its reason", async () => {
    const { questions, rejects } = await ingest(
      [
        { question: "What is 2+2?\u0000", answer: "4" },
        { question: "What is 2+3?", answer: "5\u0007" },
        { question: "Name the shape \ud800 here.", answer: "circle" },
        { question: "x".repeat(101), answer: "1" },
        { question: "What is\tthe\r\nsum of 1 and 1?", answer: "2" },
        { question: "Which is prime?", answer: "A", choices: ["4", "6\u001b[31m"] },
      ],
      {},
      100,
    );

    expect(rejects).toEqual([
      ["1", "control_characters", 'column "question": U+0000 at character 12'],
      ["2", "control_characters", 'column "answer": U+0007 at character 1'],
      ["3", "invalid_unicode", 'column "question": lone surrogate U+D800 at character 15'],
      ["4", "question_too_long", "101 characters, over ingest.maxQuestionChars 100"],
      ["6", "control_characters", 'column "choices[1]": U+001B at character 1'],
    ]);
    // Tabs and line breaks are text.
    expect(questions.map((q) => q.answer)).toEqual(["2"]);
  });

  it("rejects a number or a list where text belongs as invalid_record, instead of coercing it", async () => {
    const { questions, rejects } = await ingest(
      [
        { question: 12345, answer: "1" },
        { question: "How many legs has a spider?", answer: 8 },
        { question: ["a", "b"], answer: "1" },
        { question: "What is 1+1?", answer: "2", response: 2 },
      ],
      { kind: "traces" },
    );

    expect(rejects).toEqual([
      ["1", "invalid_record", 'column "question" holds a number, not text'],
      ["2", "invalid_record", 'column "answer" holds a number, not text'],
      ["3", "invalid_record", 'column "question" holds a list, not text'],
      ["4", "invalid_record", 'column "response" holds a number, not text'],
    ]);
    expect(questions).toEqual([]);
  });

  it("finds the same text problems that a regular expression would, on every code unit", () => {
    for (let c = 0; c < 0x110; c++) {
      const problem = textProblem(`a${String.fromCharCode(c)}b`);
      const control = (c < 0x20 && ![0x09, 0x0a, 0x0d].includes(c)) || (c >= 0x7f && c <= 0x9f);
      expect(problem?.reason ?? null).toBe(control ? "control_characters" : null);
    }
    expect(textProblem("\ud83d\ude00 a pair is fine")).toBeNull();
    expect(textProblem("\ude00 alone")?.reason).toBe("invalid_unicode");
  });
});

describe("ingest: no silent image loss", () => {
  it("rejects a question that refers to images it does not have, or to another number of them", async () => {
    const { questions, rejects } = await ingest([
      { question: "<image>\nWhat is in the image?", answer: "a bar chart", images: [] },
      { question: "What is in the image?", answer: "a bar chart", image: "images/ok.png" },
      { question: "<image><image> Compare the two.", answer: "same", images: ["images/ok.png"] },
      { question: "<image>\nWhat is in the image?", answer: "a bar chart", images: ["images/ok.png"] },
      { question: "What colour is the bar?", answer: "blue", images: ["images/ok.png"] },
      { question: "How many sides has a triangle?", answer: "3", image: null },
    ]);

    expect(rejects).toEqual([
      ["1", "missing_image", 'the question has 1 <image> placeholder(s) and column "images" has no image'],
      [
        "2",
        "missing_image",
        'column "image" looks like images, but the source reads images from "images" (set columns.images)',
      ],
      ["3", "image_count_mismatch", "2 <image> placeholder(s), 1 image(s)"],
    ]);
    // The placeholder is not part of the question text; the image is.
    expect(questions.map((q) => [q.question, q.images.length])).toEqual([
      ["What is in the image?", 1],
      ["What colour is the bar?", 1],
      ["How many sides has a triangle?", 0],
    ]);
  });

  it("reads a singular image column when the source maps it", async () => {
    const { questions, rejects } = await ingest(
      [{ question: "What is in the image?", answer: "a bar chart", image: "images/ok.png" }],
      { columns: { images: "image" } },
    );
    expect(rejects).toEqual([]);
    expect(questions[0]?.images).toHaveLength(1);
  });
});

describe("ingest: pass rates a source carries", () => {
  it("reads a mapped pass-rate column, and rejects a row whose pass rate is missing or out of range", async () => {
    const { questions, rejects } = await ingest(
      [
        { problem: "What is 3*3?", answer: "9", avg_reward: 0.375 },
        { problem: "What is 3*4?", answer: "12", avg_reward: null },
        { problem: "What is 3*5?", answer: "15", avg_reward: 1.5 },
        { problem: "What is 3*6?", answer: "18", avg_reward: "high" },
        { problem: "What is 3*7?", answer: "21", avg_reward: "0.5" },
      ],
      { columns: { question: "problem", passRate: "avg_reward" } },
    );
    expect(rejects).toEqual([
      ["2", "missing_pass_rate", 'column "avg_reward" is empty'],
      ["3", "invalid_pass_rate", 'column "avg_reward" holds 1.5, not a number from 0 to 1'],
      ["4", "invalid_pass_rate", 'column "avg_reward" holds "high", not a number from 0 to 1'],
    ]);
    expect(questions.map((q) => q.sourcePassRate)).toEqual([0.375, 0.5]);
  });
});

describe("ingest: gold answers as data sets give them", () => {
  it("records the gold read from a solution text and how it was found, and rejects a gold it cannot read", async () => {
    const { questions, rejects } = await ingest([
      { question: "What is 9 * 4?", answer: "36" },
      { question: "Which number?", answer: " So the answer is: \\[ \\boxed{11111111100} \\]" },
      { question: "Which numbers?", answer: "$21,16$ or $11$" },
      { question: "Solve for n.", answer: "\\boxed{1} and \\boxed{-2}" },
      { question: "Which W?", answer: "\\boxed{W(n) = 1 \\text{ and } W(n) = -1" },
      { question: "Which box?", answer: "So it is \\boxed{}." },
    ]);

    expect(questions.map((q) => [q.answer, q.answerFoundBy, q.answerAsGiven])).toEqual([
      ["36", "plain", undefined],
      ["11111111100", "boxed", "So the answer is: \\[ \\boxed{11111111100} \\]"],
      ["21,16, 11", "math_segments", "$21,16$ or $11$"],
      ["1, -2", "boxes", "\\boxed{1} and \\boxed{-2}"],
    ]);
    expect(rejects).toEqual([
      ["5", "gold_unreadable", "gold_unclosed_box: a \\boxed{ in the gold is never closed"],
      ["6", "gold_unreadable", "gold_empty_box: the gold's box is empty"],
    ]);
  });
});
