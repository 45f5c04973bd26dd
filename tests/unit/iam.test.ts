/**
 * The embedded runtime's IAM: policy evaluation as AWS documents it, the S3 request -> action
 * mapping, and the account read from the synthesized template (who each principal is, KMS key
 * policy delegation, the bucket policy).
 */
import { describe, expect, it } from "vitest";
import { AccessDeniedError, LocalAccount } from "../../local/iam/account.ts";
import {
  type AuthRequest,
  evaluate,
  type NamedPolicy,
  type Statement,
  UnsupportedConditionError,
  wildcardMatch,
} from "../../local/iam/policy.ts";
import { accessKeyOf, s3Permissions, UnmappedRequestError } from "../../local/iam/s3-requests.ts";
import { synthesizeTemplate } from "../../local/runner.ts";

const ROLE = "arn:aws:iam::000000000000:role/fn";
const policy = (...Statement: Statement[]): NamedPolicy => ({ name: "p", document: { Statement } });
const req = (action: string, resource: string, context?: AuthRequest["context"]): AuthRequest => ({
  principalArn: ROLE,
  action,
  resource,
  context,
});
const allowed = (r: AuthRequest, ...policies: NamedPolicy[]) => evaluate(r, policies).allowed;

describe("IAM policy evaluation", () => {
  const objects = "arn:aws:s3:::b/runs/*/ingest-*/shards/*";
  it.each([
    // [what, statement, request, allowed]
    [
      "exact action and resource",
      { Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k" },
      req("s3:GetObject", "arn:aws:s3:::b/k"),
      true,
    ],
    [
      "actions are case-insensitive",
      { Action: "S3:getobject", Resource: "*" },
      req("s3:GetObject", "arn:aws:s3:::b/k"),
      true,
    ],
    ["action wildcard", { Action: "s3:Get*", Resource: "*" }, req("s3:GetObjectVersion", "x"), true],
    [
      "action wildcard does not cross services",
      { Action: "s3:*", Resource: "*" },
      req("kms:Decrypt", "x"),
      false,
    ],
    [
      "resources are case-sensitive",
      { Action: "s3:GetObject", Resource: "arn:aws:s3:::b/Runs/*" },
      req("s3:GetObject", "arn:aws:s3:::b/runs/x"),
      false,
    ],
    [
      "* in a resource spans slashes",
      { Action: "s3:GetObject", Resource: objects },
      req("s3:GetObject", "arn:aws:s3:::b/runs/r1/ingest-sft/shards/00001.jsonl.gz"),
      true,
    ],
    [
      "a stage pattern does not cover another stage",
      { Action: "s3:PutObject", Resource: objects },
      req("s3:PutObject", "arn:aws:s3:::b/runs/r1/dedup-sft/shards/00001.jsonl.gz"),
      false,
    ],
    [
      "? is one character",
      { Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k?" },
      req("s3:GetObject", "arn:aws:s3:::b/k12"),
      false,
    ],
    [
      "bucket ARN is not its objects",
      { Action: "s3:GetObject", Resource: "arn:aws:s3:::b" },
      req("s3:GetObject", "arn:aws:s3:::b/k"),
      false,
    ],
    [
      "NotAction allows everything else",
      { NotAction: "s3:DeleteObject", Resource: "*" },
      req("s3:PutObject", "x"),
      true,
    ],
    [
      "NotAction excludes its action",
      { NotAction: "s3:DeleteObject", Resource: "*" },
      req("s3:DeleteObject", "x"),
      false,
    ],
    [
      "NotResource",
      { Action: "s3:*", NotResource: "arn:aws:s3:::b/secret/*" },
      req("s3:GetObject", "arn:aws:s3:::b/secret/x"),
      false,
    ],
  ] as [string, Omit<Statement, "Effect">, AuthRequest, boolean][])(
    "%s",
    (_, statement, request, expected) => {
      expect(allowed(request, policy({ Effect: "Allow", ...statement }))).toBe(expected);
    },
  );

  it("an explicit Deny wins over any Allow and names its policy", () => {
    const d = evaluate(req("s3:PutObject", "arn:aws:s3:::b/k"), [
      policy({ Effect: "Allow", Action: "s3:*", Resource: "*" }),
      {
        name: "guard",
        document: { Statement: { Sid: "NoPut", Effect: "Deny", Action: "s3:PutObject", Resource: "*" } },
      },
    ]);
    expect(d).toEqual({ allowed: false, reason: "explicit_deny", policy: "guard", sid: "NoPut" });
  });

  it("no statement: implicit deny", () => {
    expect(evaluate(req("s3:GetObject", "x"), [])).toEqual({ allowed: false, reason: "implicit_deny" });
  });

  it.each([
    // [operator block, context, holds]
    [
      { StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } },
      { "kms:ViaService": "s3.us-east-1.amazonaws.com" },
      true,
    ],
    [{ StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } }, {}, false],
    [
      { StringEquals: { "kms:viaservice": ["sqs.x", "s3.us-east-1.amazonaws.com"] } },
      { "kms:ViaService": "s3.us-east-1.amazonaws.com" },
      true,
    ],
    [
      { StringNotEquals: { "aws:SourceAccount": "000000000000" } },
      { "aws:SourceAccount": "111111111111" },
      true,
    ],
    [{ StringNotEquals: { "aws:SourceAccount": "000000000000" } }, {}, true],
    [{ StringLike: { "s3:prefix": "runs/*" } }, { "s3:prefix": "runs/r1/" }, true],
    [{ StringLike: { "s3:prefix": "runs/*" } }, { "s3:prefix": "" }, false],
    [{ StringEqualsIfExists: { "s3:prefix": "a" } }, {}, true],
    [{ Bool: { "aws:SecureTransport": "false" } }, { "aws:SecureTransport": "true" }, false],
    [{ Bool: { "aws:SecureTransport": "false" } }, { "aws:SecureTransport": "false" }, true],
    [
      { ArnLike: { "aws:SourceArn": "arn:aws:events:us-east-1:000000000000:rule/*" } },
      { "aws:SourceArn": "arn:aws:events:us-east-1:000000000000:rule/r" },
      true,
    ],
    [
      { ArnEquals: { "aws:SourceArn": "arn:aws:sns:us-east-1:000000000000:t" } },
      { "aws:SourceArn": "arn:aws:sns:us-east-1:000000000000:u" },
      false,
    ],
    [{ NumericLessThanEquals: { "s3:max-keys": "10" } }, { "s3:max-keys": "10" }, true],
    [{ Null: { "aws:SourceVpc": "true" } }, {}, true],
    [{ Null: { "aws:SourceVpc": "true" } }, { "aws:SourceVpc": "vpc-1" }, false],
    [{ "ForAllValues:StringEquals": { "aws:TagKeys": ["a", "b"] } }, { "aws:TagKeys": ["a"] }, true],
    [{ "ForAllValues:StringEquals": { "aws:TagKeys": ["a", "b"] } }, { "aws:TagKeys": ["a", "c"] }, false],
    [{ "ForAnyValue:StringEquals": { "aws:TagKeys": ["c"] } }, { "aws:TagKeys": ["a", "c"] }, true],
    // Two keys in one block, two blocks: all must hold.
    [{ StringEquals: { a: "1", b: "2" } }, { a: "1", b: "3" }, false],
  ] as [Statement["Condition"], Record<string, string | string[]>, boolean][])(
    "condition %j with %j: %s",
    (Condition, context, holds) => {
      expect(
        allowed(
          req("kms:Decrypt", "k", context),
          policy({ Effect: "Allow", Action: "*", Resource: "*", Condition }),
        ),
      ).toBe(holds);
    },
  );

  it("an operator it does not model is an error, never a match", () => {
    const p = policy({
      Effect: "Allow",
      Action: "*",
      Resource: "*",
      Condition: { IpAddress: { "aws:SourceIp": "10.0.0.0/8" } },
    });
    expect(() => evaluate(req("s3:GetObject", "x", { "aws:SourceIp": "10.0.0.1" }), [p])).toThrow(
      UnsupportedConditionError,
    );
  });

  it("a resource policy allows only the principal it names; the account root is delegation, not a grant", () => {
    const bucket = (aws: string): NamedPolicy => ({
      name: "bucket",
      document: {
        Statement: {
          Effect: "Allow",
          Principal: { AWS: aws },
          Action: "s3:GetObject",
          Resource: "arn:aws:s3:::b/*",
        },
      },
    });
    expect(evaluate(req("s3:GetObject", "arn:aws:s3:::b/k"), [], bucket(ROLE)).allowed).toBe(true);
    expect(
      evaluate(req("s3:GetObject", "arn:aws:s3:::b/k"), [], bucket("arn:aws:iam::000000000000:root")).allowed,
    ).toBe(false);
  });

  it("wildcards quote regular-expression characters", () => {
    expect(wildcardMatch("arn:aws:s3:::b/a+b(1).json", "arn:aws:s3:::b/a+b(1).json")).toBe(true);
    expect(wildcardMatch("arn:aws:s3:::b/a.json", "arn:aws:s3:::b/aXjson")).toBe(false);
  });
});

