/**
 * What the data a run reads is, as a listing says it (no download): every object a source covers,
 * with its size and ETag (a local file: a content hash). It is an input of the stage fingerprints
 * (fingerprint.ts): a source file that changed, appeared or went away recomputes the stage that
 * reads it (ingest for sources, dedup for decontamination benchmarks) and everything after it,
 * while an unchanged one is still kept. Read by validate-config at the start of each execution, and
 * by start-run to tell a re-upload of the same run.json over changed data from a repeat.
 */
import { canonicalJson } from "../config/index.ts";
import type { RunConfig } from "../config/schema.ts";
import { sha256Hex } from "../records/index.ts";
import type { ObjectVersion } from "../shards/byte-store.ts";
import type { SourceLocation, SourceResolver } from "./context.ts";
import type { OutputStage } from "./fingerprint.ts";

/** Per stage, the objects of the data it reads: `s3://bucket/key` -> `<size> <etag>`. */
export type SourceIdentity = Partial<Record<OutputStage, Record<string, string>>>;

const FORMATS: Record<"jsonl" | "parquet", RegExp> = {
  jsonl: /\.jsonl(?:\.gz)?$/,
  parquet: /\.parquet$/,
};

async function* listed(location: SourceLocation, prefix: string): AsyncIterable<ObjectVersion> {
  const { store } = location;
  if (store.listDetailed) {
    yield* store.listDetailed(prefix);
    return;
  }
  // A store that cannot say more than the keys: the size still tells most changes apart.
  for await (const key of store.list(prefix)) yield { key, size: (await store.size(key)) ?? 0, etag: "" };
}

/** The objects one source (or benchmark) covers, as core/pipeline/context.ts sourceFiles picks them. */
async function objectsOf(
  location: SourceLocation,
  format: "jsonl" | "parquet",
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const single = FORMATS[format].test(location.key);
  const prefix =
    single || location.key === "" || location.key.endsWith("/") ? location.key : `${location.key}/`;
  for await (const o of listed(location, prefix)) {
    if (single ? o.key !== location.key : !FORMATS[format].test(o.key)) continue;
    out[`${location.store.location}/${o.key}`] = `${o.size} ${o.etag}`.trimEnd();
  }
  return out;
}

/** Every stage's data identity under a config (only stages that read source data appear). */
export async function sourceIdentity(config: RunConfig, resolve: SourceResolver): Promise<SourceIdentity> {
  const of = async (list: readonly { uri: string; format: "jsonl" | "parquet" }[]) => {
    const all: Record<string, string> = {};
    for (const s of list) Object.assign(all, await objectsOf(resolve(s.uri), s.format));
    return all;
  };
  const identity: SourceIdentity = {};
  if (config.sources.sft.length > 0) identity["ingest-sft"] = await of(config.sources.sft);
  if (config.sources.rl.length > 0) identity["ingest-rl"] = await of(config.sources.rl);
  const benchmarks = config.dedup.decontamination.benchmarks;
  if (benchmarks.length > 0) {
    const b = await of(benchmarks);
    identity["dedup-sft"] = b;
    identity["dedup-rl"] = b;
  }
  return identity;
}

/** One hash of the whole identity: what start-run records in an execution's input. */
export function sourceDigest(identity: SourceIdentity): string {
  return sha256Hex(canonicalJson(identity));
}
