/**
 * Source presets: readers for the public data sets the recipe uses, in their real on-disk schemas
 * (shared/SOURCES.md). A preset turns one raw record into the canonical fields ingest reads
 * (`question`, `answer`, `images`, `choices`, `response`, `passRate`, `id`) or says why it cannot.
 * Data plus small parsing functions, in one place; each is documented in docs/run-config.md.
 *
 * Where a schema fact is inferred rather than seen, the preset says so (`inferred`), and ingest
 * checks the preset's `required` columns on the first record: a source whose columns differ fails
 * with a message naming the missing column, never a silent default.
 */

/** What a preset hands to ingest: the canonical columns. */
export interface CanonicalRow {
  question?: unknown;
  answer?: unknown;
  images?: unknown;
  choices?: string[];
  response?: unknown;
  passRate?: unknown;
  id?: unknown;
}

export type PresetResult = CanonicalRow | { reject: string; detail: string };

export interface Preset {
  /** The Hugging Face data set (or release config) it reads. */
  dataset: string;
  /** What a record is: a question to distill, or a trace with its own response. */
  rows: "questions" | "traces" | "questions or traces";
  /** Files: the table, and where its images live. */
  layout: string;
  /** The table's file format: a source with this preset need not say it. */
  format: "jsonl" | "parquet";
  /** Columns every record must have; checked on the first record read. */
  required: string[];
  /** Schema facts taken on trust (SOURCES.md [I]); empty when every fact was seen. */
  inferred: string;
  /** Whether records carry a pass rate (`rl.passRateFrom: "source"` uses it). */
  passRate: boolean;
  read(row: Record<string, unknown>): PresetResult;
}

type Row = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** Text inside the last `\boxed{...}` (braces balanced), or null. */
export function lastBoxed(text: string): string | null {
  const at = text.lastIndexOf("\\boxed{");
  if (at < 0) return null;
  let depth = 0;
  for (let i = at + 6; i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return text.slice(at + 7, i).trim();
  }
  return null;
}

