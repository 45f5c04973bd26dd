/**
 * What the embedded-runtime integration tests share: the runtime a test started (stopped after each
 * test), the sample run, a user's own folder with the sample linked in, and a shard reader.
 */
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach } from "vitest";
import { keys } from "../../core/layout/index.ts";
import { readShard } from "../../core/shards/jsonl.ts";
import {
  executionArnFor,
  type LocalOptions,
  type LocalRuntime,
  startLocalRuntime,
  uploadSources,
} from "../../local/runtime.ts";

export const SAMPLE = "examples/run.sample.json";

/** The runtime the current test started; each test file calls stopRuntimeAfterEach(). */
export const local: { rt: LocalRuntime | null } = { rt: null };

export function stopRuntimeAfterEach(): void {
  afterEach(async () => {
    await local.rt?.stop();
    local.rt = null;
  });
}

export async function runSample(
  options: LocalOptions = {},
  text = readFileSync(SAMPLE, "utf8"),
  runId = "sample",
) {
  const rt = await startLocalRuntime({ dataDir: mkdtempSync(join(tmpdir(), "recipe-it-")), ...options });
  local.rt = rt;
  const config = JSON.parse(readFileSync(SAMPLE, "utf8"));
  await uploadSources(
    rt.s3,
    SAMPLE,
    [...config.sources.sft, ...config.sources.rl].map((s: { uri: string }) => s.uri),
  );
  await rt.s3.store.write(keys.runConfig(runId), text);
  const execution = await rt.waitFor(executionArnFor(runId));
  return { rt, execution };
}

/**
 * A user's own folder: the sample's files linked in, extra JSON-lines files beside them, and a
 * run.json (the sample's, with `edit` applied). Returns the folder, the run.json path and the config.
 */
type SourceJson = { uri: string } & Record<string, unknown>;
export type RunJson = { runId: string; sources: { sft: SourceJson[]; rl: SourceJson[] } } & Record<
  string,
  unknown
>;

export function userFolder(
  prefix: string,
  edit: (config: RunJson) => void = () => undefined,
  files: Record<string, unknown[]> = {},
) {
  const work = mkdtempSync(join(tmpdir(), prefix));
  symlinkSync(resolve("examples/sample"), join(work, "sample"));
  for (const [name, rows] of Object.entries(files))
    writeFileSync(join(work, name), `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
  const config = JSON.parse(readFileSync(SAMPLE, "utf8")) as RunJson;
  edit(config);
  const file = join(work, "run.json");
  writeFileSync(file, JSON.stringify(config));
  return { work, file, config };
}

/** The records of a shard in the current runtime's store. */
export async function lines(key: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const l of readShard(local.rt!.s3.store, key))
    if (l.ok) out.push(l.value as Record<string, unknown>);
  return out;
}
