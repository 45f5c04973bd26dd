/**
 * The S3 emulator's front door: requests signed by a principal's local credentials are checked
 * against that principal's policies (and SSE-KMS key grants) over real HTTP with the real SDK.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createS3Client } from "../../core/shards/s3-store.ts";
import type { TemplateLike } from "../../local/definition.ts";
import { LocalAccount } from "../../local/iam/account.ts";
import { type S3Emulator, startS3Emulator } from "../../local/s3-emulator.ts";

const bucketArn = { "Fn::GetAtt": ["Bucket", "Arn"] };
const objects = (pattern: string) => ({ "Fn::Join": ["", [bucketArn, `/${pattern}`]] });
const role = (id: string, statements: unknown[]) => ({
  [id]: { Type: "AWS::IAM::Role", Properties: {} },
  [`${id}Policy`]: {
    Type: "AWS::IAM::Policy",
    Properties: {
      PolicyName: `${id}Policy`,
      Roles: [{ Ref: id }],
      PolicyDocument: { Statement: statements },
    },
  },
});
const kmsRw = {
  Effect: "Allow",
  Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
  Resource: { "Fn::GetAtt": ["Key", "Arn"] },
};

const template: TemplateLike = {
  Resources: {
    Key: {
      Type: "AWS::KMS::Key",
      Properties: {
        KeyPolicy: {
          Statement: [
            {
              Effect: "Allow",
              Principal: { AWS: "arn:aws:iam::000000000000:root" },
              Action: "kms:*",
              Resource: "*",
            },
          ],
        },
      },
    },
    Bucket: {
      Type: "AWS::S3::Bucket",
      Properties: {
        VersioningConfiguration: { Status: "Enabled" },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            {
              ServerSideEncryptionByDefault: {
                SSEAlgorithm: "aws:kms",
                KMSMasterKeyID: { "Fn::GetAtt": ["Key", "Arn"] },
              },
            },
          ],
        },
      },
    },
    // Writes one stage's shards and reads them back; may list the bucket.
    ...role("Writer", [
      { Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject"], Resource: objects("runs/*/ingest-sft/*") },
      { Effect: "Allow", Action: "s3:ListBucket", Resource: bucketArn },
      kmsRw,
    ]),
    // May read one stage's shards, without listing and without the key.
    ...role("NoKey", [{ Effect: "Allow", Action: "s3:GetObject", Resource: objects("runs/*") }]),
    // May read everything with the key, but not list.
    ...role("Reader", [{ Effect: "Allow", Action: "s3:GetObject", Resource: objects("*") }, kmsRw]),
  },
};

let s3: S3Emulator;
let account: LocalAccount;
const as = (roleId: string) => {
  const p = account.roles.get(roleId)!;
  return createS3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey },
  });
};
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => ({ name: "none", message: "", status: 200 }),
    (e: Error & { $metadata?: { httpStatusCode?: number } }) => ({
      name: e.name,
      message: e.message,
      status: e.$metadata?.httpStatusCode,
    }),
  );

beforeAll(async () => {
  account = new LocalAccount(template, "recipe-iam");
  s3 = await startS3Emulator("recipe-iam", undefined, { account });
  await s3.store.write("runs/r1/ingest-sft/shards/0.jsonl", "{}\n");
});
afterAll(async () => {
  await s3.stop();
});

describe("S3 emulator with IAM", () => {
  const Bucket = "recipe-iam";

  it("lets a principal do what its policies allow", async () => {
    const writer = as("Writer");
    await writer.send(new PutObjectCommand({ Bucket, Key: "runs/r1/ingest-sft/shards/1.jsonl", Body: "x" }));
    const got = await writer.send(new GetObjectCommand({ Bucket, Key: "runs/r1/ingest-sft/shards/1.jsonl" }));
    expect(await got.Body!.transformToString()).toBe("x");
    const listed = await writer.send(new ListObjectsV2Command({ Bucket, Prefix: "runs/r1/" }));
    expect(listed.KeyCount).toBe(2);
  });

  it("refuses a write outside the granted keys with AWS's message, and writes nothing", async () => {
    const e = await errorOf(
      as("Writer").send(
        new PutObjectCommand({ Bucket, Key: "runs/r1/datasets/sft/train.parquet", Body: "x" }),
      ),
    );
    expect(e).toMatchObject({ name: "AccessDenied", status: 403 });
    expect(e.message).toBe(
      'User: arn:aws:sts::000000000000:assumed-role/RecipePipeline-Writer/local is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::recipe-iam/runs/r1/datasets/sft/train.parquet" because no identity-based policy allows the s3:PutObject action',
    );
    expect(await s3.store.exists("runs/r1/datasets/sft/train.parquet")).toBe(false);
  });

  it("an SSE-KMS object needs kms:Decrypt to read (a HEAD does not)", async () => {
    const noKey = as("NoKey");
    await noKey.send(new HeadObjectCommand({ Bucket, Key: "runs/r1/ingest-sft/shards/0.jsonl" }));
    const e = await errorOf(
      noKey.send(new GetObjectCommand({ Bucket, Key: "runs/r1/ingest-sft/shards/0.jsonl" })),
    );
    expect(e.name).toBe("AccessDenied");
    expect(e.message).toContain("kms:Decrypt");
  });

  it("a missing key reads as 403 without s3:ListBucket and as 404 with it", async () => {
    const missing = "runs/r1/ingest-sft/shards/9.jsonl";
    expect((await errorOf(as("Reader").send(new GetObjectCommand({ Bucket, Key: missing })))).status).toBe(
      403,
    );
    expect(await errorOf(as("Writer").send(new GetObjectCommand({ Bucket, Key: missing })))).toMatchObject({
      name: "NoSuchKey",
      status: 404,
    });
  });

  it("refuses an unknown access key, and lets the emulator's own (the user's) credentials do anything", async () => {
    const stranger = createS3Client({
      endpoint: s3.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "AKIASTRANGER", secretAccessKey: "x" },
    });
    expect(
      (
        await errorOf(
          stranger.send(new GetObjectCommand({ Bucket, Key: "runs/r1/ingest-sft/shards/0.jsonl" })),
        )
      ).name,
    ).toBe("InvalidAccessKeyId");
    await s3.client.send(new PutObjectCommand({ Bucket, Key: "anything/at/all", Body: "ok" }));
  });

  it("records each denial with its principal, action and resource", () => {
    expect(account.denials.map((d) => [d.principal.split("/").pop(), d.action])).toContainEqual([
      "RecipePipeline-Writer",
      "s3:PutObject",
    ]);
  });
});
