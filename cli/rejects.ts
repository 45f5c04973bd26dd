/**
 * `recipe rejects <run-id>`: every rejected record of a run as JSON lines (stage, reason, origin with
 * the source file and line, detail), from the local runtime's emulator or the deployed bucket.
 */
import { keys, STAGES, type Stage } from "../core/layout/index.ts";
import { listAll } from "../core/shards/byte-store.ts";
import { readShard } from "../core/shards/jsonl.ts";
import { stageSummaries } from "../core/stages/stage.ts";
import { UsageError } from "./errors.ts";
import { checkRunId, openRunStore } from "./run.ts";

export interface RejectsOptions {
  bucket?: string;
  dataDir: string;
  stage?: string;
  reason?: string;
  limit: string;
}

export async function rejectsCommand(
  runId: string,
  opts: RejectsOptions,
  out: (t: string) => void,
  err: (t: string) => void,
): Promise<number> {
  checkRunId(runId);
  if (opts.stage !== undefined && !(STAGES as readonly string[]).includes(opts.stage)) {
    throw new UsageError(`unknown stage ${JSON.stringify(opts.stage)}; stages: ${STAGES.join(", ")}`);
  }
  const limit = Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1) {
    throw new UsageError(`--limit must be a positive whole number, not ${JSON.stringify(opts.limit)}`);
  }
  const { store, stop } = await openRunStore(opts);
  try {
    const summaries = await stageSummaries(store, runId);
    const stages = (opts.stage ? [opts.stage] : STAGES) as Stage[];
    let printed = 0;
    let found = false;
    // A dedup reject names where the kept question's record is; its source file and line are in it.
    const shardLines = new Map<string, Promise<unknown[]>>();
    const originAt = async (at: string): Promise<string | undefined> => {
      const m = /^(.*):(\d+)$/.exec(at);
      if (!m) return undefined;
      if (!shardLines.has(m[1]!))
        shardLines.set(
          m[1]!,
          (async () => {
            const rows: unknown[] = [];
            for await (const l of readShard(store, m[1]!)) rows.push(l.ok ? l.value : null);
            return rows;
          })().catch(() => []),
        );
      const row = (await shardLines.get(m[1]!)!)[Number(m[2]) - 1] as { origin?: string } | null | undefined;
      return row?.origin;
    };
    for (const stage of stages) {
      for (const key of await listAll(store, `${keys.stagePrefix(runId, stage)}rejects/`)) {
        found = true;
        for await (const line of readShard(store, key)) {
          if (!line.ok) continue;
          const reject = line.value as { reason?: string; duplicateAt?: string };
          if (opts.reason !== undefined && reject.reason !== opts.reason) continue;
          const keptOrigin = reject.duplicateAt ? await originAt(reject.duplicateAt) : undefined;
          out(`${JSON.stringify(keptOrigin ? { ...reject, duplicateOrigin: keptOrigin } : reject)}\n`);
          if (++printed >= limit) return 0;
        }
      }
    }
    if (!found && summaries.length === 0) {
      err(`no run ${runId} found${opts.bucket ? ` in s3://${opts.bucket}` : ` in ${opts.dataDir}`}\n`);
      return 1;
    }
    if (printed === 0) {
      const filters = [opts.stage && `stage ${opts.stage}`, opts.reason && `reason ${opts.reason}`].filter(
        Boolean,
      );
      err(`no rejects${filters.length ? ` with ${filters.join(" and ")}` : ""} in run ${runId}\n`);
    }
    return 0;
  } finally {
    await stop();
  }
}
