/**
 * The embedded default: an S3 emulator, a local Step Functions API, the state machine from `cdk synth`
 * run in process, and a teacher (the bundled replay server unless one is given). A put of
 * runs/<id>/run.json starts the execution through the same start-run code as in AWS.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { SFNClient } from "@aws-sdk/client-sfn";
import { InputContractError } from "../core/errors.ts";
import { syntheticResponses } from "../core/generate/synthetic.ts";
import { isAttemptOf, runIdFromConfigKey, runPrefix } from "../core/layout/index.ts";
import { listAll } from "../core/shards/byte-store.ts";
import { stateMachineName } from "../infra/constructs/gpu-batch.ts";
import { PROJECT_ROOT } from "../infra/root.ts";
import { LOCAL_BUCKET, type TemplateLike } from "./definition.ts";
import { LocalAccount } from "./iam/account.ts";
import { startLambdaApi } from "./lambda-api.ts";
import { LOCAL_ACCOUNT_CONCURRENCY } from "./lambda-host.ts";
import { type ReplayServer, startReplayServer } from "./replay-server.ts";
import { LocalRunner, synthesizeTemplate } from "./runner.ts";
import { EMULATOR_CREDENTIALS, type S3Emulator, startS3Emulator } from "./s3-emulator.ts";
import { type Execution, type SfnApi, startSfnApi } from "./sfn-api.ts";

export { LOCAL_BUCKET } from "./definition.ts";
export { type UploadSource, uploadSources } from "./source-upload.ts";
/** The local stack is always named RecipePipeline (local/runner.ts synthesizes it under that name). */
export const STATE_MACHINE_ARN = `arn:aws:states:us-east-1:000000000000:stateMachine:${stateMachineName("RecipePipeline")}`;

export interface LocalOptions {
  /** Folder for the emulator's data and the execution registry. @default .recipe */
  dataDir?: string;
  teacherUrl?: string;
  teacherModel?: string;
  /**
   * Without teacherUrl, which bundled teacher answers: the replay server (recorded sample answers)
   * or the synthetic teacher, which answers these questions from their gold answers in a seeded mix
   * of right and wrong (core/generate/synthetic.ts). @default "replay"
   */
  teacher?: "replay" | "synthetic";
  syntheticQuestions?: readonly { question: string; answer: string; choices?: string[] }[];
  apiKeyEnv?: string;
  batchParallelism?: number;
  /** Delay of each replay answer (tests). @default 0 */
  teacherDelayMs?: number;
  /** Hold the replay teacher's answers for a model after some count (tests that need a job mid-shard). */
  teacherHold?: import("./replay-server.ts").Hold;
  log?: (line: string) => void;
  /** The local account's Lambda concurrent executions (what GetAccountSettings reports, and enforced). @default 10, a new account's */
  lambdaConcurrency?: number;
  /** Deploy settings (`-c key=value`) of the stack the runtime stands for. */
  context?: Record<string, string>;
  /** Test hook: changes the synthesized template before anything runs (e.g. removes a grant). */
  editTemplate?: (template: TemplateLike) => void;
  beforeStep?: ConstructorParameters<typeof LocalRunner>[0]["beforeStep"];
  /** Between SIGTERM and SIGKILL when a stopped execution's Batch jobs are terminated (tests). */
  stopGraceMs?: number;
  onBatchChild?: ConstructorParameters<typeof LocalRunner>[0]["onBatchChild"];
}

export interface LocalRuntime {
  s3: S3Emulator;
  /** The template's IAM the emulators enforce (its `denials` say what was refused). */
  account: LocalAccount;
  sfn: SfnApi;
  sfnClient: SFNClient;
  replay: ReplayServer | null;
  runner: LocalRunner;
  /** Resolves when the named execution stops. */
  waitFor(executionArn: string): Promise<Execution>;
  /** Upload-trigger outcomes, in order (started, already_started, conflict, ignored). */
  /** What start-run did for each run.json upload (outcome "error" when it threw). */
  triggers: { key: string; outcome: string; executionArn?: string; error?: string }[];
  stop(): Promise<void>;
}

