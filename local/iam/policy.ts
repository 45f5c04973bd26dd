/**
 * IAM policy evaluation for the embedded runtime, as AWS evaluates a request inside one account:
 * an explicit Deny in any applicable policy wins; otherwise an Allow in an identity-based policy or
 * in the resource's policy (naming the principal) allows; otherwise the request is implicitly denied.
 *
 * It covers the policy grammar a CDK stack emits and the conditions AWS documents for it: Action /
 * NotAction (case-insensitive wildcards), Resource / NotResource (case-sensitive wildcards), Principal
 * in resource policies, and the String, Arn, Bool, Numeric and Null condition operators with
 * `IfExists` and the `ForAnyValue:` / `ForAllValues:` set qualifiers. A condition operator it does not
 * know is an error, never a silent match: the local runtime must not be more forgiving than AWS.
 * Not modelled (the stack uses none of them): permission boundaries, SCPs, session policies, policy
 * variables, cross-account access.
 */

export type Effect = "Allow" | "Deny";
type OneOrMany<T> = T | T[];

export interface Statement {
  Sid?: string;
  Effect: Effect;
  Action?: OneOrMany<string>;
  NotAction?: OneOrMany<string>;
  Resource?: OneOrMany<string>;
  NotResource?: OneOrMany<string>;
  Principal?: "*" | Record<string, OneOrMany<string>>;
  Condition?: Record<string, Record<string, OneOrMany<string | boolean | number>>>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: OneOrMany<Statement>;
}

/** One request as IAM sees it: who, what, on which resource, with which context keys. */
export interface AuthRequest {
  /** The calling principal's ARN (a role's ARN; the assumed-role session is not modelled). */
  principalArn: string;
  action: string;
  resource: string;
  /** Condition keys present in the request (keys are case-insensitive, as in AWS). */
  context?: Record<string, string | string[]>;
}

export type Decision =
  | { allowed: true }
  | { allowed: false; reason: "explicit_deny"; policy: string; sid?: string }
  | { allowed: false; reason: "implicit_deny" };

export interface NamedPolicy {
  name: string;
  document: PolicyDocument;
}