describe("S3 request -> IAM actions", () => {
  const KEY = "arn:aws:kms:us-east-1:000000000000:key/k";
  const call = (
    method: string,
    key: string | undefined,
    query: Record<string, string> = {},
    headers: Record<string, string> = {},
  ) =>
    s3Permissions({ method, bucket: "b", key, query, headers }, KEY).map((p) => `${p.action} ${p.resource}`);

  it.each([
    ["GET", "k", {}, {}, ["s3:GetObject arn:aws:s3:::b/k", `kms:Decrypt ${KEY}`]],
    ["HEAD", "k", {}, {}, ["s3:GetObject arn:aws:s3:::b/k"]],
    ["GET", "k", { versionId: "v1" }, {}, ["s3:GetObjectVersion arn:aws:s3:::b/k", `kms:Decrypt ${KEY}`]],
    ["PUT", "k", {}, {}, ["s3:PutObject arn:aws:s3:::b/k", `kms:GenerateDataKey ${KEY}`]],
    [
      "POST",
      "k",
      { uploads: "" },
      {},
      ["s3:PutObject arn:aws:s3:::b/k", `kms:GenerateDataKey ${KEY}`, `kms:Decrypt ${KEY}`],
    ],
    ["PUT", "k", { partNumber: "1", uploadId: "u" }, {}, ["s3:PutObject arn:aws:s3:::b/k"]],
    ["POST", "k", { uploadId: "u" }, {}, ["s3:PutObject arn:aws:s3:::b/k"]],
    ["DELETE", "k", { uploadId: "u" }, {}, ["s3:AbortMultipartUpload arn:aws:s3:::b/k"]],
    ["DELETE", "k", {}, {}, ["s3:DeleteObject arn:aws:s3:::b/k"]],
    ["DELETE", "k", { versionId: "v" }, {}, ["s3:DeleteObjectVersion arn:aws:s3:::b/k"]],
    [
      "PUT",
      "k",
      {},
      { "x-amz-copy-source": "/b/src%20key" },
      [
        "s3:PutObject arn:aws:s3:::b/k",
        "s3:GetObject arn:aws:s3:::b/src key",
        `kms:Decrypt ${KEY}`,
        `kms:GenerateDataKey ${KEY}`,
      ],
    ],
    ["GET", undefined, { "list-type": "2", prefix: "runs/" }, {}, ["s3:ListBucket arn:aws:s3:::b"]],
    ["HEAD", undefined, {}, {}, ["s3:ListBucket arn:aws:s3:::b"]],
    ["GET", undefined, { versions: "" }, {}, ["s3:ListBucketVersions arn:aws:s3:::b"]],
  ] as [string, string | undefined, Record<string, string>, Record<string, string>, string[]][])(
    "%s %s %j %j",
    (method, key, query, headers, expected) => {
      expect(call(method, key, query, headers)).toEqual(expected);
    },
  );

  it("ListBucket carries s3:prefix; a request it cannot map is refused, not allowed", () => {
    expect(
      s3Permissions({ method: "GET", bucket: "b", query: { prefix: "runs/r1/" }, headers: {} })[0]!.context,
    ).toEqual({
      "s3:prefix": "runs/r1/",
    });
    expect(() => call("GET", undefined, { policy: "" })).toThrow(UnmappedRequestError);
    expect(() => call("PATCH", "k")).toThrow(UnmappedRequestError);
  });

  it("reads the access key of a signed or presigned request", () => {
    expect(
      accessKeyOf(
        {
          authorization:
            "AWS4-HMAC-SHA256 Credential=LOCALRole1/20261126/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x",
        },
        {},
      ),
    ).toBe("LOCALRole1");
    expect(accessKeyOf({}, { "X-Amz-Credential": "LOCALRole2/20261126/us-east-1/s3/aws4_request" })).toBe(
      "LOCALRole2",
    );
    expect(accessKeyOf({}, {})).toBeUndefined();
  });
});

