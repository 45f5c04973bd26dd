/**
 * What every Lambda adapter shares: the run's S3 store, its resolved config, a source resolver,
 * Powertools logger and metrics, and a wrapper that parses the event with a schema, calls core, and
 * returns only pointers and counts (the state payload limit is 256 KiB).
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { S3Client } from "@aws-sdk/client-s3";
import type { z } from "zod";
import { InputContractError } from "../../core/errors.ts";
import { loadConfig, type RunContext, type SourceLocation } from "../../core/pipeline/context.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { createS3Client, S3Store } from "../../core/shards/s3-store.ts";
import type { StageSummary } from "../../core/stages/stage.ts";

export const logger = new Logger({ serviceName: "recipe-pipeline" });
export const metrics = new Metrics({ namespace: "RecipePipeline", serviceName: "recipe-pipeline" });

let client: S3Client | null = null;
let clientEndpoint: string | undefined;
/** One S3 client per container; re-made if the endpoint changes (the local runtime restarts its emulator). */
function s3(): S3Client {
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  if (!client || endpoint !== clientEndpoint) {
    client = createS3Client();
    clientEndpoint = endpoint;
  }
  return client;
}

export function bucket(): string {
  const name = process.env.RECIPE_BUCKET;
  if (!name) throw new InputContractError("RECIPE_BUCKET is not set");
  return name;
}

export function runStore(): S3Store {
  return new S3Store(s3(), bucket());
}

/**
 * Sources: `s3://bucket/key` anywhere; a relative path resolves under RECIPE_SOURCE_ROOT
 * (`s3://bucket/prefix/` or a local folder for the embedded runtime).
 */
export function resolveSource(uri: string): SourceLocation {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (m) return { store: new S3Store(s3(), m[1]!), key: m[2]! };
  if (uri.startsWith("file://")) return { store: new FsStore("/"), key: uri.slice("file:///".length) };
  const root = process.env.RECIPE_SOURCE_ROOT;
  if (!root)
    throw new InputContractError(
      `source ${uri} is a relative path and RECIPE_SOURCE_ROOT is not set; use an s3:// URI`,
    );
  const base = resolveSource(root.endsWith("/") ? root : `${root}/`);
  const key = `${base.key}${uri.replace(/^\.\//, "")}`;
  return { store: base.store, key };
}

/** The run's context; verify-shard passes a judge factory (only its bundle carries the OpenAI client). */
export async function runContext(
  runId: string,
  makeJudge?: (config: RunContext["config"]) => RunContext["judge"],
): Promise<RunContext> {
  const store = runStore();
  const config = await loadConfig(store, runId);
  const judge = makeJudge && config.verification.judge.enabled ? makeJudge(config) : undefined;
  return {
    store,
    runId,
    config,
    sources: resolveSource,
    judge,
    replayTeacher: !!process.env.RECIPE_REPLAY_TEACHER,
    ...(process.env.RECIPE_REPLAY_TEACHER === "synthetic" ? { teacherKind: "synthetic" as const } : {}),
  };
}

let metricsAdded = false;

export function publishStage(summary: Pick<StageSummary, "stage" | "in" | "out" | "rejected">): void {
  metricsAdded = true;
  metrics.addDimension("stage", summary.stage);
  metrics.addMetric("RecordsIn", MetricUnit.Count, summary.in);
  metrics.addMetric("RecordsOut", MetricUnit.Count, summary.out);
  metrics.addMetric("RecordsRejected", MetricUnit.Count, summary.rejected);
}

/** Wraps a step: validate the event, run, log, flush metrics. Errors propagate by class name. */
export function handler<S extends z.ZodType, R>(
  name: string,
  schema: S,
  step: (event: z.infer<S>) => Promise<R>,
) {
  return async (raw: unknown): Promise<R> => {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw new InputContractError(
        `${name}: bad event: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      );
    }
    logger.appendKeys({ step: name, runId: (parsed.data as { runId?: string }).runId });
    const t0 = Date.now();
    try {
      const result = await step(parsed.data);
      logger.info("step finished", { seconds: (Date.now() - t0) / 1000 });
      return result;
    } catch (err) {
      logger.error("step failed", err as Error);
      throw err;
    } finally {
      if (metricsAdded) metrics.publishStoredMetrics();
      metricsAdded = false;
    }
  };
}
