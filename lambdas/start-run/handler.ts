/**
 * start-run: EventBridge "Object Created" on runs/<id>/run.json -> StartExecution named after the run id.
 * A second upload of the same file starts nothing while the run runs or after it succeeded, and starts
 * it again after it failed (`<run-id>.2`, ...). A changed run.json is a new revision of the run, started
 * as the next attempt once the last execution has ended; while one runs it is reported (log at ERROR
 * and runs/<id>/upload-conflict.json), never silently ignored. The same run.json over changed data
 * (a source object overwritten, added or removed: a listing's sizes and ETags) is a new revision too.
 */
import { createHash } from "node:crypto";
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ExecutionAlreadyExists,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { z } from "zod";
import { parseRunConfigText } from "../../core/config/index.ts";
import { InputContractError } from "../../core/errors.ts";
import { attemptName, CLOSED_UNSUCCESSFULLY, keys, runIdFromConfigKey } from "../../core/layout/index.ts";
import { sourceDigest, sourceIdentity } from "../../core/pipeline/source-identity.ts";
import { writeJson } from "../../core/shards/byte-store.ts";
import { handler, logger, resolveSource, runStore } from "../shared/runtime.ts";

export const Event = z.object({
  detail: z.object({
    bucket: z.object({ name: z.string() }),
    object: z.object({ key: z.string(), etag: z.string().optional(), "version-id": z.string().optional() }),
  }),
});

let sfn: SFNClient | null = null;
let sfnEndpoint: string | undefined;

export type StartOutcome =
  | "started"
  | "restarted"
  | "revised"
  | "data_changed"
  | "already_started"
  | "conflict"
  | "ignored";

/** How many times one run id may be started (core/layout's attemptName names them). */
export const MAX_ATTEMPTS = 9999;

type Latest = { attempt: number; executionArn: string; execution: DescribeExecutionCommandOutput };

/**
 * The newest execution of a run id (its highest attempt, as DescribeExecution gives it), or null.
 * Attempts are numbered without gaps, so a doubling search then a bisection finds the newest in
 * about 2·log2(n) calls.
 */
export async function latestExecution(
  client: SFNClient,
  stateMachineArn: string,
  runId: string,
): Promise<Latest | null> {
  const describe = async (attempt: number): Promise<Latest | null> => {
    const executionArn = `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${attemptName(runId, attempt)}`;
    try {
      const execution = await client.send(new DescribeExecutionCommand({ executionArn }));
      return { attempt, executionArn, execution };
    } catch (err) {
      if ((err as { name?: string }).name === "ExecutionDoesNotExist") return null;
      throw err;
    }
  };
  let found = await describe(1);
  if (!found) return null;
  let missing = MAX_ATTEMPTS + 1;
  for (let n = 2; n <= MAX_ATTEMPTS; n = Math.min(n * 2, MAX_ATTEMPTS + 1)) {
    const at = await describe(n);
    if (!at) {
      missing = n;
      break;
    }
    found = at;
  }
  while (missing - found.attempt > 1) {
    const mid = Math.floor((found.attempt + missing) / 2);
    const at = await describe(mid);
    if (at) found = at;
    else missing = mid;
  }
  return found;
}

/**
 * Starts the run for an uploaded run.json. The same content again (compared by a SHA-256 this function
 * computes: with SSE-KMS an ETag is not an MD5 of the content) starts nothing while the run is running
 * or has succeeded, and starts the run again (attempt N+1, finished stages and shards skipped) when its
 * last execution failed, timed out or was stopped. Different content for an existing run id is a new
 * revision of the run once its last execution has ended: attempt N+1, whose first step keeps the
 * stages the change does not touch (core/pipeline/revision.ts). While an execution still runs, a
 * changed file is a conflict: nothing is stopped for it.
 */