const list = <T>(v: OneOrMany<T> | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** IAM wildcard match: `*` any run of characters, `?` one character. */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`, ignoreCase ? "is" : "s").test(value);
}

function actionMatches(statement: Statement, action: string): boolean {
  if (statement.NotAction !== undefined)
    return !list(statement.NotAction).some((p) => wildcardMatch(p, action, true));
  return list(statement.Action).some((p) => wildcardMatch(p, action, true));
}

function resourceMatches(statement: Statement, resource: string): boolean {
  if (statement.NotResource !== undefined)
    return !list(statement.NotResource).some((p) => wildcardMatch(p, resource));
  // A resource-based policy statement may omit Resource: it then applies to the resource it is on.
  if (statement.Resource === undefined) return true;
  return list(statement.Resource).some((p) => wildcardMatch(p, resource));
}

/** Whether a resource policy statement's Principal names the caller (not by account delegation). */
function principalMatches(statement: Statement, principalArn: string): boolean {
  const p = statement.Principal;
  if (p === undefined) return true; // identity-based statement
  if (p === "*") return true;
  return list(p.AWS).some((a) => a === "*" || a === principalArn);
}

function arnLike(pattern: string, value: string): boolean {
  // ARNs compare segment by segment (the resource part may itself contain colons).
  const ps = pattern.split(":");
  const vs = value.split(":");
  if (ps.length < 6 || vs.length < 6) return wildcardMatch(pattern, value);
  const head = (s: string[]) => [...s.slice(0, 5), s.slice(5).join(":")];
  const [a, b] = [head(ps), head(vs)];
  return a.every((seg, i) => wildcardMatch(seg, b[i]!));
}

type Test = (policyValue: string, requestValue: string) => boolean;

const OPERATORS: Record<string, { test: Test; negated: boolean }> = {
  StringEquals: { test: (p, v) => p === v, negated: false },
  StringNotEquals: { test: (p, v) => p === v, negated: true },
  StringEqualsIgnoreCase: { test: (p, v) => p.toLowerCase() === v.toLowerCase(), negated: false },
  StringNotEqualsIgnoreCase: { test: (p, v) => p.toLowerCase() === v.toLowerCase(), negated: true },
  StringLike: { test: (p, v) => wildcardMatch(p, v), negated: false },
  StringNotLike: { test: (p, v) => wildcardMatch(p, v), negated: true },
  ArnEquals: { test: arnLike, negated: false },
  ArnLike: { test: arnLike, negated: false },
  ArnNotEquals: { test: arnLike, negated: true },
  ArnNotLike: { test: arnLike, negated: true },
  Bool: { test: (p, v) => p.toLowerCase() === v.toLowerCase(), negated: false },
  NumericEquals: { test: (p, v) => Number(v) === Number(p), negated: false },
  NumericNotEquals: { test: (p, v) => Number(v) === Number(p), negated: true },
  NumericLessThan: { test: (p, v) => Number(v) < Number(p), negated: false },
  NumericLessThanEquals: { test: (p, v) => Number(v) <= Number(p), negated: false },
  NumericGreaterThan: { test: (p, v) => Number(v) > Number(p), negated: false },
  NumericGreaterThanEquals: { test: (p, v) => Number(v) >= Number(p), negated: false },
};

export class UnsupportedConditionError extends Error {
  override name = "UnsupportedConditionError";
}

function contextValue(context: Record<string, string | string[]>, key: string): string[] | undefined {
  const lower = key.toLowerCase();
  for (const [k, v] of Object.entries(context)) if (k.toLowerCase() === lower) return list(v);
  return undefined;
}

function conditionHolds(
  operatorName: string,
  key: string,
  policyValues: string[],
  context: Record<string, string | string[]>,
): boolean {
  let op = operatorName;
  let qualifier: "ForAnyValue" | "ForAllValues" | undefined;
  const q = /^(ForAnyValue|ForAllValues):(.+)$/.exec(op);
  if (q) {
    qualifier = q[1] as "ForAnyValue" | "ForAllValues";
    op = q[2]!;
  }
  const ifExists = op.endsWith("IfExists");
  if (ifExists) op = op.slice(0, -"IfExists".length);
  const values = contextValue(context, key);
  if (op === "Null") {
    const wantsAbsent = policyValues.some((v) => v.toLowerCase() === "true");
    return wantsAbsent ? values === undefined : values !== undefined;
  }
  const spec = OPERATORS[op];
  if (!spec)
    throw new UnsupportedConditionError(`condition operator ${operatorName} is not modelled locally`);
  if (values === undefined) {
    if (ifExists) return true;
    if (qualifier === "ForAllValues") return true; // vacuously true over an empty set (AWS's rule)
    return spec.negated; // a missing key matches no value: negated operators hold
  }
  const matchesOne = (v: string) => policyValues.some((p) => spec.test(p, v));
  if (qualifier === "ForAllValues")
    return values.every((v) => (spec.negated ? !matchesOne(v) : matchesOne(v)));
  // Single-valued keys and ForAnyValue: some request value (dis)matches.
  return spec.negated ? !values.some(matchesOne) : values.some(matchesOne);
}

function conditionsHold(statement: Statement, context: Record<string, string | string[]>): boolean {
  for (const [operator, block] of Object.entries(statement.Condition ?? {})) {
    for (const [key, raw] of Object.entries(block)) {
      if (!conditionHolds(operator, key, list(raw).map(String), context)) return false;
    }
  }
  return true;
}

function applies(statement: Statement, request: AuthRequest): boolean {
  return (
    actionMatches(statement, request.action) &&
    resourceMatches(statement, request.resource) &&
    principalMatches(statement, request.principalArn) &&
    conditionsHold(statement, request.context ?? {})
  );
}

/**
 * Evaluates a request against the caller's identity-based policies and the resource's policy (if
 * any). Same-account rule: either an identity Allow or a resource-policy Allow naming the caller
 * suffices; an explicit Deny in either wins.
 */
export function evaluate(
  request: AuthRequest,
  identityPolicies: readonly NamedPolicy[],
  resourcePolicy?: NamedPolicy,
): Decision {
  const all = resourcePolicy ? [...identityPolicies, resourcePolicy] : identityPolicies;
  let allowed = false;
  for (const policy of all) {
    for (const statement of list(policy.document.Statement)) {
      if (!applies(statement, request)) continue;
      if (statement.Effect === "Deny")
        return { allowed: false, reason: "explicit_deny", policy: policy.name, sid: statement.Sid };
      allowed = true;
    }
  }
  return allowed ? { allowed: true } : { allowed: false, reason: "implicit_deny" };
}

/** The message AWS gives for a denied request, naming the principal, the action and the resource. */
export function denialMessage(request: AuthRequest, decision: Decision, principalSession: string): string {
  const why =
    decision.allowed === false && decision.reason === "explicit_deny"
      ? `with an explicit deny in ${decision.policy}${decision.sid ? ` (statement ${decision.sid})` : ""}`
      : `because no identity-based policy allows the ${request.action} action`;
  return `User: ${principalSession} is not authorized to perform: ${request.action} on resource: "${request.resource}" ${why}`;
}
