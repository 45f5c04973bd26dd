/**
 * The recipe-pipeline stack: bucket, S3-upload trigger, the `<stack>-run` state machine with its
 * Lambdas and Distributed Maps, AWS Batch GPU jobs, and operations.
 */
import { CfnOutput, Duration, Stack, type StackProps } from "aws-cdk-lib";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as destinations from "aws-cdk-lib/aws-lambda-destinations";
import * as logs from "aws-cdk-lib/aws-logs";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as sqs from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import type { PipelineSettings } from "./config.ts";
import { batchNames, GpuBatch, stateMachineName } from "./constructs/gpu-batch.ts";
import { Operations } from "./constructs/operations.ts";
import { PipelineStateMachine, type StepName } from "./constructs/pipeline-state-machine.ts";
import { StageFunction, type StageFunctionProps } from "./constructs/stage-function.ts";
import { PipelineStorage } from "./constructs/storage.ts";

export interface RecipePipelineStackProps extends StackProps {
  readonly settings: PipelineSettings;
}

type Grants = Pick<
  StageFunctionProps,
  "reads" | "writes" | "deletes" | "memoryMb" | "timeout" | "copyFiles"
> & {
  sources?: boolean;
};

/** What each step reads and writes, by key pattern: least privilege, next to the resource. */
const GRANTS: Record<StepName | "start-run", Grants> = {
  // It also decides the revision: reads each stage's recorded fingerprint, clears the stages whose
  // fingerprint changed (the only step that deletes: keys below a run's stage or dataset folders,
  // never run.json or config.json) and records the new fingerprints. It also removes the failure.json
  // an earlier execution recorded, so the run's failure is always this execution's.
  "validate-config": {
    reads: ["runs/*/run.json", "runs/*/failure.json", "runs/*/*/fingerprint.json", "runs/*/*/_SUCCESS"],
    writes: [
      "runs/*/config.json",
      "runs/*/failure.json",
      "runs/*/attempts/*",
      "runs/*/revision.json",
      "runs/*/*/fingerprint.json",
    ],
    // Also an earlier attempt's failure.json, once it is kept under attempts/.
    deletes: ["runs/*/*/*", "runs/*/failure.json"],
    timeout: Duration.minutes(15),
    // Lists the sources (sizes and ETags, no download): the data is an input of the fingerprints.
    sources: true,
  },
  "plan-ingest": {
    reads: ["runs/*/config.json"],
    writes: ["runs/*/ingest-*/manifest.json"],
    sources: true,
  },
  "ingest-source": {
    reads: ["runs/*/config.json", "runs/*/ingest-*/stats/*", "sources/*"],
    writes: [
      "runs/*/ingest-*/shards/*",
      "runs/*/ingest-*/rejects/*",
      "runs/*/ingest-*/stats/*",
      "runs/*/ingest-*/traces/*",
      "images/*",
    ],
    sources: true,
    memoryMb: 2048,
    timeout: Duration.minutes(15),
  },
  "finish-stage": {
    reads: ["runs/*/*/stats/*", "runs/*/*/_SUCCESS", "runs/*/*/manifest.json", "runs/*/*/missing.json"],
    writes: ["runs/*/*/_SUCCESS", "runs/*/*/missing.json"],
  },
  "plan-dedup": {
    reads: ["runs/*/config.json", "runs/*/ingest-*/manifest.json", "runs/*/*/_SUCCESS"],
    writes: ["runs/*/dedup-*/work/*"],
  },
  "sign-questions": {
    reads: [
      "runs/*/config.json",
      "runs/*/ingest-*/shards/*",
      "runs/*/dedup-sft/shards/*",
      "runs/*/dedup-*/work/*",
      "sources/*",
    ],
    writes: ["runs/*/dedup-*/work/bands/*"],
    sources: true,
    memoryMb: 2048,
    timeout: Duration.minutes(15),
  },
  "group-candidates": {
    reads: ["runs/*/config.json", "runs/*/dedup-*/work/*"],
    writes: ["runs/*/dedup-*/work/pairs/*"],
    memoryMb: 3008,
    timeout: Duration.minutes(15),
  },
  "resolve-duplicates": {
    reads: [
      "runs/*/config.json",
      "runs/*/dedup-*/work/*",
      "runs/*/ingest-*/shards/*",
      "runs/*/dedup-sft/shards/*",
    ],
    writes: ["runs/*/dedup-*/work/decisions/*", "runs/*/dedup-*/work/resolved.json"],
    memoryMb: 10240,
    timeout: Duration.minutes(15),
  },
  "apply-dedup": {
    reads: [
      "runs/*/config.json",
      "runs/*/dedup-*/work/decisions/*",
      "runs/*/dedup-*/stats/*",
      "runs/*/ingest-*/shards/*",
    ],
    writes: ["runs/*/dedup-*/shards/*", "runs/*/dedup-*/rejects/*", "runs/*/dedup-*/stats/*"],
    memoryMb: 2048,
    timeout: Duration.minutes(15),
  },
  "plan-generation": {
    reads: ["runs/*/config.json", "runs/*/ingest-*/manifest.json", "runs/*/dedup-*/stats/*"],
    writes: ["runs/*/plan-*/manifest.json"],
  },
  "plan-verify": {
    reads: ["runs/*/config.json", "runs/*/plan-*/manifest.json", "runs/*/ingest-*/manifest.json"],
    writes: ["runs/*/verify-traces/manifest.json", "runs/*/filter-rl/manifest.json"],
  },
  "verify-shard": {
    reads: [
      "runs/*/config.json",
      "runs/*/distill/*",
      "runs/*/estimate-difficulty/*",
      "runs/*/ingest-sft/traces/*",
      "runs/*/dedup-*/shards/*",
      "runs/*/verify-traces/stats/*",
      "runs/*/filter-rl/stats/*",
    ],
    writes: ["runs/*/verify-traces/*", "runs/*/filter-rl/*"],
    memoryMb: 2048,
    timeout: Duration.minutes(15),
    copyFiles: ["lambdas/shared/judge-prompt.md"],
  },
  "select-and-mix": {
    reads: ["runs/*/config.json", "runs/*/verify-traces/shards/*", "runs/*/select-and-mix/*"],
    writes: ["runs/*/select-and-mix/*"],
    // A fan-out: the plan, the step that sees every trace, needs ~330 MB at the recipe's 7M traces.
    memoryMb: 2048,
    timeout: Duration.minutes(15),
  },
  "write-sft-dataset": {
    reads: [
      "runs/*/config.json",
      "runs/*/select-and-mix/shards/*",
      "runs/*/*/_SUCCESS",
      // The data card names the models and endpoints that answered, as the stages recorded them.
      "runs/*/*/fingerprint.json",
      "images/*",
      "runs/*/write-sft-dataset/work/*",
    ],
    writes: ["runs/*/datasets/sft/*", "runs/*/write-sft-dataset/_SUCCESS", "runs/*/write-sft-dataset/work/*"],
    memoryMb: 2048,
    timeout: Duration.minutes(15),
  },
  "write-rl-dataset": {
    reads: [
      "runs/*/config.json",
      "runs/*/filter-rl/*",
      "runs/*/dedup-rl/shards/*",
      "runs/*/*/_SUCCESS",
      "runs/*/*/fingerprint.json",
      "images/*",
      "runs/*/write-rl-dataset/work/*",
    ],
    writes: [
      "runs/*/datasets/rl/*",
      "runs/*/write-rl-dataset/_SUCCESS",
      "runs/*/write-rl-dataset/work/*",
      "runs/*/write-rl-dataset/rejects/*",
    ],
    // A fan-out: a part holds one filter-rl shard's rows and images.
    memoryMb: 2048,
    timeout: Duration.minutes(15),
  },
  report: {
    reads: [
      "runs/*/config.json",
      "runs/*/*/_SUCCESS",
      "runs/*/*/fingerprint.json",
      "runs/*/revision.json",
      // Its examples: a few rejects per reason, a few kept traces per domain with their images.
      "runs/*/*/rejects/*",
      "runs/*/select-and-mix/shards/*",
      "images/*",
      // Each question's source line, gold answer and images; per-source counts; accuracy per domain.
      "runs/*/ingest-*/shards/*",
      "runs/*/ingest-*/manifest.json",
      "runs/*/ingest-*/stats/*",
      "runs/*/verify-traces/shards/*",
      // The benchmark table: each model's score per task (evaluate's results).
      "runs/*/eval/*",
    ],
    memoryMb: 2048,
    writes: ["runs/*/report/*", "runs/*/report/_SUCCESS"],
  },
  "run-failure": { reads: ["runs/*/failure.json"], writes: ["runs/*/failure.json", "runs/*/attempts/*"] },
  // start-run hashes the uploaded run.json (an SSE-KMS ETag is not an MD5 of the content).
  // It lists the run's sources too: the same run.json over changed data starts a new revision.
  "start-run": { reads: ["runs/*/run.json"], writes: ["runs/*/upload-conflict.json"], sources: true },
};

