/**
 * The questions of a run's local sources, read before anything runs: how many the replay teacher
 * has a recording for, and the gold answers the synthetic teacher answers from.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, relative } from "node:path";
import type { RunConfig } from "../core/config/schema.ts";
import { FsStore } from "../core/shards/fs-store.ts";
import { shardRows } from "../core/shards/jsonl.ts";
import { readParquetRows } from "../core/shards/parquet.ts";
import { rowQuestion } from "../core/stages/ingest.ts";
import { filesUnder } from "./source-counts.ts";
import { localSourcePath } from "./sources.ts";

export interface LocalQuestion {
  question: string;
  answer: string;
  choices?: string[];
}

/**
 * Every question the teacher or the policy would be asked, from the local sources (SFT sources of
 * kind `questions`, and RL sources); `remote` counts the sources that are not local (not read here).
 */
export async function localQuestions(
  config: RunConfig,
  configPath: string,
): Promise<{ questions: LocalQuestion[]; remote: number }> {
  const questions: LocalQuestion[] = [];
  let remote = 0;
  const sources = [...config.sources.sft.filter((s) => s.kind !== "traces"), ...config.sources.rl];
  for (const source of sources) {
    const path = localSourcePath(source.uri, configPath);
    if (path === null || !existsSync(path)) {
      remote++;
      continue;
    }
    const files = statSync(path).isDirectory() ? filesUnder(path, source.format) : [path];
    for (const file of files) {
      const dir = dirname(file);
      const store = new FsStore(dir);
      const name = relative(dir, file);
      try {
        if (source.format === "parquet") {
          for await (const row of readParquetRows(store, name)) {
            const q = rowQuestion(source, row);
            if (q) questions.push(q);
          }
        } else {
          for await (const row of shardRows(store, name)) {
            const q = row.ok ? rowQuestion(source, row.value) : null;
            if (q) questions.push(q);
          }
        }
      } catch {
        // An unreadable file: ingest rejects its rows with their reason.
      }
    }
  }
  return { questions, remote };
}
