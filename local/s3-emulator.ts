/**
 * An S3-compatible server (s3rver) on a free loopback port, reached through the real AWS SDK client:
 * the local runtime's S3, and the tests'. Object-created events are reported like EventBridge would.
 */
import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
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
  makePutsAtomic((server as unknown as { store: FilesystemStore }).store);
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

/** The part of s3rver's filesystem store that a put touches (s3rver 3.7). */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>;
  putObject(object: {
    bucket: string;
    key: string;
    metadata: unknown;
    content: Buffer | Readable;
  }): Promise<{ size: number; md5: string }>;
}

/**
 * S3 makes a PUT visible all at once: a reader sees the old object or the whole new one, and a PUT
 * that was acknowledged survives. s3rver writes the object file in place (a reader can see it empty or
 * half written, and a Buffer body is acknowledged before it reaches the disk), so a process killed
 * mid-put left torn objects that the real service never shows. Here the body goes to a temporary file
 * beside the object (not listed: it lacks s3rver's object suffix) and is renamed into place only once
 * it is complete, after its metadata.
 */
function makePutsAtomic(store: FilesystemStore): void {
  store.putObject = async (object) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, "object");
    await mkdir(dirname(objectPath), { recursive: true });
    const partial = `${objectPath}.partial-${randomUUID()}`;
    const md5 = createHash("md5");
    let size = 0;
    const body = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    try {
      await pipeline(
        body,
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            md5.update(chunk);
            size += chunk.length;
            done(null, chunk);
          },
        }),
        createWriteStream(partial),
      );
      const digest = md5.digest("hex");
      await store.putMetadata(object.bucket, object.key, object.metadata, digest);
      await rename(partial, objectPath);
      return { size, md5: digest };
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
  };
}
