/**
 * What the stack's roles may do, evaluated on the synthesized template with the embedded runtime's
 * IAM evaluator: each role can do its work and nothing on data it does not need.
 */
import { describe, expect, it } from "vitest";
import { LocalAccount } from "../../local/iam/account.ts";
import { jobDefinitions, synthesizeTemplate } from "../../local/runner.ts";

const template = synthesizeTemplate();
const account = new LocalAccount(template);
const obj = (key: string) => `arn:aws:s3:::recipe-local/${key}`;

describe("IAM scope of the deployed roles", () => {
  it("the GPU jobs read and write runs and the generation cache, and can delete or rewrite nothing", () => {
    const job = account.jobPrincipal([...jobDefinitions(template).keys()][0]!);
    const may = (action: string, key: string) => account.allows(job, action, obj(key));
    expect(may("s3:PutObject", "runs/r1/distill/shards/00000.jsonl.gz")).toBe(true);
    expect(may("s3:GetObject", "cache/generate/ab/cd.json")).toBe(true);
    expect(may("s3:GetObject", "images/ab.png")).toBe(true);
    expect(may("s3:DeleteObject", "runs/r1/distill/shards/00000.jsonl.gz")).toBe(false);
    expect(may("s3:DeleteObjectVersion", "runs/r1/datasets/sft/train.parquet")).toBe(false);
    expect(may("s3:PutObject", "images/ab.png")).toBe(false);
    expect(may("s3:PutObject", "sources/user.jsonl")).toBe(false);
    expect(may("s3:PutBucketPolicy", "")).toBe(false);
  });

  it("the state machine reads manifests under runs/ and writes Map results under tmp/map-results/ only", () => {
    const sm = account.stateMachinePrincipal();
    const may = (action: string, key: string) => account.allows(sm, action, obj(key));
    expect(may("s3:GetObject", "runs/r1/ingest-sft/manifest.json")).toBe(true);
    expect(may("s3:PutObject", "tmp/map-results/r1/manifest.json")).toBe(true);
    // CDK's Distributed Map grants cover the whole bucket; the explicit bounds take that back.
    expect(may("s3:PutObject", "runs/r1/datasets/sft/train.parquet")).toBe(false);
    expect(may("s3:GetObject", "sources/user.jsonl")).toBe(false);
    expect(may("s3:GetObject", "cache/generate/ab/cd.json")).toBe(false);
    expect(may("s3:DeleteObject", "tmp/map-results/r1/manifest.json")).toBe(false);
  });
});
