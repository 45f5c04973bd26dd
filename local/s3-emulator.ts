/**
 * An S3-compatible server (s3rver) on a free loopback port, reached through the real AWS SDK client:
 * the local runtime's S3, and the tests'. Object-created events are reported like EventBridge would.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { createS3Client, S3Store } from "../core/shards/s3-store.ts";

export interface S3Emulator {
  endpoint: string;
  bucket: string;
  client: S3Client;
  store: S3Store;
  directory: string;
  /** Called for each object put (key, etag), as the S3 -> EventBridge rule would be. */
  onObjectCreated(listener: (key: string, etag: string | undefined) => void): void;
  stop(): Promise<void>;
}

export const EMULATOR_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export async function startS3Emulator(bucket = "recipe-test", directory?: string): Promise<S3Emulator> {
  const dir = directory ?? (await mkdtemp(join(tmpdir(), "recipe-s3-")));
  await mkdir(dir, { recursive: true });
  const server = new S3rver({
    port: 0,
    address: "127.0.0.1",
    silent: true,
    directory: dir,
    allowMismatchedSignatures: true,
  });
  const address = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = createS3Client({ endpoint, region: "us-east-1", credentials: EMULATOR_CREDENTIALS });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (
      (err as { name?: string }).name !== "BucketAlreadyOwnedByYou" &&
      (err as { name?: string }).name !== "BucketAlreadyExists"
    )
      throw err;
  }
  const listeners: ((key: string, etag: string | undefined) => void)[] = [];
  (server as unknown as NodeJS.EventEmitter).on(
    "event",
    (e: {
      Records?: {
        eventName: string;
        s3: { bucket: { name: string }; object: { key: string; eTag?: string } };
      }[];
    }) => {
      for (const r of e.Records ?? []) {
        if (r.eventName.startsWith("ObjectCreated") && r.s3.bucket.name === bucket) {
          for (const l of listeners) l(decodeURIComponent(r.s3.object.key), r.s3.object.eTag);
        }
      }
    },
  );
  return {
    endpoint,
    bucket,
    client,
    store: new S3Store(client, bucket),
    directory: dir,
    onObjectCreated: (l) => listeners.push(l),
    async stop() {
      client.destroy();
      await server.close();
      if (!directory) await rm(dir, { recursive: true, force: true });
    },
  };
}