export async function startRun(
  client: SFNClient,
  stateMachineArn: string,
  bucketName: string,
  key: string,
  etag: string | undefined,
  content: Uint8Array | null,
  sourcesDigest: string | null = null,
): Promise<{ outcome: StartOutcome; runId: string | null; executionArn?: string }> {
  const runId = runIdFromConfigKey(decodeURIComponent(key.replace(/\+/g, " ")));
  if (!runId) return { outcome: "ignored", runId: null };
  const configSha256 = content ? createHash("sha256").update(content).digest("hex") : null;
  const input = (attempt: number) =>
    JSON.stringify({
      runId,
      bucket: bucketName,
      configKey: keys.runConfig(runId),
      etag: etag ?? null,
      configSha256,
      ...(sourcesDigest ? { sourcesDigest } : {}),
      attempt,
    });
  const start = async (attempt: number, outcome: "started" | "restarted" | "revised" | "data_changed") => {
    const name = attemptName(runId, attempt);
    if (name.length > 80) {
      throw new InputContractError(
        `run id ${runId} is too long to start again (execution names have at most 80 characters)`,
      );
    }
    try {
      const out = await client.send(
        new StartExecutionCommand({ stateMachineArn, name, input: input(attempt) }),
      );
      return { outcome, runId, executionArn: out.executionArn };
    } catch (err) {
      // A duplicate delivery of the same upload raced us to it: that execution is this run.
      if (
        err instanceof ExecutionAlreadyExists ||
        (err as { name?: string }).name === "ExecutionAlreadyExists"
      )
        return { outcome: "already_started" as const, runId, executionArn: undefined };
      throw err;
    }
  };
  const latest = await latestExecution(client, stateMachineArn, runId);
  if (!latest) return start(1, "started");
  const before = JSON.parse(latest.execution.input ?? "{}") as {
    etag?: string | null;
    configSha256?: string | null;
    sourcesDigest?: string;
  };
  const same =
    configSha256 !== null && before.configSha256 !== undefined
      ? before.configSha256 === configSha256
      : (before.etag ?? null) === (etag ?? null);
  const running =
    !CLOSED_UNSUCCESSFULLY.has(latest.execution.status ?? "") && latest.execution.status !== "SUCCEEDED";
  if (!same) {
    if (running) return { outcome: "conflict", runId, executionArn: latest.executionArn };
    return start(latest.attempt + 1, "revised");
  }
  if (CLOSED_UNSUCCESSFULLY.has(latest.execution.status ?? "")) return start(latest.attempt + 1, "restarted");
  // The same run.json over changed data (a source object overwritten, added or removed since the
  // last execution listed them) is a new revision: its first step recomputes what reads the change.
  if (latest.execution.status === "SUCCEEDED" && sourcesDigest && before.sourcesDigest !== sourcesDigest)
    return start(latest.attempt + 1, "data_changed");
  return { outcome: "already_started", runId, executionArn: latest.executionArn };
}

/**
 * The digest of the data the uploaded run.json's sources name (a listing: sizes and ETags), or null
 * when it cannot be told (a config that does not parse, a source that cannot be listed): then the
 * run.json alone decides, and validate-config reports the problem.
 */
async function dataDigest(content: Uint8Array | null): Promise<string | null> {
  if (!content) return null;
  const parsed = parseRunConfigText(Buffer.from(content).toString("utf8"));
  if (!parsed.ok) return null;
  try {
    return sourceDigest(await sourceIdentity(parsed.config, resolveSource));
  } catch (err) {
    logger.warn("could not list the run's sources", { error: (err as Error).message });
    return null;
  }
}

export const handle = handler("start-run", Event, async (event) => {
  const arn = process.env.STATE_MACHINE_ARN;
  if (!arn) throw new InputContractError("STATE_MACHINE_ARN is not set");
  // Re-made when the endpoint changes (the local runtime restarts its Step Functions API).
  if (!sfn || sfnEndpoint !== process.env.AWS_ENDPOINT_URL_SFN) {
    sfn = new SFNClient({});
    sfnEndpoint = process.env.AWS_ENDPOINT_URL_SFN;
  }
  const { name } = event.detail.bucket;
  const { key, etag } = event.detail.object;
  const content = runIdFromConfigKey(decodeURIComponent(key.replace(/\+/g, " ")))
    ? await runStore().readBytes(key)
    : null;
  const result = await startRun(sfn, arn, name, key, etag, content, await dataDigest(content));
  if (result.outcome === "restarted")
    logger.info("run started again after a failed execution", { ...result });
  if (result.outcome === "revised")
    logger.info("run.json changed: a new revision of the run started", { ...result });
  if (result.outcome === "data_changed")
    logger.info("a source changed: a new revision of the run started", { ...result });
  if (result.outcome === "conflict" && result.runId) {
    logger.error("run.json changed while the run is running; nothing was started", {
      runId: result.runId,
      key,
    });
    await writeJson(
      runStore(),
      `${keys.runConfig(result.runId).replace(/run\.json$/, "")}upload-conflict.json`,
      {
        runId: result.runId,
        key,
        etag,
        message:
          "A changed run.json was uploaded while the run's execution is still running; nothing was started and nothing was stopped. Wait for it to end (or stop it in the Step Functions console, or with aws stepfunctions stop-execution), then upload the file again: it starts a new revision that keeps the stages the change does not touch.",
        execution: result.executionArn,
      },
    );
  }
  return result;
});
