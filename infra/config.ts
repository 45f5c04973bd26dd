/**
 * Deploy-time settings, read from CDK context (`-c key=value` or cdk.json). Every one has a default
 * that deploys; none holds a secret (API keys are Secrets Manager ARNs).
 */
import type { Node } from "constructs";
import { GPU_INSTANCES } from "../core/generate/fit.ts";
import { DEFAULT_INSTANCE_TYPES, QUEUE_SETTING, settingList } from "../core/generate/queues.ts";

export interface PipelineSettings {
  /** "kms" (a customer managed key, rotated) or "s3" (S3-managed keys). @default "kms" */
  readonly encryption: "kms" | "s3";
  /** Existing VPC id for the GPU jobs. @default a new VPC with private subnets and an S3 gateway endpoint */
  readonly vpcId?: string;
  /**
   * Instance types of the large GPU queue (the teacher's): every one must hold the teacher, since
   * Batch starts whichever is cheapest. @default p5.48xlarge
   */
  readonly largeInstanceTypes: string[];
  /** Instance types of the small GPU queue (the policy's rollouts, hosted-teacher jobs). @default g6e.48xlarge */
  readonly smallInstanceTypes: string[];
  /** Max vCPUs of each generate compute environment. @default 1024 */
  readonly maxVcpus: number;
  /** Instance types of the multi-node training environment. @default p5.48xlarge */
  readonly trainInstanceTypes: string[];
  /** Nodes the training environment must hold at once (training.rl.nodes of the runs). @default 8, the published recipe's */
  readonly trainNodes: number;
  /** Max vCPUs of the training environment. @default trainNodes x the largest train instance's vCPUs (1,536 for 8 x p5.48xlarge) */
  readonly trainMaxVcpus: number;
  /**
   * The Availability Zone of the training environment (a cluster placement group lives in one): one
   * that offers the train instance types (`aws ec2 describe-instance-type-offerings --location-type
   * availability-zone --filters Name=instance-type,Values=p5.48xlarge`). @default the first private subnet's
   */
  readonly trainAvailabilityZone?: string;
  /** Prebuilt images (for deploying without Docker). @default build batch-images/<name> as Docker assets */
  readonly generateImageUri?: string;
  readonly trainImageUri?: string;
  /** The train-sft image (batch-images/train-sft), prebuilt. @default built from the checkout */
  readonly sftImageUri?: string;
  /** The evaluate image (batch-images/evaluate), prebuilt. @default built from the checkout */
  readonly evalImageUri?: string;
  /** Secrets Manager ARN of a hosted teacher's API key, injected into the generate jobs as OPENAI_API_KEY. @default none */
  readonly teacherApiKeySecretArn?: string;
  /** The one host (https) the teacher's key may be sent to; required with teacherApiKeySecretArn. */
  readonly teacherEndpointHost?: string;
  /** Secrets Manager ARN of a hosted judge's API key, read by verify-shard (the only step granted it). @default none */
  readonly judgeApiKeySecretArn?: string;
  /** The one host (https) the judge's key may be sent to; required with judgeApiKeySecretArn. */
  readonly judgeEndpointHost?: string;
  /** Buckets the sources live in (read-only grants). @default none besides the pipeline bucket */
  readonly sourceBuckets: string[];
  /** Email for alarm notifications (an SNS topic is created). @default no topic */
  readonly alarmEmail?: string;
  /** GPUs per generate job. @default 8 */
  readonly gpusPerJob: number;
  /**
   * Largest Lambda memory (MB) any step gets. New accounts' quota is 3,008 MB; raise it here (up to
   * 10,240) where the account allows, for the steps that want more. @default 3008
   */
  readonly lambdaMemoryMaxMb: number;
  /** Root volume of each GPU host in GiB: images, teacher weights (~470 GB for a 235B model), checkpoints. @default 1200 */
  readonly gpuRootVolumeGiB: number;
  /** Hours a GPU job may wait RUNNABLE (no capacity or quota) before the queue cancels it (0.17-24). @default 6 */
  readonly gpuRunnableTimeoutHours: number;
}

