/**
 * Deploy-time settings, read from CDK context (`-c key=value` or cdk.json). Every one has a default
 * that deploys; none holds a secret (API keys are Secrets Manager ARNs).
 */
import type { Node } from "constructs";

export interface PipelineSettings {
  /** "kms" (a customer managed key, rotated) or "s3" (S3-managed keys). @default "kms" */
  readonly encryption: "kms" | "s3";
  /** Existing VPC id for the GPU jobs. @default a new VPC with private subnets and an S3 gateway endpoint */
  readonly vpcId?: string;
  /** GPU instance types. @default g6e.12xlarge, g6e.48xlarge, p4d.24xlarge, p5.48xlarge */
  readonly instanceTypes: string[];
  /** Max vCPUs of each GPU compute environment. @default 1024 */
  readonly maxVcpus: number;
  /** Prebuilt images (for deploying without Docker). @default build batch-images/<name> as Docker assets */
  readonly generateImageUri?: string;
  readonly trainImageUri?: string;
  /** Secrets Manager ARN of a hosted teacher's API key, injected into the generate jobs as OPENAI_API_KEY. @default none */
  readonly teacherApiKeySecretArn?: string;
  /** Secrets Manager ARN of a hosted judge's API key, read by verify-shard (the only step granted it). @default none */
  readonly judgeApiKeySecretArn?: string;
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

function list(v: unknown, fallback: string[]): string[] {
  if (v === undefined || v === null || v === "") return fallback;
  if (Array.isArray(v)) return v.map(String);
  return String(v)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function bounded(name: string, v: unknown, fallback: number, min: number, max: number): number {
  if (v === undefined || v === null || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new Error(`context ${name} must be a number from ${min} to ${max}, not ${String(v)}`);
  return n;
}

export function settingsFrom(node: Node): PipelineSettings {
  const get = (k: string) => node.tryGetContext(k) as unknown;
  const encryption = String(get("encryption") ?? "kms");
  if (encryption !== "kms" && encryption !== "s3")
    throw new Error(`context encryption must be kms or s3, not ${encryption}`);
  const opt = (k: string) => (get(k) ? String(get(k)) : undefined);
  return {
    encryption,
    vpcId: opt("vpcId"),
    instanceTypes: list(get("instanceTypes"), [
      "g6e.12xlarge",
      "g6e.48xlarge",
      "p4d.24xlarge",
      "p5.48xlarge",
    ]),
    maxVcpus: Number(get("maxVcpus") ?? 1024),
    generateImageUri: opt("generateImageUri"),
    trainImageUri: opt("trainImageUri"),
    teacherApiKeySecretArn: opt("teacherApiKeySecretArn"),
    judgeApiKeySecretArn: opt("judgeApiKeySecretArn"),
    sourceBuckets: list(get("sourceBuckets"), []),
    alarmEmail: opt("alarmEmail"),
    gpusPerJob: Number(get("gpusPerJob") ?? 8),
    lambdaMemoryMaxMb: bounded("lambdaMemoryMaxMb", get("lambdaMemoryMaxMb"), 3008, 128, 10240),
    gpuRootVolumeGiB: bounded("gpuRootVolumeGiB", get("gpuRootVolumeGiB"), 1200, 100, 16384),
    gpuRunnableTimeoutHours: bounded("gpuRunnableTimeoutHours", get("gpuRunnableTimeoutHours"), 6, 1 / 6, 24),
  };
}
