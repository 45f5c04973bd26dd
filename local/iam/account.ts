/**
 * The local AWS account's IAM, read from the synthesized template: each role with the policies
 * attached to it, which role each Lambda function, job definition and state machine runs as, the
 * pipeline bucket's policy and KMS key. Every principal of the stack gets its own local credentials,
 * so the emulators can tell who is calling and check the call as AWS would.
 *
 * AWS managed policies attached to roles (Lambda's basic execution role, the Batch and ECS service
 * roles) are not modelled: they grant logging, networking and image pulls, none of the calls checked
 * here, so a request they would allow is denied locally only if it is one of those, and none is made.
 */
import { localRef, resolveTokens, type TemplateLike } from "../definition.ts";
import {
  type AuthRequest,
  type Decision,
  denialMessage,
  evaluate,
  type NamedPolicy,
  type PolicyDocument,
} from "./policy.ts";

export interface Principal {
  /** The role's logical id in the template. */
  roleId: string;
  arn: string;
  /** The assumed-role session ARN that AWS names in a denial. */
  session: string;
  accessKeyId: string;
  secretAccessKey: string;
  policies: NamedPolicy[];
}

/** A request IAM denied; `name` is what the SDK and Step Functions see (AccessDenied). */
export class AccessDeniedError extends Error {
  override name = "AccessDenied";
  constructor(
    readonly principal: string,
    readonly action: string,
    readonly resource: string,
    message: string,
  ) {
    super(message);
  }
}

const SECRET = "local-secret";

type Resource = { Type: string; Properties?: Record<string, unknown> };

export class LocalAccount {
  readonly roles = new Map<string, Principal>();
  private readonly byKey = new Map<string, Principal>();
  private readonly functionRoles = new Map<string, string>();
  private readonly jobRoles = new Map<string, string>();
  private stateMachineRoleId: string | undefined;
  private readonly resourcePolicies: { prefix: string; policy: NamedPolicy }[] = [];
  /** KMS key ARN -> its key policy. */
  private readonly keyPolicies = new Map<string, NamedPolicy>();
  /** Bucket name -> the KMS key its default encryption uses. */
  readonly bucketKeys = new Map<string, string>();
  /** Every denial, oldest first. */
  readonly denials: AccessDeniedError[] = [];

  constructor(template: TemplateLike, bucket?: string) {
    const ref = localRef(template, bucket);
    const resolve = <T>(v: unknown): T => resolveTokens(v, ref) as T;
    const roleIdOf = (v: unknown): string | undefined => {
      const o = v as { "Fn::GetAtt"?: [string, string]; Ref?: string } | undefined;
      return o?.["Fn::GetAtt"]?.[0] ?? o?.Ref;
    };
    const entries = Object.entries(template.Resources) as [string, Resource][];
    for (const [id, r] of entries) {
      if (r.Type !== "AWS::IAM::Role") continue;
      const arn = ref(id, "Arn");
      const principal: Principal = {
        roleId: id,
        arn,
        session: `arn:aws:sts::${arn.split(":")[4]}:assumed-role/${ref(id)}/local`,
        accessKeyId: `LOCAL${id}`,
        secretAccessKey: SECRET,
        policies: ((r.Properties?.Policies ?? []) as { PolicyName: string; PolicyDocument: unknown }[]).map(
          (p) => ({ name: p.PolicyName, document: resolve<PolicyDocument>(p.PolicyDocument) }),
        ),
      };
      this.roles.set(id, principal);
      this.byKey.set(principal.accessKeyId, principal);
    }
    for (const [id, r] of entries) {
      const p = r.Properties ?? {};
      if (r.Type === "AWS::IAM::Policy" || r.Type === "AWS::IAM::ManagedPolicy") {
        const doc: NamedPolicy = {
          name: String(p.PolicyName ?? p.ManagedPolicyName ?? id),
          document: resolve<PolicyDocument>(p.PolicyDocument),
        };
        for (const role of (p.Roles ?? []) as unknown[])
          this.roles.get(roleIdOf(role) ?? "")?.policies.push(doc);
      } else if (r.Type === "AWS::Lambda::Function") {
        const role = roleIdOf(p.Role);
        if (role) this.functionRoles.set(ref(id), role);
      } else if (r.Type === "AWS::Batch::JobDefinition") {
        const container = (p.ContainerProperties ??
          (p.NodeProperties as { NodeRangeProperties?: { Container?: unknown }[] } | undefined)
            ?.NodeRangeProperties?.[0]?.Container) as { JobRoleArn?: unknown } | undefined;
        const role = roleIdOf(container?.JobRoleArn);
        if (role) this.jobRoles.set(ref(id), role);
      } else if (r.Type === "AWS::StepFunctions::StateMachine") {
        this.stateMachineRoleId = roleIdOf(p.RoleArn);
      } else if (r.Type === "AWS::S3::BucketPolicy") {
        const name = resolve<string>(p.Bucket);
        this.resourcePolicies.push({
          prefix: `arn:aws:s3:::${name}`,
          policy: { name: `bucket policy of ${name}`, document: resolve<PolicyDocument>(p.PolicyDocument) },
        });
      } else if (r.Type === "AWS::KMS::Key") {
        this.keyPolicies.set(ref(id, "Arn"), {
          name: `key policy of ${id}`,
          document: resolve<PolicyDocument>(p.KeyPolicy),
        });
      } else if (r.Type === "AWS::S3::Bucket") {
        const sse = (
          p.BucketEncryption as
            | {
                ServerSideEncryptionConfiguration?: {
                  ServerSideEncryptionByDefault?: Record<string, unknown>;
                }[];
              }
            | undefined
        )?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault;
        if (sse?.SSEAlgorithm === "aws:kms" && sse.KMSMasterKeyID)
          this.bucketKeys.set(ref(id), resolve<string>(sse.KMSMasterKeyID));
      }
    }
  }

