/**
 * start-run: EventBridge "Object Created" on runs/<id>/run.json -> StartExecution named after the run id.
 * A second upload of the same file starts nothing; a changed run.json for an existing run is
 * reported (log at ERROR and runs/<id>/upload-conflict.json), never silently ignored.
 */
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { z } from "zod";
import { InputContractError } from "../../core/errors.ts";
import { keys, runIdFromConfigKey } from "../../core/layout/index.ts";
import { writeJson } from "../../core/shards/byte-store.ts";
import { handler, logger, runStore } from "../shared/runtime.ts";

export const Event = z.object({
  detail: z.object({
    bucket: z.object({ name: z.string() }),
    object: z.object({ key: z.string(), etag: z.string().optional(), "version-id": z.string().optional() }),
  }),
});

let sfn: SFNClient | null = null;
let sfnEndpoint: string | undefined;

export type StartOutcome = "started" | "already_started" | "conflict" | "ignored";

export async function startRun(
  client: SFNClient,
  stateMachineArn: string,
  bucketName: string,
  key: string,
  etag: string | undefined,
): Promise<{ outcome: StartOutcome; runId: string | null; executionArn?: string }> {
  const runId = runIdFromConfigKey(decodeURIComponent(key.replace(/\+/g, " ")));
  if (!runId) return { outcome: "ignored", runId: null };
  const input = JSON.stringify({
    runId,
    bucket: bucketName,
    configKey: keys.runConfig(runId),
    etag: etag ?? null,
  });
  const executionArn = `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${runId}`;
  try {
    const out = await client.send(new StartExecutionCommand({ stateMachineArn, name: runId, input }));
    return { outcome: "started", runId, executionArn: out.executionArn };
  } catch (err) {
    if (
      !(err instanceof ExecutionAlreadyExists) &&
      (err as { name?: string }).name !== "ExecutionAlreadyExists"
    )
      throw err;
    const existing = await client.send(new DescribeExecutionCommand({ executionArn }));
    const before = JSON.parse(existing.input ?? "{}") as { etag?: string | null };
    if (before.etag === (etag ?? null)) return { outcome: "already_started", runId, executionArn };
    return { outcome: "conflict", runId, executionArn };
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
  const result = await startRun(sfn, arn, name, key, etag);
  if (result.outcome === "conflict" && result.runId) {
    logger.error("run.json changed for an existing run; nothing was started", { runId: result.runId, key });
    await writeJson(
      runStore(),
      `${keys.runConfig(result.runId).replace(/run\.json$/, "")}upload-conflict.json`,
      {
        runId: result.runId,
        key,
        etag,
        message:
          "A different run.json was uploaded for a run id that already has an execution. Runs are immutable: upload the new config under a new run id.",
        execution: result.executionArn,
      },
    );
  }
  return result;
});
