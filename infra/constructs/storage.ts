/** The pipeline bucket: encrypted, SSL only, private, versioned, logged, retained, EventBridge on. */
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";

export interface StorageProps {
  /** @default "kms" */
  readonly encryption: "kms" | "s3";
}

export class PipelineStorage extends Construct {
  readonly bucket: s3.Bucket;
  readonly logs: s3.Bucket;
  readonly key?: kms.Key;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    this.logs = new s3.Bucket(this, "AccessLogs", {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ expiration: Duration.days(365) }],
    });
    if (props.encryption === "kms") {
      this.key = new kms.Key(this, "Key", {
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.RETAIN,
        description: "recipe-pipeline bucket",
      });
    }
    this.bucket = new s3.Bucket(this, "Bucket", {
      encryption: this.key ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED,
      encryptionKey: this.key,
      bucketKeyEnabled: !!this.key,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      versioned: true,
      serverAccessLogsBucket: this.logs,
      serverAccessLogsPrefix: "pipeline-bucket/",
      eventBridgeEnabled: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        // A killed multipart writer leaves parts, never a partial object: clean the parts up.
        { id: "abort-incomplete-uploads", abortIncompleteMultipartUploadAfter: Duration.days(2) },
        // Generations are the resume cache and are reused across runs; older ones move to cheaper storage.
        {
          id: "generation-cache",
          prefix: "cache/generate/",
          transitions: [
            { storageClass: s3.StorageClass.INTELLIGENT_TIERING, transitionAfter: Duration.days(30) },
          ],
          noncurrentVersionExpiration: Duration.days(7),
        },
        // Map run results and scratch passes are only read during a run.
        {
          id: "temporary",
          prefix: "tmp/",
          expiration: Duration.days(14),
          noncurrentVersionExpiration: Duration.days(1),
        },
        { id: "old-versions", noncurrentVersionExpiration: Duration.days(30) },
      ],
    });
  }
}
