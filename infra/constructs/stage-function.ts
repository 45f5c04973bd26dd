/**
 * One Lambda per pipeline step: NodejsFunction (esbuild, no Docker), Node.js 22 on arm64, Powertools
 * environment, and S3 grants on exactly the key patterns the step reads and writes.
 */
import { join } from "node:path";
import { Duration } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import type * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { PROJECT_ROOT } from "../root.ts";

export interface StageFunctionProps {
  /** The folder under lambdas/ (a verb and a noun). */
  readonly step: string;
  readonly bucket: s3.IBucket;
  readonly key?: kms.IKey;
  /** Object key patterns read, e.g. `runs/*\/config.json`. */
  readonly reads: string[];
  /** Object key patterns written. */
  readonly writes: string[];
  /** Key patterns it may delete (none for almost every step). */
  readonly deletes?: string[];
  /** Source buckets read (sources and benchmarks). @default none */
  readonly sourceBuckets?: string[];
  /** @default 1024 */
  readonly memoryMb?: number;
  /** @default 5 minutes */
  readonly timeout?: Duration;
  readonly environment?: Record<string, string>;
  /** Extra files copied next to the bundle (e.g. the judge prompt). */
  readonly copyFiles?: string[];
  readonly logGroup: logs.ILogGroup;
}

export const BUNDLE_BANNER =
  "import{createRequire}from'module';const require=createRequire(import.meta.url);";

export class StageFunction extends Construct {
  readonly fn: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: StageFunctionProps) {
    super(scope, id);
    const copy = props.copyFiles ?? [];
    this.fn = new nodejs.NodejsFunction(this, "Fn", {
      entry: join(PROJECT_ROOT, "lambdas", props.step, "handler.ts"),
      handler: "handle",
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memoryMb ?? 1024,
      timeout: props.timeout ?? Duration.minutes(5),
      tracing: lambda.Tracing.ACTIVE,
      logGroup: props.logGroup,
      depsLockFilePath: join(PROJECT_ROOT, "package-lock.json"),
      projectRoot: PROJECT_ROOT,
      environment: {
        RECIPE_BUCKET: props.bucket.bucketName,
        POWERTOOLS_SERVICE_NAME: "recipe-pipeline",
        POWERTOOLS_METRICS_NAMESPACE: "RecipePipeline",
        POWERTOOLS_LOG_LEVEL: "INFO",
        NODE_OPTIONS: "--enable-source-maps",
        ...props.environment,
      },
      bundling: {
        format: nodejs.OutputFormat.ESM,
        target: "node20",
        minify: true,
        sourceMap: true,
        forceDockerBundling: false,
        mainFields: ["module", "main"],
        banner: BUNDLE_BANNER,
        externalModules: [
          "@aws-sdk/client-s3",
          "@aws-sdk/client-sfn",
          "@aws-sdk/client-secrets-manager",
          "@aws-sdk/client-lambda",
        ],
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (input: string, output: string) => copy.map((f) => `cp ${input}/${f} ${output}/`),
        },
      },
    });
    const arn = (pattern: string) => props.bucket.arnForObjects(pattern);
    if (props.reads.length > 0) {
      this.fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ["s3:GetObject"], resources: props.reads.map(arn) }),
      );
    }
    if (props.writes.length > 0) {
      this.fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ["s3:PutObject", "s3:AbortMultipartUpload"],
          resources: props.writes.map(arn),
        }),
      );
    }
    if ((props.deletes ?? []).length > 0) {
      this.fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ["s3:DeleteObject"], resources: props.deletes!.map(arn) }),
      );
    }
    if (props.reads.length > 0) {
      // S3 answers a GET or HEAD of a missing key with 403, not 404, unless the caller may list the
      // bucket. Every step tells "not written yet" (stats, _SUCCESS, markers, cache) from "denied",
      // so each one that reads may list this bucket's keys (keys only: reading stays per pattern).
      this.fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ["s3:ListBucket"], resources: [props.bucket.bucketArn] }),
      );
    }
    for (const b of props.sourceBuckets ?? []) {
      this.fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ["s3:GetObject", "s3:ListBucket"],
          resources: [`arn:aws:s3:::${b}`, `arn:aws:s3:::${b}/*`],
        }),
      );
    }
    props.key?.grantEncryptDecrypt(this.fn);
  }
}
