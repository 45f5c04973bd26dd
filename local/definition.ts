/**
 * The state-machine definition as `cdk synth` emits it, with CloudFormation tokens resolved to
 * concrete (local) values: the same definition the deployed state machine runs.
 */
export type Token =
  | { Ref: string }
  | { "Fn::GetAtt": [string, string] }
  | { "Fn::Join": [string, unknown[]] }
  | Record<string, unknown>;

export interface TemplateLike {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/** Resolves Ref / Fn::GetAtt / Fn::Join / Fn::Select / Fn::Split with `resolveRef` naming each logical id. */
export function resolveTokens(
  value: unknown,
  resolveRef: (logicalId: string, attribute?: string) => string,
): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveTokens(v, resolveRef));
  if (!value || typeof value !== "object") return value;
  const o = value as Record<string, unknown>;
  if ("Ref" in o) return resolveRef(String(o.Ref));
  if ("Fn::GetAtt" in o) {
    const [id, attr] = o["Fn::GetAtt"] as [string, string];
    return resolveRef(id, attr);
  }
  if ("Fn::Join" in o) {
    const [sep, parts] = o["Fn::Join"] as [string, unknown[]];
    return (resolveTokens(parts, resolveRef) as unknown[]).map(String).join(sep);
  }
  if ("Fn::Select" in o) {
    const [i, list] = o["Fn::Select"] as [number, unknown];
    return (resolveTokens(list, resolveRef) as unknown[])[Number(i)];
  }
  if ("Fn::Sub" in o) {
    const raw = o["Fn::Sub"];
    const [text, vars] = Array.isArray(raw) ? (raw as [string, Record<string, unknown>]) : [String(raw), {}];
    return text.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
      if (name in vars) return String(resolveTokens(vars[name], resolveRef));
      const dot = name.indexOf(".");
      return dot < 0 || name.startsWith("AWS::")
        ? resolveRef(name)
        : resolveRef(name.slice(0, dot), name.slice(dot + 1));
    });
  }
  if ("Fn::Split" in o) {
    const [sep, str] = o["Fn::Split"] as [string, unknown];
    return String(resolveTokens(str, resolveRef)).split(sep);
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolveTokens(v, resolveRef)]));
}

export const LOCAL_ACCOUNT = "000000000000";
export const LOCAL_REGION = "us-east-1";

/** The pipeline bucket's name in the embedded runtime. */
export const LOCAL_BUCKET = "recipe-local";

/**
 * The ARN or name AWS would give a template resource, locally: the name the template sets
 * (FunctionName, JobQueueName, ...) or the logical id, in the local account and region. The stack's
 * pipeline bucket (the one with versioning) is `bucket`; other buckets keep their logical id.
 */
export function localRef(
  template: TemplateLike,
  bucket = LOCAL_BUCKET,
): (logicalId: string, attribute?: string) => string {
  const where = `${LOCAL_REGION}:${LOCAL_ACCOUNT}`;
  return (id, attr) => {
    if (id === "AWS::Partition") return "aws";
    if (id === "AWS::Region") return LOCAL_REGION;
    if (id === "AWS::AccountId") return LOCAL_ACCOUNT;
    if (id === "AWS::URLSuffix") return "amazonaws.com";
    if (id === "AWS::StackName") return "RecipePipeline";
    const r = template.Resources[id];
    const p = r?.Properties ?? {};
    const named = (key: string) => (typeof p[key] === "string" ? (p[key] as string) : id);
    switch (r?.Type ?? "") {
      case "AWS::Lambda::Function":
        return attr === "Arn" || attr === undefined
          ? `arn:aws:lambda:${where}:function:${named("FunctionName")}`
          : `${id}.${attr}`;
      case "AWS::S3::Bucket": {
        const name = p.VersioningConfiguration ? bucket : named("BucketName").toLowerCase();
        return attr === "Arn" ? `arn:aws:s3:::${name}` : name;
      }
      case "AWS::Batch::JobQueue":
        return `arn:aws:batch:${where}:job-queue/${named("JobQueueName")}`;
      case "AWS::Batch::JobDefinition":
        return `arn:aws:batch:${where}:job-definition/${named("JobDefinitionName")}:1`;
      case "AWS::StepFunctions::StateMachine":
        return `arn:aws:states:${where}:stateMachine:${named("StateMachineName")}`;
      case "AWS::IAM::Role":
        return attr === "Arn" ? `arn:aws:iam::${LOCAL_ACCOUNT}:role/${roleName(id, p)}` : roleName(id, p);
      case "AWS::KMS::Key":
        return attr === "Arn" ? `arn:aws:kms:${where}:key/${id}` : id;
      case "AWS::SQS::Queue":
        return attr === "Arn"
          ? `arn:aws:sqs:${where}:${named("QueueName")}`
          : `https://sqs.${LOCAL_REGION}.amazonaws.com/${LOCAL_ACCOUNT}/${named("QueueName")}`;
      case "AWS::SNS::Topic":
        return `arn:aws:sns:${where}:${named("TopicName")}`;
      case "AWS::Logs::LogGroup":
        return attr === "Arn"
          ? `arn:aws:logs:${where}:log-group:${named("LogGroupName")}:*`
          : named("LogGroupName");
      default:
        return `${id}${attr ? `.${attr}` : ""}`;
    }
  };
}

/** A role's name as CloudFormation would give it (stack name, logical id), unless the template names it. */
function roleName(id: string, p: Record<string, unknown>): string {
  return typeof p.RoleName === "string" ? p.RoleName : `RecipePipeline-${id}`.slice(0, 64);
}

/** The definition of the (only) state machine in a synthesized template, tokens resolved. */
export function stateMachineDefinition(
  template: TemplateLike,
  resolveRef = localRef(template),
): Record<string, unknown> {
  const sm = Object.entries(template.Resources).find(
    ([, r]) => r.Type === "AWS::StepFunctions::StateMachine",
  );
  if (!sm) throw new Error("no state machine in the template");
  const raw = sm[1].Properties?.DefinitionString;
  return JSON.parse(String(resolveTokens(raw, resolveRef)));
}
