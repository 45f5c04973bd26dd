/**
 * What a Lambda handler called in process needs around it, as the stack gives it in AWS: an S3
 * emulator as its bucket, the local Lambda API (validate-config reads the account's concurrency with
 * GetAccountSettings) and the environment variables the stack sets. Registers its own set-up and
 * tear-down; the returned object's `s3` is there once the suite's hooks have run.
 */
import { afterAll, beforeAll } from "vitest";
import { type LambdaApi, startLambdaApi } from "../../local/lambda-api.ts";
import { type S3Emulator, startS3Emulator } from "../../local/s3-emulator.ts";

export function handlerEnvironment(bucket: string): { s3: S3Emulator } {
  const env = {} as { s3: S3Emulator };
  let lambdaApi: LambdaApi;
  const saved = { ...process.env };
  beforeAll(async () => {
    env.s3 = await startS3Emulator(bucket);
    lambdaApi = await startLambdaApi({ concurrency: 1000 });
    process.env.AWS_ENDPOINT_URL_LAMBDA = lambdaApi.endpoint;
    process.env.AWS_ENDPOINT_URL = env.s3.endpoint;
    process.env.RECIPE_BUCKET = bucket;
    process.env.RECIPE_SOURCE_ROOT = `s3://${bucket}/sources/`;
  });
  afterAll(async () => {
    process.env = saved;
    await env.s3.stop();
    await lambdaApi.close();
  });
  return env;
}
