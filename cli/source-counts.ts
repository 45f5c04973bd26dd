/**
 * How many records a run.json's sources hold, for `recipe estimate`: JSONL lines and Parquet footers of
 * the local files (relative to the run.json's folder), before dedup. A source that cannot be read here
 * (an s3:// URI, a missing file) makes its branch's count unknown.
 */
import { createReadStream, existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import type { RunConfig } from "../core/config/schema.ts";
import { FsStore } from "../core/shards/fs-store.ts";
import { parquetRowCount } from "../core/shards/parquet.ts";
import { localSourcePath } from "./sources.ts";

export interface BranchCount {
  /** Records of `questions` sources (what the teacher or the rollouts see); null when not countable. */
  questions: number | null;
  /** Records of `traces` sources (verified only, no generation). */
  traces: number;
  unreadable: string[];
}

async function jsonlLines(file: string): Promise<number> {
  const input = createReadStream(file);
  const lines = createInterface({
    input: file.endsWith(".gz") ? input.pipe(createGunzip()) : input,
    crlfDelay: Infinity,
  });
  let n = 0;
  for await (const line of lines) if (line.trim() !== "") n++;
  return n;
}

export function filesUnder(path: string, format: "jsonl" | "parquet"): string[] {
  if (!statSync(path).isDirectory()) return [path];
  const ext = format === "jsonl" ? /\.jsonl(\.gz)?$/ : /\.parquet$/;
  return readdirSync(path, { recursive: true })
    .map((f) => join(path, String(f)))
    .filter((f) => ext.test(f) && statSync(f).isFile())
    .sort();
}

export async function countSources(
  config: RunConfig,
  configPath: string,
  branch: "sft" | "rl",
): Promise<BranchCount> {
  const result: BranchCount = { questions: 0, traces: 0, unreadable: [] };
  let questions = 0;
  for (const source of config.sources[branch]) {
    const path = localSourcePath(source.uri, configPath);
    if (path === null || !existsSync(path)) {
      result.unreadable.push(source.uri);
      continue;
    }
    let n = 0;
    for (const file of filesUnder(path, source.format)) {
      if (source.format === "jsonl") n += await jsonlLines(file);
      else n += await parquetRowCount(new FsStore(dirname(file)), relative(dirname(file), file));
    }
    if (source.kind === "traces") result.traces += n;
    else questions += n;
  }
  result.questions = result.unreadable.length > 0 ? null : questions;
  return result;
}
