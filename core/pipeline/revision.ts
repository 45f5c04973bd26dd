/**
 * A run's revision: at the start of every execution, each stage's recorded fingerprint is compared
 * with the one the resolved config gives. A stage whose fingerprint changed loses its outputs (so
 * every `_SUCCESS`, stats file and shard left in the run was written under the current config, and
 * the skip rules of every step stay what they were); the others are kept. The generation cache and
 * the images live outside runs/ and are never touched here.
 *
 * Killed at any point, it is safe to run again: a stage's fingerprint.json is written only after
 * its old outputs are gone, so a half-cleared stage is still recorded under its old fingerprint and
 * is cleared again.
 */
import pLimit from "p-limit";
import type { RunConfig } from "../config/schema.ts";
import { keys, runPrefix, type Stage } from "../layout/index.ts";
import { type ByteStore, listAll, readJson, writeJson } from "../shards/byte-store.ts";
import {
  OUTPUT_STAGES,
  type OutputStage,
  planRevision,
  type StageDecision,
  type StageFingerprint,
  stageFingerprints,
} from "./fingerprint.ts";
import type { SourceIdentity } from "./source-identity.ts";

/** The folders a stage writes, below the run's prefix. */
function outputFolders(stage: OutputStage): string[] {
  if (stage === "write-sft-dataset") return [`${stage}/`, "datasets/sft/"];
  if (stage === "write-rl-dataset") return [`${stage}/`, "datasets/rl/"];
  // A retrained model is exported again; re-evaluated models are scored again (no stale results).
  if (stage === "train-sft") return [`${stage}/`, "models/sft/"];
  if (stage === "train-rl") return [`${stage}/`, "models/rl/"];
  if (stage === "evaluate") return [`${stage}/`, "eval/"];
  return [`${stage}/`];
}

export const fingerprintKey = (runId: string, stage: Stage) =>
  `${keys.stagePrefix(runId, stage)}fingerprint.json`;
export const revisionKey = (runId: string) => `${runPrefix(runId)}revision.json`;

/** What the execution's first step decided, for the CLI, `recipe status` and the report. */
export interface Revision {
  runId: string;
  /** The execution's attempt number (its name is `<run-id>` or `<run-id>.<attempt>`). */
  attempt: number;
  stages: StageDecision[];
  /** Objects removed from stages that are computed again (old versions stay, as the bucket keeps them). */
  removed: number;
  /** When the execution's first step ran (ISO 8601): the report's start of the attempt. */
  startedAt?: string;
}

/** Requests in flight at once (S3 takes thousands a second per prefix). */
const CONCURRENCY = 32;

/** Whether any object other than `except` sits under one of the folders (stops at the first). */
async function anyUnder(store: ByteStore, folders: readonly string[], except: string): Promise<boolean> {
  for (const folder of folders) for await (const k of store.list(folder)) if (k !== except) return true;
  return false;
}

/**
 * Compares the config's stage fingerprints with those recorded in the run's folders, clears the
 * stages that changed, records the current fingerprints and writes `revision.json`. Its cost does
 * not grow with the run: a read and a short listing per stage; only a stage being cleared is
 * listed whole.
 */
export async function applyRevision(
  store: ByteStore,
  runId: string,
  config: RunConfig,
  attempt: number,
  data: SourceIdentity = {},
): Promise<Revision> {
  const prefix = runPrefix(runId);
  const current = stageFingerprints(config, data);
  const folders = (stage: OutputStage) => outputFolders(stage).map((f) => `${prefix}${f}`);
  const limit = pLimit(CONCURRENCY);
  const found = await Promise.all(
    OUTPUT_STAGES.map((stage) =>
      limit(async () => {
        const own = fingerprintKey(runId, stage);
        return [
          await readJson<StageFingerprint>(store, own),
          await anyUnder(store, folders(stage), own),
        ] as const;
      }),
    ),
  );
  const recorded = Object.fromEntries(OUTPUT_STAGES.map((s, i) => [s, found[i]![0]]));
  const has = Object.fromEntries(OUTPUT_STAGES.map((s, i) => [s, found[i]![1]]));
  const stages = planRevision(current, recorded, has);
  let removed = 0;
  for (const d of stages) {
    if (d.action === "recompute") {
      const own = fingerprintKey(runId, d.stage);
      const outputs = (await Promise.all(folders(d.stage).map((f) => listAll(store, f))))
        .flat()
        .filter((k) => k !== own);
      await Promise.all(outputs.map((k) => limit(() => store.delete(k))));
      removed += outputs.length;
    }
    if (d.action !== "keep") {
      await writeJson(store, fingerprintKey(runId, d.stage), current[d.stage]);
      continue;
    }
    // Kept and not finished: what is still to compute is answered by this config's endpoint.
    const before = recorded[d.stage]!;
    const serving = current[d.stage].servedBy?.[0];
    if (serving && !before.servedBy?.includes(serving) && !(await store.exists(keys.success(runId, d.stage))))
      await writeJson(store, fingerprintKey(runId, d.stage), {
        ...before,
        servedBy: [...(before.servedBy ?? []), serving],
      });
  }
  const revision: Revision = { runId, attempt, stages, removed, startedAt: new Date().toISOString() };
  await writeJson(store, revisionKey(runId), revision);
  return revision;
}

/** Who answered a stage's model requests, as its fingerprint.json records it (empty when unknown). */
export async function servedBy(store: ByteStore, runId: string, stage: OutputStage): Promise<string[]> {
  return (
    (await readJson<StageFingerprint>(store, fingerprintKey(runId, stage)).catch(() => null))?.servedBy ?? []
  );
}

/**
 * One line per stage that existed before, as the CLI prints it: "skipped (unchanged)" (a kept stage
 * that had not finished resumes where it stopped) or "recomputed (teacher.model changed)".
 */
export function describeRevision(revision: Revision): string[] {
  return revision.stages
    .filter((d) => d.action !== "new")
    .map((d) =>
      d.action === "keep"
        ? `${d.stage}: skipped (unchanged)`
        : `${d.stage}: recomputed (${d.because.join(", ")})`,
    );
}