describe("the local account from the synthesized template", () => {
  const template = synthesizeTemplate();
  const account = new LocalAccount(template);
  const fnArn = (step: string) => {
    const id = Object.keys(template.Resources).find(
      (k) =>
        template.Resources[k]!.Type === "AWS::Lambda::Function" &&
        k.startsWith(`Step${step.replace(/-/g, "")}Fn`),
    )!;
    return `arn:aws:lambda:us-east-1:000000000000:function:${id}`;
  };
  const key = [...account.bucketKeys.values()][0]!;

  it("gives each function its own role, and each role only its stage's keys", () => {
    const ingest = account.functionPrincipal(fnArn("ingest-source"));
    const writer = account.functionPrincipal(fnArn("write-sft-dataset"));
    expect(ingest.arn).not.toBe(writer.arn);
    expect(
      account.allows(
        ingest,
        "s3:PutObject",
        "arn:aws:s3:::recipe-local/runs/r1/ingest-sft/shards/00000.jsonl.gz",
      ),
    ).toBe(true);
    expect(
      account.allows(ingest, "s3:PutObject", "arn:aws:s3:::recipe-local/runs/r1/datasets/sft/train.parquet"),
    ).toBe(false);
    expect(
      account.allows(
        ingest,
        "s3:DeleteObject",
        "arn:aws:s3:::recipe-local/runs/r1/ingest-sft/shards/00000.jsonl.gz",
      ),
    ).toBe(false);
  });

  it("the bucket encrypts with the stack's key, and the key policy delegates to IAM", () => {
    expect(key).toMatch(/^arn:aws:kms:us-east-1:000000000000:key\//);
    const ingest = account.functionPrincipal(fnArn("ingest-source"));
    expect(account.allows(ingest, "kms:GenerateDataKey", key)).toBe(true);
    // The start-run role may read run.json and so decrypt, but it has no grant on another key.
    const startRun = account.functionPrincipal(fnArn("start-run"));
    expect(account.allows(startRun, "kms:Decrypt", "arn:aws:kms:us-east-1:000000000000:key/other")).toBe(
      false,
    );
  });

  it("a key policy without the account's delegation ignores identity grants", () => {
    const noDelegation = structuredClone(template) as typeof template;
    const keyId = Object.keys(noDelegation.Resources).find(
      (k) => noDelegation.Resources[k]!.Type === "AWS::KMS::Key",
    )!;
    noDelegation.Resources[keyId]!.Properties!.KeyPolicy = { Statement: [] };
    const strict = new LocalAccount(noDelegation);
    const ingest = strict.functionPrincipal(fnArn("ingest-source"));
    expect(strict.allows(ingest, "kms:GenerateDataKey", key)).toBe(false);
  });

  it("the bucket policy's TLS-only deny holds for a request without TLS", () => {
    const ingest = account.functionPrincipal(fnArn("ingest-source"));
    const shard = "arn:aws:s3:::recipe-local/runs/r1/ingest-sft/shards/00000.jsonl.gz";
    expect(account.allows(ingest, "s3:PutObject", shard)).toBe(true);
    expect(account.allows(ingest, "s3:PutObject", shard, { "aws:SecureTransport": "false" })).toBe(false);
  });

  it("the state machine's role may submit the Batch jobs and invoke the step functions", () => {
    const sm = account.stateMachinePrincipal();
    expect(account.allows(sm, "lambda:InvokeFunction", fnArn("verify-shard"))).toBe(true);
    for (const size of ["large", "small"]) {
      const queue = `arn:aws:batch:us-east-1:000000000000:job-queue/RecipePipeline-gpu-${size}`;
      expect(account.allows(sm, "batch:SubmitJob", queue)).toBe(true);
    }
    expect(
      account.allows(sm, "batch:SubmitJob", "arn:aws:batch:us-east-1:000000000000:job-queue/other"),
    ).toBe(false);
    // The training and evaluation jobs (issue 24), every revision of their definitions.
    for (const name of ["train-sft", "train-sft-multinode", "evaluate", "train-rl", "train-rl-multinode"])
      expect(
        account.allows(
          sm,
          "batch:SubmitJob",
          `arn:aws:batch:us-east-1:000000000000:job-definition/RecipePipeline-${name}:3`,
        ),
        name,
      ).toBe(true);
    expect(
      account.allows(
        sm,
        "batch:SubmitJob",
        "arn:aws:batch:us-east-1:000000000000:job-definition/RecipePipeline-other:1",
      ),
    ).toBe(false);
  });

  it("a denial names the principal, the action and the resource", () => {
    const ingest = account.functionPrincipal(fnArn("ingest-source"));
    const resource = "arn:aws:s3:::recipe-local/runs/r1/datasets/sft/train.parquet";
    let error: unknown;
    try {
      account.authorize(ingest, "s3:PutObject", resource);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AccessDeniedError);
    expect((error as Error).message).toBe(
      `User: ${ingest.session} is not authorized to perform: s3:PutObject on resource: "${resource}" because no identity-based policy allows the s3:PutObject action`,
    );
    expect(ingest.session).toContain("assumed-role/RecipePipeline-StepingestsourceFnServiceRole");
  });
});
