/**
 * What a pipeline step needs: the run's store, its resolved config, and where sources live.
 * Every step is a function of these plus a small event; the Lambda handlers and the local runtime
 * call the same functions.
 */
import type { RunConfig } from "../config/schema.ts";
import { InputContractError } from "../errors.ts";
import { keys } from "../layout/index.ts";
import { type ByteStore, listAll, readJson, writeJson } from "../shards/byte-store.ts";
import { PRESETS } from "../stages/presets.ts";
import type { Judge } from "../stages/verify-traces.ts";

/** A source's files: the store that holds them and a key (one file) or a prefix (all files below). */
export interface SourceLocation {
  store: ByteStore;
  key: string;
}

/** Maps a source or benchmark URI (`s3://bucket/prefix/`, a path) to a store and key. */
export type SourceResolver = (uri: string) => SourceLocation;

export interface RunContext {
  store: ByteStore;
  runId: string;
  config: RunConfig;
  sources: SourceResolver;
  judge?: Judge;
  /** Set when the teacher is the bundled replay server; said in the data card and report. */
  replayTeacher?: boolean;
  /** Which bundled teacher it was when replayTeacher is set: the synthetic one says so. */
  teacherKind?: "replay" | "synthetic";
}

export async function loadConfig(store: ByteStore, runId: string): Promise<RunConfig> {
  const config = await readJson<RunConfig>(store, keys.resolvedConfig(runId));
  if (!config)
    throw new InputContractError(
      `no resolved config at ${keys.resolvedConfig(runId)}: run validate-config first`,
    );
  return config;
}

const FORMATS: Record<string, RegExp> = {
  jsonl: /\.jsonl(?:\.gz)?$/,
  parquet: /\.parquet$/,
};

/** The table format a file name has (`.jsonl`, `.jsonl.gz`, `.parquet`), or null. */
export function sourceFileFormat(name: string): "jsonl" | "parquet" | null {
  if (FORMATS.jsonl!.test(name)) return "jsonl";
  if (FORMATS.parquet!.test(name)) return "parquet";
  return null;
}

/** The files of a source, in key order: the key itself when it names a file, else every matching file below it. */
export async function sourceFiles(location: SourceLocation, format: "jsonl" | "parquet"): Promise<string[]> {
  if (FORMATS[format]!.test(location.key)) return [location.key];
  const prefix = location.key === "" || location.key.endsWith("/") ? location.key : `${location.key}/`;
  const files = (await listAll(location.store, prefix)).filter((k) => FORMATS[format]!.test(k));
  if (files.length === 0)
    throw new InputContractError(`no ${format} files under ${location.store.location}/${prefix}`);
  return files;
}

/**
 * Whether an RL source's pass rates come from the source itself (`rl.passRateFrom: "source"` and a
 * mapped `columns.passRate`, or a preset whose data set carries one): its questions are not rolled out.
 */
export function ratedBySource(config: RunConfig, branch: "sft" | "rl", sourceIndex: number): boolean {
  const source = config.sources.rl[sourceIndex];
  const carries = !!source?.columns.passRate || (!!source?.preset && PRESETS[source.preset]!.passRate);
  return branch === "rl" && config.rl.passRateFrom === "source" && carries;
}

/** A Distributed Map reads its items from this JSON array (ItemReader, InputType JSON). */

export async function writeManifest<T>(store: ByteStore, key: string, items: T[]): Promise<void> {
  await writeJson(store, key, items);
}

export async function readManifest<T>(store: ByteStore, key: string): Promise<T[]> {
  const items = await readJson<T[]>(store, key);
  if (!items) throw new InputContractError(`no manifest at ${key}`);
  return items;
}
