/**
 * Source presets on records built in the real public schemas (shared/SOURCES.md): Parquet with the
 * real column names and types (HF Image structs, lists of paths, a column name with a space), ShareGPT
 * and OpenAI messages as JSON lines. Each preset's fixture ingests to the expected questions with
 * images, gold answers and options; a renamed column fails naming it.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { describe, expect, it } from "vitest";
import { Source } from "../../core/config/schema.ts";
import { InputContractError } from "../../core/errors.ts";
import { INGEST_STAGE, keys } from "../../core/layout/index.ts";
import type { Question } from "../../core/records/index.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { readShard } from "../../core/shards/jsonl.ts";
import { readParquetRows } from "../../core/shards/parquet.ts";
import { ingestRows, type SourceRow } from "../../core/stages/ingest.ts";
import { inlineOptions, lastBoxed, PRESETS, parseOptionList } from "../../core/stages/presets.ts";
import { runShard } from "../../core/stages/stage.ts";

const PNG = new Uint8Array(readFileSync("examples/sample/images/bar-0.png"));
const PNG2 = new Uint8Array(readFileSync("examples/sample/images/bar-1.png"));

type Col = Record<string, unknown> & { name: string };
const s = (name: string): Col => ({
  name,
  type: "BYTE_ARRAY",
  converted_type: "UTF8",
  repetition_type: "OPTIONAL",
});
const d = (name: string): Col => ({ name, type: "DOUBLE", repetition_type: "OPTIONAL" });
const hfImage = (name: string): Col[] => [
  { name, repetition_type: "OPTIONAL", num_children: 2 },
  { name: "bytes", type: "BYTE_ARRAY", repetition_type: "OPTIONAL" },
  s("path"),
];
const listOf = (name: string, element: Col[]): Col[] => [
  { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  { ...element[0]!, name: "element" },
  ...element.slice(1),
];

/** A Parquet file in a store: `schema` after the root, rows as objects. */
function parquet(schema: Col[], rows: Record<string, unknown>[]): Uint8Array {
  // Top-level column names: skip each group's descendants.
  const names: string[] = [];
  let skip = 0;
  for (const c of schema) {
    if (skip > 0) {
      skip += ((c.num_children as number | undefined) ?? 0) - 1;
      continue;
    }
    names.push(c.name);
    skip = (c.num_children as number | undefined) ?? 0;
  }
  const buffer = parquetWriteBuffer({
    // biome-ignore lint/suspicious/noExplicitAny: hyparquet-writer's SchemaElement type is structural
    schema: [{ name: "root", num_children: names.length }, ...schema] as any,
    columnData: names.map((name) => ({ name, data: rows.map((r) => r[name]) })),
  });
  return new Uint8Array(buffer);
}

async function ingestPreset(
  preset: string,
  rows: { parquet?: Uint8Array; jsonl?: unknown[] },
  extra: Record<string, unknown> = {},
) {
  const store = new FsStore(mkdtempSync(join(tmpdir(), "recipe-preset-")));
  await store.write("src/images/a.png", PNG);
  await store.write("src/images/b.png", PNG2);
  const src = Source.parse({
    name: "p",
    uri: "src/",
    format: rows.parquet ? "parquet" : "jsonl",
    domain: "general_vqa",
    license: "x",
    preset,
    ...extra,
  });
  async function* source(): AsyncGenerator<SourceRow> {
    if (rows.parquet) {
      await store.write("src/data.parquet", rows.parquet);
      let i = 0;
      for await (const value of readParquetRows(store, "src/data.parquet"))
        yield { origin: `data.parquet:${++i}`, ok: true, value };
    } else
      for (const [i, value] of rows.jsonl!.entries())
        yield { origin: `data.jsonl:${i + 1}`, ok: true, value };
  }
  const images = {
    load: async (ref: string) => {
      if (ref.startsWith("data:")) return new Uint8Array(Buffer.from(ref.split(",")[1]!, "base64"));
      return (await store.readBytes(`src/${ref}`)) ?? null;
    },
    save: async () => undefined,
  };
  const stage = INGEST_STAGE.sft;
  await runShard(store, "r", stage, 0, (run) =>
    ingestRows(source(), { source: src, systemPrompt: "sys" }, images, run).then(() => undefined),
  );
  const read = async <T>(key: string) => {
    const out: T[] = [];
    for await (const l of readShard(store, key)) if (l.ok) out.push(l.value as T);
    return out;
  };
  const questions = await read<Question>(keys.shard("r", stage, 0));
  return {
    q: questions.map((x) => ({
      question: x.question,
      answer: x.answer,
      images: x.images.length,
      ...(x.choices ? { choices: x.choices } : {}),
      ...(x.sourcePassRate !== undefined ? { passRate: x.sourcePassRate } : {}),
    })),
    rejects: (await read<{ reason: string; detail?: string }>(keys.rejects("r", stage, 0))).map((r) => [
      r.reason,
      r.detail ?? "",
    ]),
    traces: await read<{ messages: { role: string; content: unknown }[] }>(
      keys.side("r", stage, "traces", 0),
    ).catch(() => []),
  };
}

