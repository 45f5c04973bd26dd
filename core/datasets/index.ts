/**
 * Dataset writers: the SFT set as chat JSONL (LLaMA-Factory / lmms-engine style: `messages` with
 * `<image>` markers and an `images` list) plus a Parquet copy with the images embedded as bytes, and
 * the RL set in verl's Parquet schema. Parquet is written in parts of bounded size, so memory stays
 * flat however large the set.
 */
import { parquetWriteBuffer } from "hyparquet-writer";
import { PNG } from "pngjs";
import type { SFT_LAYOUTS } from "../config/schema.ts";
import { sniffType } from "../images/sniff.ts";
import { type ImageRef, type Question, questionWithOptions } from "../records/index.ts";
import type { ByteStore } from "../shards/byte-store.ts";
import { ShardWriter } from "../shards/jsonl.ts";
import type { VerifiedTrace } from "../stages/verify-traces.ts";

type SchemaElement = Record<string, unknown> & { name: string };

const str = (name: string, repetition = "OPTIONAL"): SchemaElement => ({
  name,
  type: "BYTE_ARRAY",
  converted_type: "UTF8",
  repetition_type: repetition,
});
const list = (name: string, element: SchemaElement[]): SchemaElement[] => {
  const first = element[0]!;
  const isGroup = !("type" in first);
  return [
    { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
    { name: "list", repetition_type: "REPEATED", num_children: 1 },
    isGroup ? { ...first, name: "element" } : { ...first, name: "element", repetition_type: "OPTIONAL" },
    ...element.slice(1),
  ];
};
const struct = (name: string, children: SchemaElement[], childCount: number): SchemaElement[] => [
  { name, repetition_type: "OPTIONAL", num_children: childCount },
  ...children,
];
const IMAGES = list("images", [
  { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
  { name: "bytes", type: "BYTE_ARRAY", repetition_type: "OPTIONAL" },
  str("path"),
]);
const MESSAGES = (name: string) =>
  list(name, [
    { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
    str("role"),
    str("content"),
  ]);

/** verl's RL row schema (RECIPE.md "verl row"). */
export const VERL_SCHEMA: SchemaElement[] = [
  { name: "root", num_children: 7 },
  str("data_source", "REQUIRED"),
  ...MESSAGES("prompt"),
  ...IMAGES,
  str("ability"),
  ...struct("reward_model", [str("style"), str("ground_truth")], 2),
  ...struct(
    "extra_info",
    [
      { name: "index", type: "INT64", repetition_type: "OPTIONAL" },
      str("answer_type"),
      ...list("choices", [str("element")]),
      str("question_id"),
      str("question"),
    ],
    5,
  ),
  // The question's pass rate (rollouts or the source's own), under the OpenMMReasoner RL release's name.
  { name: "avg_reward", type: "DOUBLE", repetition_type: "OPTIONAL" },
];

export const SFT_SCHEMA: SchemaElement[] = [
  { name: "root", num_children: 5 },
  str("id", "REQUIRED"),
  str("source"),
  str("domain"),
  ...MESSAGES("messages"),
  ...IMAGES,
];

/**
 * The lmms-engine / OpenMMReasoner SFT layout (SOURCES.md 0a): `id` and OpenAI-style `messages`
 * whose content is a list of `text` and `image_url` items; image URLs are paths relative to the
 * dataset folder (lmms-engine's `data_folder`), images are not embedded.
 */
export const LMMS_SFT_SCHEMA: SchemaElement[] = [
  { name: "root", num_children: 2 },
  str("id", "REQUIRED"),
  ...list("messages", [
    { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
    str("role"),
    ...list("content", [
      { name: "element", repetition_type: "OPTIONAL", num_children: 3 },
      str("type"),
      str("text"),
      ...struct("image_url", [str("url")], 1),
    ]),
  ]),
];

type LmmsContent =
  | { type: "text"; text: string; image_url: null }
  | { type: "image_url"; text: null; image_url: { url: string } };

/** An SFT row in the lmms-engine layout: the same turns, the user's images as `image_url` items before its text. */
export function lmmsRow(row: ReturnType<typeof sftRow>): {
  id: string;
  messages: { role: string; content: LmmsContent[] }[];
} {
  const text = (t: string): LmmsContent => ({ type: "text", text: t, image_url: null });
  return {
    id: row.id,
    messages: row.messages.map((m) =>
      m.role === "user"
        ? {
            role: m.role,
            content: [
              ...row.images.map(
                (url): LmmsContent => ({ type: "image_url", text: null, image_url: { url } }),
              ),
              text(m.content.replaceAll("<image>", "")),
            ],
          }
        : { role: m.role, content: [text(m.content)] },
    ),
  };
}

interface ParquetImage {
  bytes: Uint8Array | null;
  path: string | null;
}

/** Buffers rows and writes a Parquet part whenever rows or image bytes pass a bound. */
export class ParquetParts {
  private rows: Record<string, unknown>[] = [];
  private bytes = 0;
  readonly parts: { key: string; rows: number }[] = [];

  constructor(
    private readonly store: ByteStore,
    private readonly keyOf: (part: number) => string,
    private readonly schema: SchemaElement[],
    private readonly maxRows = 5000,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  async add(row: Record<string, unknown>, approxBytes: number): Promise<void> {
    this.rows.push(row);
    this.bytes += approxBytes;
    if (this.rows.length >= this.maxRows || this.bytes >= this.maxBytes) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.rows.length === 0 && this.parts.length > 0) return;
    const columnData = topLevelNames(this.schema).map((name) => ({
      name,
      data: this.rows.map((r) => r[name]),
    }));
    // biome-ignore lint/suspicious/noExplicitAny: hyparquet-writer's SchemaElement type is structural
    const buffer = parquetWriteBuffer({ columnData: columnData as any, schema: this.schema as any });
    const key = this.keyOf(this.parts.length);
    await this.store.write(key, new Uint8Array(buffer), { contentType: "application/vnd.apache.parquet" });
    this.parts.push({ key, rows: this.rows.length });
    this.rows = [];
    this.bytes = 0;
  }
}

/** Names of the top-level columns of a flattened schema (after the root). */
function topLevelNames(schema: SchemaElement[]): string[] {
  const names: string[] = [];
  for (let i = 1; i < schema.length; i = skip(schema, i)) names.push(schema[i]!.name);
  return names;
}

function skip(all: SchemaElement[], i: number): number {
  const n = (all[i]!.num_children as number | undefined) ?? 0;
  let j = i + 1;
  for (let c = 0; c < n; c++) j = skip(all, j);
  return j;
}

let blank: Uint8Array | null = null;
/** A small white PNG, the placeholder image for text-only rows (RECIPE.md practical note). */
export function blankImage(): Uint8Array {
  if (!blank) {
    const png = new PNG({ width: 28, height: 28 });
    png.data.fill(255);
    blank = new Uint8Array(PNG.sync.write(png));
  }
  return blank;
}

export function imageFileName(ref: Pick<ImageRef, "sha256" | "mediaType">): string {
  return `images/${ref.sha256}.${ref.mediaType.split("/")[1]!.replace("jpeg", "jpg")}`;
}

export interface ImageSource {
  bytes(sha256: string): Promise<Uint8Array>;
}

/** The user turn as text: one `<image>` marker per image, then the question and its options. */
export function userText(q: Pick<Question, "question" | "choices">, images: number): string {
  return `${"<image>".repeat(images)}${questionWithOptions(q)}`;
}

function userTurn(trace: VerifiedTrace): { text: string; images: string[] } {
  const user = trace.messages.find((m) => m.role === "user");
  if (!user) return { text: "", images: [] };
  if (typeof user.content === "string") return { text: user.content, images: [] };
  const images = user.content.flatMap((p) => (p.type === "image" ? [p.sha256] : []));
  const text = user.content.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("\n");
  return { text: `${"<image>".repeat(images.length)}${text}`, images };
}

export type SftLayout = (typeof SFT_LAYOUTS)[number];

export interface SftRowOptions {
  systemPrompt: string;
  blankImageForTextOnly: boolean;
  mediaTypes: ReadonlyMap<string, ImageRef["mediaType"]>;
}

export const BLANK_IMAGE_PATH = "images/blank.png";

/** One SFT row: system, user (with `<image>` markers), assistant (the verified response). */
export function sftRow(trace: VerifiedTrace, options: SftRowOptions) {
  const user = userTurn(trace);
  let text = user.text;
  let images = user.images.map((sha) =>
    imageFileName({ sha256: sha, mediaType: options.mediaTypes.get(sha) ?? "image/png" }),
  );
  if (images.length === 0 && options.blankImageForTextOnly) {
    text = `<image>${text}`;
    images = [BLANK_IMAGE_PATH];
  }
  return {
    id: `${trace.questionId}:${trace.sampleIndex}`,
    source: trace.source,
    domain: trace.domain,
    messages: [
      { role: "system", content: options.systemPrompt },
      { role: "user", content: text },
      { role: "assistant", content: trace.response },
    ],
    images,
  };
}

/** Writes the SFT set, in the layouts asked for, for a stream of selected traces. */
export async function writeSftDataset(
  traces: AsyncIterable<VerifiedTrace>,
  options: SftRowOptions & {
    store: ByteStore;
    keyOf: (file: string) => string;
    images: ImageSource;
    layouts?: readonly SftLayout[];
    /** Where the chat JSONL goes. @default keyOf("sft.jsonl.gz") */
    jsonlKey?: string;
    /** The Parquet part file name for part p. @default sft-<p>.parquet */
    partName?: (p: number) => string;
    /** Write an empty Parquet file when there are no rows (a whole set: yes; one of many parts: no). @default true */
    writeEmpty?: boolean;
  },
): Promise<{
  rows: number;
  jsonl: string | null;
  parquet: string[];
  lmmsEngine: string[];
  images: number;
  responseChars: number[];
}> {
  const layouts = new Set(options.layouts ?? ["llama-factory"]);
  const jsonlKey = options.jsonlKey ?? options.keyOf("sft.jsonl.gz");
  const jsonl = layouts.has("llama-factory") ? new ShardWriter(options.store, jsonlKey) : null;
  const part = options.partName ?? ((p: number) => `sft-${String(p).padStart(5, "0")}.parquet`);
  const parquet = layouts.has("llama-factory")
    ? new ParquetParts(options.store, (p) => options.keyOf(part(p)), SFT_SCHEMA)
    : null;
  const lmms = layouts.has("lmms-engine")
    ? new ParquetParts(options.store, (p) => options.keyOf(`lmms-engine/${part(p)}`), LMMS_SFT_SCHEMA)
    : null;
  const copied = new Set<string>();
  const responseChars: number[] = [];
  let rows = 0;
  const mediaTypes = new Map(options.mediaTypes);
  for await (const trace of traces) {
    const loaded = new Map<string, Uint8Array>();
    for (const sha of userTurn(trace).images) {
      const data = await options.images.bytes(sha);
      loaded.set(sha, data);
      if (!mediaTypes.has(sha)) mediaTypes.set(sha, sniffType(data) ?? "image/png");
    }
    const row = sftRow(trace, { ...options, mediaTypes });
    await jsonl?.write(row);
    await lmms?.add(lmmsRow(row), trace.response.length);
    const embedded: ParquetImage[] = [];
    let bytes = trace.response.length;
    for (const path of row.images) {
      const data = path === BLANK_IMAGE_PATH ? blankImage() : loaded.get(path.slice(7, 71))!;
      embedded.push({ bytes: data, path });
      bytes += data.length;
      if (!copied.has(path)) {
        copied.add(path);
        await options.store.write(options.keyOf(path), data);
      }
    }
    await parquet?.add({ ...row, images: embedded }, bytes);
    responseChars.push(trace.response.length);
    rows++;
  }
  await jsonl?.close();
  if (rows > 0 || options.writeEmpty !== false) {
    await parquet?.flush();
    await lmms?.flush();
  }
  return {
    rows,
    jsonl: jsonl ? jsonlKey : null,
    parquet: parquet?.parts.map((p) => p.key) ?? [],
    lmmsEngine: lmms?.parts.map((p) => p.key) ?? [],
    images: copied.size,
    responseChars,
  };
}

/** One verl row for an RL question. */
export function verlRow(
  q: Question,
  index: number,
  systemPrompt: string,
  images: ParquetImage[],
  passRate: number,
) {
  return {
    data_source: q.source,
    prompt: [
      { role: "system", content: systemPrompt },
      { role: "user", content: userText(q, q.images.length) },
    ],
    images,
    ability: q.domain,
    reward_model: { style: "rule", ground_truth: q.answer },
    extra_info: {
      index: BigInt(index),
      answer_type: q.answerType,
      choices: q.choices ?? [],
      question_id: q.id,
      question: q.question,
    },
    avg_reward: passRate,
  };
}
