/**
 * cdk-nag acknowledgements. Each names the rule, the constructs it applies to (by path), and why;
 * nothing is acknowledged stack-wide.
 */
import { type Stack, Validations } from "aws-cdk-lib";
import type cdkNag from "cdk-nag";

const RULES: { where: RegExp; rule: string; reason: string }[] = [
  {
    where: /\/Step-[a-z-]+\/Fn\/ServiceRole\/Resource$/,
    rule: "AwsSolutions-IAM4",
    reason: "AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs.",
  },
  {
    where: /\/Step-[a-z-]+\/Fn\/ServiceRole\/DefaultPolicy\/Resource$/,
    rule: "AwsSolutions-IAM5",
    reason:
      "S3 grants are limited to the step's own key patterns under runs/<run-id>/ (the run id is known only at run time); kms:*Encrypt*/GenerateDataKey* come from CDK's grantEncryptDecrypt on the pipeline key; X-Ray requires Resource *; lambda:GetAccountSettings (validate-config) has no resource scope; start-run may only start/describe recipe-run executions.",
  },
  {
    where:
      /\/Pipeline\/(StateMachine\/Role\/DefaultPolicy|StateMachine\/DistributedMapPolicy|BatchJobsPolicy)\/Resource$/,
    rule: "AwsSolutions-IAM5",
    reason:
      "Lambda invoke grants include version qualifiers (:*); Distributed Maps start and stop child executions of this state machine; submitJob.sync submits, tags and terminates jobs whose ids exist only at run time (job/*) and batch:DescribeJobs has no resource scope; the item readers read manifests under runs/* and the result writers write tmp/map-results/* (CDK's reader and writer also grant bucket/*, which the MapS3Bounds deny takes back); the kms wildcards come from CDK's reader and writer grants on the pipeline key; X-Ray and log delivery need *.",
  },
  {
    where: /\/Gpu\/.*(Role|InstanceProfile).*\/Resource$/,
    rule: "AwsSolutions-IAM4",
    reason: "AmazonEC2ContainerServiceforEC2Role is the ECS container-instance role AWS Batch requires.",
  },
  {
    where: /\/Gpu\/JobRole\/DefaultPolicy\/Resource$/,
    rule: "AwsSolutions-IAM5",
    reason:
      "The GPU job role reads and writes objects under runs/* and cache/generate/* and reads images/* of the pipeline bucket (run ids are known only at run time); it may not delete or touch object versions.",
  },
  {
    where: /\/Gpu\/(TrainSftRole|EvaluateRole)\/DefaultPolicy\/Resource$/,
    rule: "AwsSolutions-IAM5",
    reason:
      "train-sft reads its run's SFT set, images and models and writes only runs/*/train-sft/* and runs/*/models/sft/*; evaluate reads the run's models and writes only runs/*/eval/* and runs/*/evaluate/* (run ids are known only at run time); neither may delete or touch object versions.",
  },
  {
    where:
      /\/Gpu\/(GenerateContainer|TrainRlContainer|TrainRlNodeContainer|TrainSftContainer|TrainSftNodeContainer|EvaluateContainer)\/ExecutionRole\/DefaultPolicy\/Resource$/,
    rule: "AwsSolutions-IAM5",
    reason:
      "The container execution roles pull the job image (ecr:GetAuthorizationToken has no resource scope) and write the job's own log group.",
  },
  {
    where: /\/Operations\/(BatchFailedNotify|GpuQueueBlockedNotify)\/EventsRole\/DefaultPolicy\/Resource$/,
    rule: "AwsSolutions-IAM5",
    reason:
      "EventBridge publishes failed-job events to the alarm topic through this role; publishing to a KMS-encrypted topic needs kms:GenerateDataKey* on the topic's own key (CDK's grantPublish), which is the only key named.",
  },
  {
    where: /\/LostRunStarts\/Resource$/,
    rule: "AwsSolutions-SQS3",
    reason:
      "LostRunStarts is itself the dead-letter queue of the run-start trigger (alarmed on); it needs none of its own.",
  },
  {
    where: /BucketNotificationsHandler/,
    rule: "AwsSolutions-IAM4",
    reason:
      "CDK's own handler that turns on the bucket's EventBridge notifications; it writes only its logs.",
  },
  {
    where: /BucketNotificationsHandler/,
    rule: "AwsSolutions-IAM5",
    reason:
      "CDK's own handler that turns on the bucket's EventBridge notifications (s3:PutBucketNotification).",
  },
  {
    where: /\/AWS679f53fac002430cb0da5b7982bd2287\//,
    rule: "AwsSolutions-IAM4",
    reason:
      "CDK's own custom-resource function that sets the CloudWatch Logs resource policy for the Batch events rule; it writes only its logs.",
  },
  {
    where: /\/EventsLogGroupPolicy/,
    rule: "AwsSolutions-IAM5",
    reason:
      "CDK's custom resource that lets EventBridge write Batch job events into their log group (logs:PutResourcePolicy has no resource scope).",
  },
];

/**
 * Runs the pack once, and acknowledges each finding (with its evidence, e.g.
 * `AwsSolutions-IAM5[Resource::<Bucket.Arn>/runs/*\/config.json]`) only where a rule above names its
 * construct path and rule. Findings anywhere else stay errors.
 */
export function acknowledgeNagFindings(stack: Stack, pack: cdkNag.NagPack): string[] {
  const byPath = new Map(stack.node.findAll().map((c) => [c.node.path, c]));
  const acknowledged: string[] = [];
  for (const violation of pack.validateScope(stack).violations) {
    for (const resource of violation.violatingResources) {
      const path = resource.constructPath ?? "";
      const rule = RULES.find((r) => violation.ruleName.startsWith(r.rule) && r.where.test(path));
      const construct = byPath.get(path);
      if (!rule || !construct) continue;
      Validations.of(construct).acknowledge({ id: violation.ruleName, reason: rule.reason });
      acknowledged.push(`${path}: ${violation.ruleName}`);
    }
  }
  return acknowledged;
}
