/**
 * Starts s3rver (an S3-compatible server over HTTP) on a free loopback port, so tests exercise the
 * real AWS SDK client and S3Store against the S3 wire protocol.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { createS3Client, S3Store } from "../../core/shards/s3-store.ts";

export interface S3Emulator {
  endpoint: string;
  client: S3Client;
  store: S3Store;
  stop(): Promise<void>;
}

export async function startS3Emulator(bucket = "recipe-test"): Promise<S3Emulator> {
  const directory = await mkdtemp(join(tmpdir(), "recipe-s3-"));
  const server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory });
  const address = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = createS3Client({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    endpoint,
    client,
    store: new S3Store(client, bucket),
    async stop() {
      client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
