/**
 * Columns a source has and its mapping does not read, found before anything runs: `recipe validate`
 * warns when the first record of a local source has no column under a mapped name (`columns.images`
 * is "images") but one that looks like it (`image`): left as is, its rows would be text-only or fail
 * as missing their question or answer. Sources with a preset are skipped (the preset knows their
 * schema and checks it on the first rows).
 */
import { createReadStream, existsSync } from "node:fs";
import { dirname, relative } from "node:path";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import { parquetMetadataAsync, parquetSchema } from "hyparquet";
import type { RunConfig, Source } from "../core/config/schema.ts";
import { FsStore } from "../core/shards/fs-store.ts";
import { storeAsyncBuffer } from "../core/shards/parquet.ts";
import { filesUnder } from "./source-counts.ts";
import { localSourcePath } from "./sources.ts";

/** What a column name suggests, by field of the mapping. */
const LOOKS_LIKE: Record<"question" | "answer" | "images" | "response", RegExp> = {
  question: /^(question|questions|problem|prompt|query|instruction|input)$/i,
  answer: /^(answer|answers|gold|gold_answer|ground_truth|gt|solution|label|final_answer|target)$/i,
  images: /^(image|images|img|imgs|image_path|image_paths|picture|figure|images_path)$/i,
  response: /^(response|responses|output|completion|reasoning|rationale)$/i,
};

async function firstColumns(file: string, format: Source["format"]): Promise<string[] | null> {
  if (format === "parquet") {
    const store = new FsStore(dirname(file));
    const meta = await parquetMetadataAsync(await storeAsyncBuffer(store, relative(dirname(file), file)));
    return parquetSchema(meta).children.map((c) => c.element.name);
  }
  const input = createReadStream(file);
  const lines = createInterface({ input: file.endsWith(".gz") ? input.pipe(createGunzip()) : input });
  try {
    for await (const line of lines) {
      if (line.trim() === "") continue;
      const value = JSON.parse(line) as unknown;
      return value && typeof value === "object" && !Array.isArray(value) ? Object.keys(value) : null;
    }
  } catch {
    return null; // not JSON: ingest rejects such lines with their reason
  } finally {
    lines.close();
    input.destroy();
  }
  return null;
}

export async function sourceColumnWarnings(config: RunConfig, configPath: string): Promise<string[]> {
  const warnings: string[] = [];
  for (const branch of ["sft", "rl"] as const) {
    for (const [i, source] of config.sources[branch].entries()) {
      if (source.preset) continue;
      const path = localSourcePath(source.uri, configPath);
      if (path === null || !existsSync(path)) continue;
      const file = filesUnder(path, source.format)[0];
      if (!file) continue;
      const columns = await firstColumns(file, source.format);
      if (!columns) continue;
      const fields = (["question", "answer", "images", "response"] as const).filter(
        (f) => f !== "response" || source.kind === "traces",
      );
      for (const field of fields) {
        const mapped = source.columns[field];
        if (columns.includes(mapped)) continue;
        const alike = columns.filter((c) => LOOKS_LIKE[field].test(c));
        if (alike.length === 0) continue;
        const what =
          field === "images"
            ? "its rows would be read as text-only (a question that mentions an image is then rejected as missing_image)"
            : `its rows would be rejected as missing their ${field}`;
        warnings.push(
          `$.sources.${branch}[${i}] (${source.name}): ${file} has no column "${mapped}" (columns.${field}) but has ${alike.map((c) => `"${c}"`).join(", ")}: ${what}. Set columns.${field} to the right column, or use a preset if this is a known data set.`,
        );
      }
    }
  }
  return warnings;
}