export async function startLocalRuntime(options: LocalOptions = {}): Promise<LocalRuntime> {
  const p = options.batchParallelism;
  // Zero children at once would run no child and leave every shard without a result.
  if (p !== undefined && !(Number.isInteger(p) && p >= 1))
    throw new InputContractError(`batch parallelism must be a whole number of at least 1, not ${p}`);
  const dataDir = resolve(options.dataDir ?? ".recipe");
  mkdirSync(dataDir, { recursive: true });
  const template = synthesizeTemplate(options.context);
  options.editTemplate?.(template);
  // Every principal of the stack signs with its own local credentials, and the emulators check each
  // call against the template's IAM as AWS would.
  const account = new LocalAccount(template);
  const s3 = await startS3Emulator(LOCAL_BUCKET, join(dataDir, "s3"), { account });
  const synthetic = !options.teacherUrl && options.teacher === "synthetic";
  const replay = options.teacherUrl
    ? null
    : await startReplayServer(
        undefined,
        options.teacherDelayMs ?? 0,
        options.teacherHold,
        synthetic
          ? (options.syntheticQuestions ?? []).map((q) => ({
              question: q.question,
              responses: syntheticResponses(q.question, q.answer, q.choices),
            }))
          : undefined,
      );
  // What the data cards and the report say answered: "1" the replay server, "synthetic" the other.
  const bundled = replay ? (synthetic ? "synthetic" : "1") : "";
  const teacherUrl = options.teacherUrl ?? replay!.url;
  // What runs in this process (the CLI's reads, uploads as the user) uses the emulator's own
  // credentials, like a user's admin credentials; stop() puts back what was there before, so nothing
  // made after it (a client, a child process) still points at this runtime's endpoints.
  const saved = new Map<string, string | undefined>();
  const setEnv = (vars: Record<string, string>) => {
    for (const [k, v] of Object.entries(vars)) {
      if (!saved.has(k)) saved.set(k, process.env[k]);
      process.env[k] = v;
    }
  };
  setEnv({
    AWS_ENDPOINT_URL: s3.endpoint,
    AWS_ACCESS_KEY_ID: EMULATOR_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: EMULATOR_CREDENTIALS.secretAccessKey,
    AWS_REGION: "us-east-1",
    RECIPE_BUCKET: LOCAL_BUCKET,
    RECIPE_SOURCE_ROOT: `s3://${LOCAL_BUCKET}/sources/`,
    RECIPE_REPLAY_TEACHER: bundled,
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? "SILENT",
    POWERTOOLS_METRICS_DISABLED: "true",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  });
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    OPENAI_API_KEY: options.apiKeyEnv ? (process.env[options.apiKeyEnv] ?? "") : "none",
    ...(options.teacherModel ? { RECIPE_MODEL: options.teacherModel } : {}),
    RECIPE_VERIFY_CMD: `${process.execPath} ${join(PROJECT_ROOT, "bin", "recipe.mjs")} verify`,
    RECIPE_WORKDIR: join(dataDir, "train"),
    // Multi-node training locally: the nodes (child processes) look for each other often.
    RECIPE_CLUSTER_POLL_MS: "200",
  };
  const lambdaConcurrency = options.lambdaConcurrency ?? LOCAL_ACCOUNT_CONCURRENCY;
  // Lambda's GetAccountSettings, answered with the limit the local Lambda service enforces.
  const lambdaApi = await startLambdaApi({
    concurrency: lambdaConcurrency,
    authorize: (key, action, resource) => {
      const principal = key ? account.principalForKey(key) : undefined;
      if (key === EMULATOR_CREDENTIALS.accessKeyId) return;
      if (!principal)
        throw Object.assign(new Error("The security token included in the request is invalid."), {
          name: "UnrecognizedClientException",
        });
      account.authorize(principal, action, resource);
    },
  });
  const waiters = new Map<string, ((e: Execution) => void)[]>();
  let runner: LocalRunner | undefined;
  const sfn = await startSfnApi({
    file: join(dataDir, "executions.json"),
    authorize: (key, action, resource) => {
      if (key === EMULATOR_CREDENTIALS.accessKeyId) return;
      const principal = key ? account.principalForKey(key) : undefined;
      if (!principal)
        throw Object.assign(new Error("The security token included in the request is invalid."), {
          name: "UnrecognizedClientException",
        });
      account.authorize(principal, action, resource);
    },
    onStart: (execution) => {
      void runner!.execute(JSON.parse(execution.input), execution.name).then((outcome) => {
        sfn.finish(execution.executionArn, {
          status: outcome.status,
          output: outcome.output === undefined ? undefined : JSON.stringify(outcome.output),
          error: outcome.error,
          cause: outcome.cause,
        });
        for (const w of waiters.get(execution.executionArn) ?? [])
          w(sfn.executions.get(execution.executionArn)!);
        waiters.delete(execution.executionArn);
      });
    },
  });
  runner = new LocalRunner({
    template,
    account,
    store: s3.store,
    childEnv,
    // No GPU here: every generate job calls the local teacher, whatever serving the run asks for.
    teacherEnv: { RECIPE_SERVING: "endpoint", OPENAI_BASE_URL: teacherUrl },
    // Local-only additions to each function's template environment: where the emulators are, and
    // settings a user passes to `recipe run` (the replay teacher, a judge endpoint and its key).
    lambdaEnv: () => ({
      AWS_ENDPOINT_URL: s3.endpoint,
      AWS_ENDPOINT_URL_SFN: sfn.endpoint,
      AWS_ENDPOINT_URL_LAMBDA: lambdaApi.endpoint,
      RECIPE_REPLAY_TEACHER: bundled,
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? "SILENT",
      POWERTOOLS_METRICS_DISABLED: "true",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      ...Object.fromEntries(
        Object.entries(process.env).filter(
          (e): e is [string, string] => /^RECIPE_JUDGE_/.test(e[0]) && !!e[1],
        ),
      ),
    }),
    batchParallelism: options.batchParallelism,
    accountConcurrency: lambdaConcurrency,
    log: options.log,
    // Each Batch container's output (CloudWatch Logs on AWS).
    logDir: join(dataDir, "logs"),
    beforeStep: options.beforeStep,
    onBatchChild: options.onBatchChild,
    stopGraceMs: options.stopGraceMs,
  });
  const sfnClient = new SFNClient({
    endpoint: sfn.endpoint,
    region: "us-east-1",
    credentials: EMULATOR_CREDENTIALS,
  });
  setEnv({ AWS_ENDPOINT_URL_SFN: sfn.endpoint, STATE_MACHINE_ARN });
  const startRun = [...runner.lambda.arns()].find((arn) => runner!.lambda.fn(arn).step === "start-run")!;
  const triggers: LocalRuntime["triggers"] = [];
  // EventBridge's "Object Created on runs/*/run.json" rule, locally: the start-run Lambda, in process,
  // with the event EventBridge delivers.
  s3.onObjectCreated((key, etag) => {
    if (!runIdFromConfigKey(key)) return;
    const event = {
      "detail-type": "Object Created",
      source: "aws.s3",
      detail: { bucket: { name: LOCAL_BUCKET }, object: { key, etag } },
    };
    // EventBridge invokes the function asynchronously with its own permission; the function runs as
    // its role.
    (
      runner!.lambda.invoke(startRun, event, { async: true }) as Promise<{
        outcome: string;
        executionArn?: string;
      }>
    )
      .then((r) => {
        triggers.push({ key, outcome: r.outcome, executionArn: r.executionArn });
        options.log?.(`${key}: ${r.outcome}`);
      })
      .catch((err) => {
        triggers.push({ key, outcome: "error", error: (err as Error).message });
        options.log?.(`start-run failed for ${key}: ${(err as Error).message}`);
      });
  });
  return {
    s3,
    account,
    sfn,
    sfnClient,
    replay,
    runner: runner!,
    triggers,
    waitFor(executionArn) {
      const e = sfn.executions.get(executionArn);
      if (e && e.status !== "RUNNING") return Promise.resolve(e);
      return new Promise((r) => waiters.set(executionArn, [...(waiters.get(executionArn) ?? []), r]));
    },
    async stop() {
      sfnClient.destroy();
      await runner!.close();
      await sfn.close();
      await lambdaApi.close();
      await replay?.close();
      await s3.stop();
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    },
  };
}

/**
 * `recipe run --fresh`: forgets one run (its objects under runs/<run-id>/, the records of all its
 * executions and its exported files) and nothing else: other runs and the generation cache (what makes
 * a rerun free) stay.
 */
export async function clearRun(rt: LocalRuntime, dataDir: string, runId: string): Promise<number> {
  const objects = await listAll(rt.s3.store, runPrefix(runId));
  for (const key of objects) await rt.s3.store.delete(key);
  for (const e of [...rt.sfn.executions.values()])
    if (isAttemptOf(e.name, runId)) rt.sfn.forget(e.executionArn);
  rmSync(join(dataDir, "runs", runId), { recursive: true, force: true });
  return objects.length;
}

export function executionArnFor(runId: string): string {
  return `${STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:")}:${runId}`;
}