export class RecipePipelineStack extends Stack {
  constructor(scope: Construct, id: string, props: RecipePipelineStackProps) {
    super(scope, id, props);
    // One statement per action set instead of one per grant: the state machine role's inline policies
    // (a Lambda invoke grant per step) would otherwise approach IAM's 10,240 characters per role.
    this.node.setContext("@aws-cdk/aws-iam:minimizePolicies", true);
    const s = props.settings;
    const storage = new PipelineStorage(this, "Storage", { encryption: s.encryption });
    const bucket = storage.bucket;
    const lambdaLogs = new logs.LogGroup(this, "LambdaLogs", { retention: logs.RetentionDays.THREE_MONTHS });

    const fn = (step: StepName | "start-run", environment?: Record<string, string>) => {
      const g = GRANTS[step];
      return new StageFunction(this, `Step-${step}`, {
        step,
        bucket,
        key: storage.key,
        reads: g.reads,
        writes: g.writes,
        deletes: g.deletes,
        // New accounts may not create functions above 3,008 MB: the default cap; context raises it.
        memoryMb: Math.min(g.memoryMb ?? 1024, s.lambdaMemoryMaxMb),
        timeout: g.timeout,
        copyFiles: g.copyFiles,
        sourceBuckets: g.sources ? s.sourceBuckets : [],
        environment: { RECIPE_SOURCE_ROOT: `s3://${bucket.bucketName}/sources/`, ...environment },
        logGroup: lambdaLogs,
      }).fn;
    };
    const steps = Object.keys(GRANTS).filter((k) => k !== "start-run") as StepName[];
    const functions = Object.fromEntries(steps.map((step) => [step, fn(step)])) as Record<
      StepName,
      ReturnType<typeof fn>
    >;
    if (s.judgeApiKeySecretArn) {
      // A hosted judge's key: only verify-shard may read it, and it reads it at cold start.
      const verify = functions["verify-shard"];
      verify.addEnvironment("RECIPE_JUDGE_API_KEY_SECRET_ARN", s.judgeApiKeySecretArn);
      secretsmanager.Secret.fromSecretCompleteArn(this, "JudgeKey", s.judgeApiKeySecretArn).grantRead(verify);
    }

    const gpu = new GpuBatch(this, "Gpu", {
      bucket,
      key: storage.key,
      vpcId: s.vpcId,
      queueInstanceTypes: { large: s.largeInstanceTypes, small: s.smallInstanceTypes },
      maxVcpus: s.maxVcpus,
      trainInstanceTypes: s.trainInstanceTypes,
      trainMaxVcpus: s.trainMaxVcpus,
      trainAvailabilityZone: s.trainAvailabilityZone,
      gpusPerJob: s.gpusPerJob,
      generateImageUri: s.generateImageUri,
      trainImageUri: s.trainImageUri,
      sftImageUri: s.sftImageUri,
      evalImageUri: s.evalImageUri,
      judgeApiKeySecretArn: s.judgeApiKeySecretArn,
      judgeEndpointHost: s.judgeEndpointHost,
      teacherApiKeySecretArn: s.teacherApiKeySecretArn,
      teacherEndpointHost: s.teacherEndpointHost,
      sourceBuckets: s.sourceBuckets,
      rootVolumeGiB: s.gpuRootVolumeGiB,
      runnableTimeout: Duration.hours(s.gpuRunnableTimeoutHours),
    });
    // validate-config caps the Distributed Maps under the account's Lambda concurrency
    // (GetAccountSettings has no resource-level permission) and refuses a run.json that would send a
    // deployed key to any host but the one the deploy bound it to.
    functions["validate-config"].addToRolePolicy(
      new iam.PolicyStatement({ actions: ["lambda:GetAccountSettings"], resources: ["*"] }),
    );
    if (s.teacherEndpointHost && s.teacherApiKeySecretArn)
      functions["validate-config"].addEnvironment("RECIPE_TEACHER_KEY_HOST", s.teacherEndpointHost);
    if (s.judgeEndpointHost && s.judgeApiKeySecretArn) {
      functions["validate-config"].addEnvironment("RECIPE_JUDGE_KEY_HOST", s.judgeEndpointHost);
      // verify-shard checks it again before it sends the judge's key.
      functions["verify-shard"].addEnvironment("RECIPE_JUDGE_KEY_HOST", s.judgeEndpointHost);
    }
    // validate-config picks each run's queues (core/generate/queues.ts): it is told each queue's ARN
    // and instance types, the same lists the compute environments were given.
    const names = batchNames(this);
    for (const size of ["large", "small"] as const) {
      const tag = size.toUpperCase();
      functions["validate-config"].addEnvironment(
        `RECIPE_GPU_QUEUE_${tag}`,
        this.formatArn({ service: "batch", resource: "job-queue", resourceName: names.queues[size] }),
      );
      functions["validate-config"].addEnvironment(
        `RECIPE_GPU_QUEUE_${tag}_TYPES`,
        (size === "large" ? s.largeInstanceTypes : s.smallInstanceTypes).join(","),
      );
    }

    const pipeline = new PipelineStateMachine(this, "Pipeline", {
      functions,
      bucket,
      queues: gpu.queues,
      generateJob: gpu.generateJob,
      trainJob: gpu.trainJob,
      trainMultiNodeJob: gpu.trainMultiNodeJob,
      trainQueue: gpu.trainQueue,
      trainSftJob: gpu.trainSftJob,
      trainSftMultiNodeJob: gpu.trainSftMultiNodeJob,
      evaluateJob: gpu.evaluateJob,
    });
    storage.key?.grantEncryptDecrypt(pipeline.stateMachine);

    const startRun = fn("start-run", { STATE_MACHINE_ARN: pipeline.stateMachine.stateMachineArn });
    // A run start that cannot be delivered (EventBridge) or fails every attempt (start-run's async
    // retries) lands here, with the upload event, and raises the RunStartLost alarm: never silent.
    const lostRunStarts = new sqs.Queue(this, "LostRunStarts", {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    startRun.configureAsyncInvoke({
      retryAttempts: 2,
      onFailure: new destinations.SqsDestination(lostRunStarts),
    });
    pipeline.stateMachine.grantStartExecution(startRun);
    startRun.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["states:DescribeExecution"],
        resources: [
          `arn:${this.partition}:states:${this.region}:${this.account}:execution:${stateMachineName(this.stackName)}:*`,
        ],
      }),
    );
    new events.Rule(this, "RunUploaded", {
      description: "runs/<run-id>/run.json uploaded: start the run",
      eventPattern: {
        source: ["aws.s3"],
        detailType: ["Object Created"],
        detail: { bucket: { name: [bucket.bucketName] }, object: { key: [{ wildcard: "runs/*/run.json" }] } },
      },
      targets: [
        new targets.LambdaFunction(startRun, {
          retryAttempts: 4,
          maxEventAge: Duration.hours(2),
          deadLetterQueue: lostRunStarts,
        }),
      ],
    });

    const ops = new Operations(this, "Operations", {
      stateMachine: pipeline.stateMachine,
      functions: [...Object.values(functions), startRun],
      jobQueueArns: [gpu.queues.large, gpu.queues.small, gpu.trainQueue].map((q) => q.jobQueueArn),
      alarmEmail: s.alarmEmail,
      key: storage.key,
      lostRunStarts,
    });

    new CfnOutput(this, "BucketName", { value: bucket.bucketName });
    new CfnOutput(this, "StateMachineArn", { value: pipeline.stateMachine.stateMachineArn });
    new CfnOutput(this, "DashboardUrl", {
      value: `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${ops.dashboard.dashboardName}`,
    });
    new CfnOutput(this, "StartRunCommand", {
      value: `aws s3 cp run.json s3://${bucket.bucketName}/runs/<run-id>/run.json`,
    });
  }
}