describe("source presets, on records in the real schemas", () => {
  it("llava-cot-100k: ShareGPT conversations, gold inside <CONCLUSION>, an image path", async () => {
    const r = await ingestPreset("llava-cot-100k", {
      jsonl: [
        {
          id: "x1",
          image: "images/a.png",
          conversations: [
            {
              from: "human",
              value: "How many bars are in the chart? Answer the question using a single word or phrase.",
            },
            {
              from: "gpt",
              value:
                "<SUMMARY>Count.</SUMMARY> <CAPTION>A chart.</CAPTION> <REASONING>There are 3.</REASONING> <CONCLUSION>3</CONCLUSION>",
            },
          ],
        },
      ],
    });
    expect(r.q).toEqual([{ question: "How many bars are in the chart?", answer: "3", images: 1 }]);
  });

  it("openvlthinker-sft: LLaMA-Factory messages with <image> and embedded images, gold in <answer>", async () => {
    const r = await ingestPreset(
      "openvlthinker-sft",
      {
        jsonl: [
          {
            messages: [
              { role: "user", content: "<image>Which bar is tallest?" },
              { role: "assistant", content: "<think>Compare them.</think><answer>B</answer>" },
            ],
            images: [{ bytes: Buffer.from(PNG).toString("base64"), path: null }],
          },
        ],
      },
      { kind: "traces" },
    );
    expect(r.q).toEqual([{ question: "Which bar is tallest?", answer: "B", images: 1 }]);
    expect(r.traces).toHaveLength(1);
  });

  it("mmr1-sft and miromind-m1-sft: the gold answer is the response's last \\boxed{}", async () => {
    const mmr1 = await ingestPreset("mmr1-sft", {
      jsonl: [
        {
          conversations: [
            { from: "human", value: "<image>\nWhat is the area?" },
            {
              from: "gpt",
              value: "The sides are 3 and 4, so \\boxed{\\frac{12}{1}} is wrong; the area is \\boxed{12}.",
            },
          ],
          images: ["images/a.png"],
        },
      ],
    });
    expect(mmr1.q).toEqual([{ question: "What is the area?", answer: "12", images: 1 }]);
    const m1 = await ingestPreset("miromind-m1-sft", {
      parquet: parquet(
        [s("id"), s("question"), s("response")],
        [
          {
            id: "m1",
            question: "Compute 2^{10}.",
            response: "<think>Powers of two.</think>So the answer is \\boxed{1024}.",
          },
        ],
      ),
    });
    expect(m1.q).toEqual([{ question: "Compute 2^{10}.", answer: "1024", images: 0 }]);
  });

  it("virl39k: <image> tags, \\boxed answers, image paths, and its pass rate (-1 = not annotated)", async () => {
    const r = await ingestPreset("virl39k", {
      parquet: parquet(
        [
          s("question"),
          s("answer"),
          ...listOf("image", [s("element")]),
          d("PassRate_32BTrained"),
          d("PassRate_7BBase"),
          s("category"),
          s("source"),
          s("qid"),
        ],
        [
          {
            question: "<image>\nHow many bars?",
            answer: "\\boxed{3}",
            image: ["images/a.png"],
            PassRate_32BTrained: 0.625,
            PassRate_7BBase: -1,
            category: "c",
            source: "s",
            qid: "q1",
          },
          {
            question: "<image><image>Which chart has more bars?",
            answer: "\\boxed{A}",
            image: ["images/a.png", "images/b.png"],
            PassRate_32BTrained: 0.25,
            PassRate_7BBase: 0.5,
            category: "c",
            source: "s",
            qid: "q2",
          },
          {
            question: "<image>Broken pass rate",
            answer: "\\boxed{1}",
            image: ["images/a.png"],
            PassRate_32BTrained: -1,
            PassRate_7BBase: -1,
            category: "c",
            source: "s",
            qid: "q3",
          },
          {
            question: "<image>Which two values of x?",
            answer: "\\boxed{1} and \\boxed{-2}",
            image: ["images/a.png"],
            PassRate_32BTrained: 0.5,
            PassRate_7BBase: -1,
            category: "c",
            source: "s",
            qid: "q4",
          },
        ],
      ),
    });
    expect(r.q).toEqual([
      { question: "How many bars?", answer: "3", images: 1, passRate: 0.625 },
      { question: "Which chart has more bars?", answer: "A", images: 2, passRate: 0.25 },
      // Several boxes are one multi-valued gold, not their last box.
      { question: "Which two values of x?", answer: "1, -2", images: 1, passRate: 0.5 },
    ]);
    expect(r.rejects).toEqual([["missing_pass_rate", 'column "passRate" is empty']]);
  });

  it("thinklite-vl-hard, we-math2-standard and we-math2-pro: HF Image structs (and a column name with a space)", async () => {
    const thinklite = await ingestPreset("thinklite-vl-hard", {
      parquet: parquet(
        [s("id"), s("problem"), s("answer"), ...hfImage("image")],
        [{ id: "t1", problem: "<image>What is x?", answer: "5", image: { bytes: PNG, path: "t1.png" } }],
      ),
    });
    expect(thinklite.q).toEqual([{ question: "What is x?", answer: "5", images: 1 }]);
    const pro = await ingestPreset("we-math2-pro", {
      parquet: parquet(
        [
          s("question_id"),
          s("question"),
          ...hfImage("image"),
          s("difficulty"),
          ...listOf("knowledge points", [s("element")]),
          s("answer"),
        ],
        [
          {
            question_id: "w1",
            question: "Find the angle.",
            image: { bytes: PNG, path: null },
            difficulty: "hard",
            "knowledge points": ["angles"],
            answer: "30°",
          },
          {
            question_id: "w2",
            question: "",
            image: { bytes: PNG, path: null },
            difficulty: "hard",
            "knowledge points": [],
            answer: "",
          },
        ],
      ),
    });
    expect(pro.q).toEqual([{ question: "Find the angle.", answer: "30°", images: 1 }]);
    expect(pro.rejects.map(([reason]) => reason)).toEqual(["missing_question"]);
    const standard = await ingestPreset("we-math2-standard", {
      parquet: parquet(
        [s("id"), s("question"), ...hfImage("image"), s("answer")],
        [{ id: "s1", question: "Area?", image: { bytes: PNG2, path: "x.png" }, answer: "6" }],
      ),
    });
    expect(standard.q).toEqual([{ question: "Area?", answer: "6", images: 1 }]);
  });

  it("mmk12: fill-in-the-blank train rows, and test rows with the options inline as A. ... lines", async () => {
    const r = await ingestPreset("mmk12", {
      parquet: parquet(
        [s("id"), s("question"), s("answer"), s("subject"), ...hfImage("image")],
        [
          {
            id: "k1",
            question: "The speed is ____ m/s.",
            answer: "12",
            subject: "physics",
            image: { bytes: PNG, path: "k1.png" },
          },
          {
            id: "k2",
            question: "Which gas is produced?\nA. Oxygen\nB. Hydrogen\nC. Nitrogen\nD. Helium",
            answer: "B",
            subject: "chemistry",
            image: { bytes: PNG, path: "k2.png" },
          },
        ],
      ),
    });
    expect(r.q).toEqual([
      { question: "The speed is ____ m/s.", answer: "12", images: 1 },
      {
        question: "Which gas is produced?",
        answer: "B",
        images: 1,
        choices: ["Oxygen", "Hydrogen", "Nitrogen", "Helium"],
      },
    ]);
  });

  it("puzzlevqa and algopuzzlevqa: serialized options and option-text answers become letters", async () => {
    const r = await ingestPreset("puzzlevqa", {
      parquet: parquet(
        [
          ...hfImage("image"),
          s("category"),
          s("question"),
          s("options"),
          s("answer"),
          s("caption"),
          s("explanation"),
          s("deduction"),
        ],
        [
          {
            image: { bytes: PNG, path: null },
            category: "colors",
            question: "What is the missing color?",
            options: "['red', 'green', 'blue', 'yellow']",
            answer: "blue",
            caption: "",
            explanation: "",
            deduction: "",
          },
          {
            image: { bytes: PNG, path: null },
            category: "size",
            question: "Which size?",
            options: "['small', 'large']",
            answer: "medium",
            caption: "",
            explanation: "",
            deduction: "",
          },
        ],
      ),
    });
    expect(r.q).toEqual([
      {
        question: "What is the missing color?",
        answer: "C",
        images: 1,
        choices: ["red", "green", "blue", "yellow"],
      },
    ]);
    expect(r.rejects).toEqual([["answer_not_in_options", 'answer "medium" is none of the options']]);
    const algo = await ingestPreset("algopuzzlevqa", {
      jsonl: [
        { image: "images/a.png", question: "What time does the clock show?", answer: "4:23" },
        { image: "images/b.png", question: "How many moves?", answer: "3", options: ["1", "2", "3", "4"] },
      ],
    });
    expect(algo.q).toEqual([
      { question: "What time does the clock show?", answer: "4:23", images: 1 },
      { question: "How many moves?", answer: "C", images: 1, choices: ["1", "2", "3", "4"] },
    ]);
  });

  it("openmmreasoner-rl-74k and tqa: verl rows with <image> prompts, embedded images, ground truths and avg_reward", async () => {
    const verl = [
      ...listOf("prompt", [
        { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
        s("role"),
        s("content"),
      ]),
      ...listOf("images", [
        { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
        { name: "bytes", type: "BYTE_ARRAY", repetition_type: "OPTIONAL" },
        s("path"),
      ]),
      { name: "reward_model", repetition_type: "OPTIONAL", num_children: 2 },
      s("ground_truth"),
      s("style"),
      s("data_source"),
      d("avg_reward"),
    ];
    const rows = [
      {
        prompt: [{ role: "user", content: "<image>How many bars?" }],
        images: [{ bytes: PNG, path: null }],
        reward_model: { ground_truth: "\\boxed{3}", style: "rule" },
        data_source: "virl39k",
        avg_reward: 0.5,
      },
      {
        prompt: [{ role: "user", content: "<image>Which lesson?" }],
        images: [{ bytes: PNG2, path: null }],
        reward_model: { ground_truth: "B", style: "rule" },
        data_source: "tqa_train",
        avg_reward: 0.875,
      },
    ];
    for (const preset of ["openmmreasoner-rl-74k", "tqa"]) {
      const r = await ingestPreset(preset, { parquet: parquet(verl, rows) });
      expect(r.q).toEqual([
        { question: "How many bars?", answer: "3", images: 1, passRate: 0.5 },
        { question: "Which lesson?", answer: "B", images: 1, passRate: 0.875 },
      ]);
    }
  });

  it("openmmreasoner-sft-874k: OpenAI messages with text / image_url items, as traces", async () => {
    const r = await ingestPreset(
      "openmmreasoner-sft-874k",
      {
        jsonl: [
          {
            id: "llava_cot_1_roll0",
            messages: [
              { role: "system", content: [{ type: "text", text: "You are a helpful assistant." }] },
              {
                role: "user",
                content: [
                  { type: "image_url", image_url: { url: "images/a.png" } },
                  { type: "text", text: "How many bars?" },
                ],
              },
              {
                role: "assistant",
                content: [{ type: "text", text: "<think>Three bars.</think><answer>3</answer>" }],
              },
            ],
          },
        ],
      },
      { kind: "traces" },
    );
    expect(r.q).toEqual([{ question: "How many bars?", answer: "3", images: 1 }]);
    expect(r.traces).toHaveLength(1);
  });

  it("fails a source whose first record lacks a column its preset needs, naming it", async () => {
    const renamed = ingestPreset("we-math2-pro", {
      parquet: parquet(
        [s("question_id"), s("prompt"), ...hfImage("image"), s("answer")],
        [{ question_id: "w1", prompt: "Find x.", image: { bytes: PNG, path: null }, answer: "2" }],
      ),
    });
    await expect(renamed).rejects.toThrow(InputContractError);
    await expect(renamed).rejects.toThrow(
      /preset we-math2-pro: column "question" not found \(columns: question_id, prompt, image, answer\)/,
    );
  });

  it("has a reader for every data set the recipe names", () => {
    expect(Object.keys(PRESETS).sort()).toEqual(
      [
        "llava-cot-100k",
        "openvlthinker-sft",
        "mmr1-sft",
        "we-math2-sft",
        "miromind-m1-sft",
        "virl39k",
        "thinklite-vl-hard",
        "we-math2-standard",
        "we-math2-pro",
        "mmk12",
        "puzzlevqa",
        "algopuzzlevqa",
        "tqa",
        "openmmreasoner-sft-874k",
        "openmmreasoner-rl-74k",
      ].sort(),
    );
  });
});

describe("preset parsing helpers", () => {
  it("reads the last \\boxed{} with nested braces, Python-literal option lists and inline options", () => {
    expect(lastBoxed("first \\boxed{1}, then \\boxed{\\frac{1}{2}}")).toBe("\\frac{1}{2}");
    expect(lastBoxed("no box")).toBeNull();
    expect(parseOptionList("['it\\'s', \"b, c\", 'd']")).toEqual(["it's", "b, c", "d"]);
    expect(parseOptionList('["x", "y"]')).toEqual(["x", "y"]);
    expect(parseOptionList("red, green")).toBeNull();
    expect(inlineOptions("Pick one:\nA. 1\nB. 2\nC) 3")).toEqual({
      question: "Pick one:",
      choices: ["1", "2", "3"],
    });
    expect(inlineOptions("Only A. here")).toBeNull();
  });
});

describe("a preset in run.json", () => {
  it("is refused beside a columns mapping, naming both", async () => {
    const { validateRunConfig } = await import("../../core/config/index.ts");
    const result = validateRunConfig({
      runId: "p",
      sources: {
        rl: [
          {
            name: "v",
            uri: "v/",
            format: "parquet",
            preset: "virl39k",
            domain: "general_vqa",
            license: "x",
            columns: { question: "q" },
          },
          {
            name: "w",
            uri: "w/",
            format: "parquet",
            preset: "no-such-preset",
            domain: "general_vqa",
            license: "x",
          },
        ],
      },
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.path)).toEqual(["$.sources.rl[0].columns", "$.sources.rl[1].preset"]);
    expect(result.problems[0]!.message).toContain('preset "virl39k" reads its own columns');
  });
});