function tag(text: string, name: string): string | null {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`, "i").exec(text);
  return m ? m[1]!.trim() : null;
}

/** Options given as a serialized list (`"['1', '2']"` or JSON). */
export function parseOptionList(v: unknown): string[] | null {
  if (Array.isArray(v)) return v.every((x) => typeof x === "string") ? (v as string[]) : null;
  const s = str(v)?.trim();
  if (!s?.startsWith("[") || !s.endsWith("]")) return null;
  try {
    const parsed = JSON.parse(s) as unknown;
    if (Array.isArray(parsed)) return parsed.map(String);
  } catch {
    // A Python literal: quoted items, either quote, backslash escapes.
  }
  const items = [...s.slice(1, -1).matchAll(/\s*(['"])((?:\\.|(?!\1).)*)\1\s*(?:,|$)/gs)].map((m) =>
    m[2]!.replace(/\\(.)/g, "$1"),
  );
  return items.length > 0 ? items : null;
}

/** Options written in the question as `A. ...` lines: the options, and the question without them. */
export function inlineOptions(question: string): { question: string; choices: string[] } | null {
  const lines = question.split("\n");
  const opts: string[] = [];
  const rest: string[] = [];
  for (const line of lines) {
    const m = /^\s*\(?([A-H])[.):]\s*(.+)$/.exec(line);
    if (m && m[1] === String.fromCharCode(65 + opts.length)) opts.push(m[2]!.trim());
    else rest.push(line);
  }
  return opts.length >= 2 ? { question: rest.join("\n").trim(), choices: opts } : null;
}

/** An answer given as option text (PuzzleVQA), as its letter. */
function letterOf(answer: unknown, choices: string[]): PresetResult | string {
  const a = str(answer)?.trim();
  const i = a === undefined ? -1 : choices.findIndex((c) => c.trim() === a);
  if (i < 0)
    return {
      reject: "answer_not_in_options",
      detail: `answer ${JSON.stringify(answer)} is none of the options`,
    };
  return String.fromCharCode(65 + i);
}

/** A puzzle row whose answer is one of its options' text: the answer as a letter. */
function puzzle(row: Row, choices: string[]): PresetResult {
  const letter = letterOf(row.answer, choices);
  if (typeof letter !== "string") return letter;
  return { question: row.question, answer: letter, images: row.image, choices };
}

/** ShareGPT `conversations`: the first human turn and the first gpt turn after it. */
function shareGpt(row: Row): { human?: string; gpt?: string } {
  const turns = Array.isArray(row.conversations) ? (row.conversations as Row[]) : [];
  const h = turns.findIndex((t) => t.from === "human");
  return {
    human: h >= 0 ? str(turns[h]!.value) : undefined,
    gpt: str(turns.slice(h + 1).find((t) => t.from === "gpt")?.value),
  };
}

/** Chat `messages` with string contents (LLaMA-Factory, ms-swift). */
function chat(row: Row, key = "messages"): { user?: string; assistant?: string } {
  const msgs = Array.isArray(row[key]) ? (row[key] as Row[]) : [];
  return {
    user: str(msgs.find((m) => m.role === "user")?.content),
    assistant: str(msgs.find((m) => m.role === "assistant")?.content),
  };
}

/** OpenAI `messages` whose contents are `text` / `image_url` items (lmms-engine, the SFT release). */
function openAi(row: Row): { user?: string; assistant?: string; images: string[] } {
  const msgs = Array.isArray(row.messages) ? (row.messages as Row[]) : [];
  const parts = (role: string) =>
    msgs
      .filter((m) => m.role === role)
      .flatMap((m) =>
        Array.isArray(m.content) ? (m.content as Row[]) : [{ type: "text", text: m.content }],
      );
  const text = (role: string) => {
    const t = parts(role)
      .filter((p) => p.type === "text")
      .map((p) => str(p.text) ?? "")
      .join("\n")
      .trim();
    return t || undefined;
  };
  const images = parts("user")
    .filter((p) => p.type === "image_url")
    .map((p) => str((p.image_url as Row | undefined)?.url) ?? "");
  return { user: text("user"), assistant: text("assistant"), images };
}

/** verl RL rows (the RL release and its configs): prompt, images, reward_model, avg_reward. */
function verlRow(row: Row): PresetResult {
  const prompt = Array.isArray(row.prompt) ? (row.prompt as Row[]) : [];
  return {
    question: prompt.find((m) => m.role === "user")?.content,
    // Boxed or not, one box or several: ingest reads the gold (core/verify/gold.ts).
    answer: (row.reward_model as Row | undefined)?.ground_truth,
    images: row.images,
    passRate: typeof row.avg_reward === "number" ? row.avg_reward : undefined,
  };
}

const VERL_REQUIRED = ["prompt", "images", "reward_model"];

/** A reader for a data set whose fields are plain columns: which column holds what. */
function plainColumns(map: { id: string; question: string; answer: string; images: string }) {
  return (row: Row): PresetResult => ({
    id: row[map.id],
    question: row[map.question],
    answer: row[map.answer],
    images: row[map.images],
  });
}

export const PRESETS: Record<string, Preset> = {
  "llava-cot-100k": {
    dataset: "Xkev/LLaVA-CoT-100k",
    format: "jsonl",
    rows: "questions",
    layout:
      "`train.jsonl`; images in `image.zip` beside it (the joined `image.zip.part-*`), read in place, or its unzipped tree (`image` is a path relative to the JSONL)",
    required: ["conversations", "image"],
    inferred:
      "questions may or may not keep the `<image>` tag (both are handled); multi-turn rows use their first exchange",
    passRate: false,
    read(row) {
      const { human, gpt } = shareGpt(row);
      return {
        id: row.id,
        question: human,
        answer: gpt === undefined ? undefined : tag(gpt, "CONCLUSION"),
        images: row.image,
      };
    },
  },
  "openvlthinker-sft": {
    dataset: "ydeng9/OpenVLThinker-sft-iter3",
    format: "parquet",
    rows: "questions or traces",
    layout: "LLaMA-Factory Parquet: `messages` (user/assistant) and embedded `images`",
    required: ["messages", "images"],
    inferred: "the assistant turn ends in `<answer>...</answer>`; images are HF Image structs",
    passRate: false,
    read(row) {
      const { user, assistant } = chat(row);
      return {
        question: user,
        answer: assistant === undefined ? undefined : tag(assistant, "answer"),
        response: assistant,
        images: row.images,
      };
    },
  },
  "mmr1-sft": {
    dataset: "MMR1/MMR1-SFT",
    format: "jsonl",
    rows: "questions or traces",
    layout: "`sft.json` converted to JSON lines; images from the tar partitions, paths relative to the file",
    required: ["conversations"],
    inferred: "image paths in `image` or `images`; the final answer is the last `\\boxed{}` of the response",
    passRate: false,
    read(row) {
      const { human, gpt } = shareGpt(row);
      return {
        id: row.id,
        question: human,
        answer: gpt === undefined ? undefined : lastBoxed(gpt),
        response: gpt,
        images: row.images ?? row.image,
      };
    },
  },
  "we-math2-sft": {
    dataset: "We-Math/We-Math2.0-SFT",
    format: "jsonl",
    rows: "questions or traces",
    layout: "ms-swift JSON lines (`mathbook_sft.jsonl`): `messages` and `images` paths",
    required: ["messages"],
    inferred:
      "the whole schema (ms-swift `messages`/`images`); the answer is the last `\\boxed{}` or `<answer>`",
    passRate: false,
    read(row) {
      const { user, assistant } = chat(row);
      const answer = assistant === undefined ? undefined : (tag(assistant, "answer") ?? lastBoxed(assistant));
      return { question: user, answer, response: assistant, images: row.images ?? [] };
    },
  },
  "miromind-m1-sft": {
    dataset: "miromind-ai/MiroMind-M1-SFT-719K",
    format: "parquet",
    rows: "questions or traces",
    layout:
      "Parquet: `id`, `question`, `response` (text only). No answer column: the gold answer is the response's own last `\\boxed{}`, so as traces every response verifies against itself; use it as questions for the teacher",
    required: ["id", "question", "response"],
    inferred: "",
    passRate: false,
    read(row) {
      const response = str(row.response);
      return {
        id: row.id,
        question: row.question,
        answer: response === undefined ? undefined : lastBoxed(response),
        response,
        images: [],
      };
    },
  },
  virl39k: {
    dataset: "TIGER-Lab/ViRL39K",
    format: "parquet",
    rows: "questions",
    layout:
      "`39Krelease.parquet`; `images.zip` beside it, read in place, or unzipped (`image` lists paths such as `images/<qid>-0.jpg`)",
    required: ["question", "answer", "image", "PassRate_32BTrained"],
    inferred: "",
    passRate: true,
    read(row) {
      const rate = row.PassRate_32BTrained;
      return {
        id: row.qid,
        question: row.question,
        // "all answers are with \boxed{}", some with several: ingest reads the gold (core/verify/gold.ts).
        answer: row.answer,
        images: row.image,
        passRate: typeof rate === "number" && rate < 0 ? null : rate,
      };
    },
  },
  "thinklite-vl-hard": {
    dataset: "russwang/ThinkLite-VL-hard-11k",
    format: "parquet",
    rows: "questions",
    layout:
      "`ThinkLite-VL-Hard-11k.parquet`: `id`, `problem`, `answer`, `image` (embedded bytes or an HF Image struct)",
    required: ["problem", "answer", "image"],
    inferred: "`problem` carries an `<image>` tag; answers are plain",
    passRate: false,
    read: plainColumns({ id: "id", question: "problem", answer: "answer", images: "image" }),
  },
  "we-math2-standard": {
    dataset: "We-Math/We-Math2.0-Standard",
    format: "parquet",
    rows: "questions",
    layout: "`data/standard-*.parquet` (split `standard`): `id`, `question`, `image` (HF Image), `answer`",
    required: ["question", "image", "answer"],
    inferred: "",
    passRate: false,
    read: plainColumns({ id: "id", question: "question", answer: "answer", images: "image" }),
  },
  "we-math2-pro": {
    dataset: "We-Math/We-Math2.0-Pro",
    format: "parquet",
    rows: "questions",
    layout:
      "Parquet (split `pro`): `question_id`, `question`, `image` (HF Image), `answer`, `knowledge points`",
    required: ["question", "image", "answer"],
    inferred: "",
    passRate: false,
    read: plainColumns({ id: "question_id", question: "question", answer: "answer", images: "image" }),
  },
  mmk12: {
    dataset: "FanqingM/MMK12",
    format: "parquet",
    rows: "questions",
    layout: "`data/{train,test}-*.parquet`: `id`, `question`, `answer`, `subject`, `image` (HF Image)",
    required: ["question", "answer", "image"],
    inferred: "",
    passRate: false,
    read(row) {
      // The test split is multiple choice with the options inline as `A. ...` lines.
      const q = str(row.question);
      const inline =
        q !== undefined && /^[A-H]$/.test(str(row.answer)?.trim() ?? "") ? inlineOptions(q) : null;
      return {
        id: row.id,
        question: inline?.question ?? row.question,
        answer: row.answer,
        images: row.image,
        choices: inline?.choices,
      };
    },
  },
  puzzlevqa: {
    dataset: "declare-lab/PuzzleVQA",
    format: "parquet",
    rows: "questions",
    layout:
      "`data/train-*.parquet`: `image` (HF Image), `question`, `options` (a serialized list), `answer` (option text)",
    required: ["image", "question", "options", "answer"],
    inferred: "`answer` is one of the options, word for word",
    passRate: false,
    read(row) {
      const choices = parseOptionList(row.options);
      if (!choices)
        return { reject: "invalid_choices", detail: `options ${JSON.stringify(row.options)} is not a list` };
      return puzzle(row, choices);
    },
  },
  algopuzzlevqa: {
    dataset: "declare-lab/AlgoPuzzleVQA",
    format: "jsonl",
    rows: "questions",
    layout:
      "the GitHub JSON per puzzle (as JSON lines) or its Arrow export: `image`, `question`, `answer`, optional `options`",
    required: ["image", "question", "answer"],
    inferred: "the Arrow columns match the GitHub JSON's",
    passRate: false,
    read(row) {
      const choices = row.options === undefined || row.options === null ? null : parseOptionList(row.options);
      if (!choices) return { question: row.question, answer: row.answer, images: row.image };
      return puzzle(row, choices);
    },
  },
  tqa: {
    dataset: "OpenMMReasoner/OpenMMReasoner-RL-74K (config tqa_train)",
    format: "parquet",
    rows: "questions",
    layout: "verl Parquet: `prompt`, `images` (embedded), `reward_model`, `data_source`, `avg_reward`",
    required: VERL_REQUIRED,
    inferred: "",
    passRate: true,
    read: verlRow,
  },
  "openmmreasoner-rl-74k": {
    dataset: "OpenMMReasoner/OpenMMReasoner-RL-74K",
    format: "parquet",
    rows: "questions",
    layout:
      "verl Parquet per config: `prompt` (user text with `<image>`), `images` (embedded), `reward_model.ground_truth`, `avg_reward` (not in `validation`)",
    required: VERL_REQUIRED,
    inferred: "the user turn is the question; ground truths may be `\\boxed{}`",
    passRate: true,
    read: verlRow,
  },
  "openmmreasoner-sft-874k": {
    dataset: "OpenMMReasoner/OpenMMReasoner-SFT-874K",
    format: "parquet",
    rows: "questions or traces",
    layout:
      "Parquet per config: `id`, OpenAI `messages` (`text` / `image_url` items, paths relative to the images folder beside the file)",
    required: ["id", "messages"],
    inferred: "a system turn and `<think>...</think><answer>...</answer>` assistant turns",
    passRate: false,
    read(row) {
      const m = openAi(row);
      return {
        id: row.id,
        question: m.user,
        answer: m.assistant === undefined ? undefined : tag(m.assistant, "answer"),
        response: m.assistant,
        images: m.images,
      };
    },
  },
};

export const PRESET_NAMES = Object.keys(PRESETS) as [string, ...string[]];

/** The canonical column names ingest reads from a preset's rows. */
export const PRESET_COLUMNS = {
  question: "question",
  answer: "answer",
  images: "images",
  choices: "choices",
  response: "response",
  id: "id",
} as const;

/** The required columns a record lacks (checked on a source's first record). */
export function missingColumns(preset: Preset, row: Row): string[] {
  return preset.required.filter((c) => !(c in row));
}