function bounded(name: string, v: unknown, fallback: number, min: number, max: number): number {
  if (v === undefined || v === null || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new Error(`context ${name} must be a number from ${min} to ${max}, not ${String(v)}`);
  return n;
}

const HOST =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/;

/** The deploy settings from CDK context; every problem is listed in one error. */
export function settingsFrom(node: Node): PipelineSettings {
  return settingsFromContext((k) => node.tryGetContext(k) as unknown);
}

/** The same from any context lookup (`recipe validate -c key=value` reads cdk.json and its own -c). */
export function settingsFromContext(get: (key: string) => unknown): PipelineSettings {
  const problems: string[] = [];
  const encryption = String(get("encryption") ?? "kms");
  if (encryption !== "kms" && encryption !== "s3")
    problems.push(`context encryption must be kms or s3, not ${encryption}`);
  const opt = (k: string) => (get(k) ? String(get(k)) : undefined);
  const num = (name: string, fallback: number, min: number, max: number): number => {
    try {
      return bounded(name, get(name), fallback, min, max);
    } catch (err) {
      problems.push((err as Error).message);
      return fallback;
    }
  };
  if (get("instanceTypes") !== undefined)
    problems.push(
      "context instanceTypes is replaced by largeInstanceTypes (the teacher's queue: every type must hold the teacher) and smallInstanceTypes (the policy's rollouts)",
    );
  const gpusPerJob = num("gpusPerJob", 8, 1, 8);
  const types = (setting: string, fallback: string[]) => {
    const list = settingList(get(setting), fallback);
    if (list.length === 0) problems.push(`context ${setting} names no instance type`);
    for (const t of list) {
      const known = GPU_INSTANCES[t];
      if (known && known.gpus < gpusPerJob)
        problems.push(
          `context ${setting}: ${t} has ${known.gpus} GPUs, fewer than gpusPerJob (${gpusPerJob}): a job could never be placed on it`,
        );
    }
    return list;
  };
  const largeInstanceTypes = types(QUEUE_SETTING.large, DEFAULT_INSTANCE_TYPES.large);
  const smallInstanceTypes = types(QUEUE_SETTING.small, DEFAULT_INSTANCE_TYPES.small);
  const trainInstanceTypes = settingList(get("trainInstanceTypes"), ["p5.48xlarge"]);
  const vcpus = (list: string[]) => Math.max(0, ...list.map((t) => GPU_INSTANCES[t]?.vcpus ?? 0));
  const maxVcpus = num("maxVcpus", 1024, 1, 100_000);
  const largest = vcpus([...largeInstanceTypes, ...smallInstanceTypes]);
  if (maxVcpus < largest)
    problems.push(
      `context maxVcpus (${maxVcpus}) is below one instance's vCPUs (${largest}): no job could start`,
    );
  const trainNodes = num("trainNodes", 8, 1, 64);
  const neededTrain = trainNodes * vcpus(trainInstanceTypes);
  const trainMaxVcpus = num("trainMaxVcpus", Math.max(neededTrain, 1), 1, 100_000);
  if (trainMaxVcpus < neededTrain)
    problems.push(
      `context trainMaxVcpus (${trainMaxVcpus}) is below trainNodes x the train instance's vCPUs (${trainNodes} x ${vcpus(trainInstanceTypes)} = ${neededTrain}): the multi-node job could never start`,
    );
  const secretHost = (secret: string, hostSetting: string) => {
    const host = opt(hostSetting)?.toLowerCase();
    if (host !== undefined && !HOST.test(host))
      problems.push(`context ${hostSetting} must be a host name (e.g. api.example.com), not ${host}`);
    if (opt(secret) && host === undefined)
      problems.push(
        `context ${secret} needs ${hostSetting}: the one https host its key may be sent to (e.g. -c ${hostSetting}=api.example.com)`,
      );
    return host;
  };
  const teacherEndpointHost = secretHost("teacherApiKeySecretArn", "teacherEndpointHost");
  const judgeEndpointHost = secretHost("judgeApiKeySecretArn", "judgeEndpointHost");
  const settings: PipelineSettings = {
    encryption: encryption as "kms" | "s3",
    vpcId: opt("vpcId"),
    largeInstanceTypes,
    smallInstanceTypes,
    maxVcpus,
    trainInstanceTypes,
    trainNodes,
    trainMaxVcpus,
    trainAvailabilityZone: opt("trainAvailabilityZone"),
    generateImageUri: opt("generateImageUri"),
    trainImageUri: opt("trainImageUri"),
    sftImageUri: opt("sftImageUri"),
    evalImageUri: opt("evalImageUri"),
    teacherApiKeySecretArn: opt("teacherApiKeySecretArn"),
    teacherEndpointHost,
    judgeApiKeySecretArn: opt("judgeApiKeySecretArn"),
    judgeEndpointHost,
    sourceBuckets: settingList(get("sourceBuckets"), []),
    alarmEmail: opt("alarmEmail"),
    gpusPerJob,
    lambdaMemoryMaxMb: num("lambdaMemoryMaxMb", 3008, 128, 10240),
    gpuRootVolumeGiB: num("gpuRootVolumeGiB", 1200, 100, 16384),
    gpuRunnableTimeoutHours: num("gpuRunnableTimeoutHours", 6, 1 / 6, 24),
  };
  if (problems.length > 0)
    throw new Error(
      `invalid deploy settings (-c key=value), ${problems.length} problem(s):\n - ${problems.join("\n - ")}`,
    );
  return settings;
}