  principalForKey(accessKeyId: string): Principal | undefined {
    return this.byKey.get(accessKeyId);
  }

  private role(id: string | undefined, what: string): Principal {
    const p = id ? this.roles.get(id) : undefined;
    if (!p) throw new Error(`the template gives ${what} no role`);
    return p;
  }

  /** The role a Lambda function runs as (by its ARN). */
  functionPrincipal(functionArn: string): Principal {
    return this.role(this.functionRoles.get(functionArn), `function ${functionArn}`);
  }

  /** The role a job definition's containers run as (by its ARN). */
  jobPrincipal(jobDefinitionArn: string): Principal {
    return this.role(this.jobRoles.get(jobDefinitionArn), `job definition ${jobDefinitionArn}`);
  }

  stateMachinePrincipal(): Principal {
    return this.role(this.stateMachineRoleId, "the state machine");
  }

  /** Whether a request would be allowed (nothing recorded, nothing thrown). */
  allows(
    principal: Principal,
    action: string,
    resource: string,
    context: Record<string, string | string[]> = {},
  ): boolean {
    return this.decide(principal, action, resource, context).decision.allowed;
  }

  /**
   * Checks one request and throws AccessDenied as AWS would. KMS requests follow the key policy: the
   * key policy must allow the caller itself, or delegate to the account's IAM (its root principal),
   * in which case the caller's identity policies decide.
   */
  authorize(
    principal: Principal,
    action: string,
    resource: string,
    context: Record<string, string | string[]> = {},
  ): void {
    const { request, decision } = this.decide(principal, action, resource, context);
    if (decision.allowed) return;
    const err = new AccessDeniedError(
      principal.arn,
      action,
      resource,
      denialMessage(request, decision, principal.session),
    );
    this.denials.push(err);
    throw err;
  }

  private decide(
    principal: Principal,
    action: string,
    resource: string,
    context: Record<string, string | string[]>,
  ): { request: AuthRequest; decision: Decision } {
    const request: AuthRequest = {
      principalArn: principal.arn,
      action,
      resource,
      context: {
        "aws:PrincipalArn": principal.arn,
        "aws:PrincipalAccount": principal.arn.split(":")[4]!,
        "aws:SecureTransport": "true",
        ...context,
      },
    };
    let decision: Decision;
    const keyPolicy = action.toLowerCase().startsWith("kms:") ? this.keyPolicies.get(resource) : undefined;
    if (keyPolicy) {
      const direct = evaluate(request, [], keyPolicy);
      const root = `arn:aws:iam::${principal.arn.split(":")[4]}:root`;
      const delegated = evaluate({ ...request, principalArn: root }, [], keyPolicy).allowed;
      const viaIam = delegated
        ? evaluate(request, principal.policies)
        : ({ allowed: false, reason: "implicit_deny" } as const);
      decision =
        direct.allowed === false && direct.reason === "explicit_deny"
          ? direct
          : viaIam.allowed === false && viaIam.reason === "explicit_deny"
            ? viaIam
            : direct.allowed || viaIam.allowed
              ? { allowed: true }
              : { allowed: false, reason: "implicit_deny" };
    } else {
      const resourcePolicy = this.resourcePolicies.find(
        (r) => resource === r.prefix || resource.startsWith(`${r.prefix}/`),
      )?.policy;
      decision = evaluate(request, principal.policies, resourcePolicy);
    }
    return { request, decision };
  }
}
