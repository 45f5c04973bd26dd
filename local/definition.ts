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
  if ("Fn::Split" in o) {
    const [sep, str] = o["Fn::Split"] as [string, unknown];
    return String(resolveTokens(str, resolveRef)).split(sep);
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolveTokens(v, resolveRef)]));
}

export const LOCAL_ACCOUNT = "000000000000";
export const LOCAL_REGION = "us-east-1";

/** A plausible local ARN or name for a template resource, so the definition reads as it would in AWS. */
export function localRef(template: TemplateLike): (logicalId: string, attribute?: string) => string {
  return (id, attr) => {
    if (id === "AWS::Partition") return "aws";
    if (id === "AWS::Region") return LOCAL_REGION;
    if (id === "AWS::AccountId") return LOCAL_ACCOUNT;
    if (id === "AWS::URLSuffix") return "amazonaws.com";
    const r = template.Resources[id];
    const type = r?.Type ?? "";
    if (type === "AWS::Lambda::Function")
      return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${id}`;
    if (type === "AWS::S3::Bucket")
      return attr === "Arn" ? `arn:aws:s3:::${id.toLowerCase()}` : id.toLowerCase();
    if (type === "AWS::Batch::JobQueue")
      return `arn:aws:batch:${LOCAL_REGION}:${LOCAL_ACCOUNT}:job-queue/${id}`;
    if (type === "AWS::Batch::JobDefinition")
      return `arn:aws:batch:${LOCAL_REGION}:${LOCAL_ACCOUNT}:job-definition/${id}:1`;
    if (type === "AWS::StepFunctions::StateMachine")
      return `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:recipe-run`;
    return `${id}${attr ? `.${attr}` : ""}`;
  };
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
