/**
 * An S3-compatible server (s3rver) on a free loopback port, reached through the real AWS SDK client:
 * the local runtime's S3, and the tests'. Object-created events are reported like EventBridge would.
 */
import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import type { Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { createS3Client, S3Store } from "../core/shards/s3-store.ts";
import { s3FaultMiddleware } from "./faults.ts";
import { AccessDeniedError, type LocalAccount } from "./iam/account.ts";
import { accessKeyOf, s3Permissions, UnmappedRequestError } from "./iam/s3-requests.ts";

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

export interface S3EmulatorOptions {
  /**
   * Check every request against the IAM of this account, as S3 does: the caller is the principal
   * whose local access key signed the request; the emulator's own credentials (the user's) may do
   * anything.
   */
  account?: LocalAccount;
}

export async function startS3Emulator(
  bucket = "recipe-test",
  directory?: string,
  options: S3EmulatorOptions = {},
): Promise<S3Emulator> {
  const dir = directory ?? (await mkdtemp(join(tmpdir(), "recipe-s3-")));
  await mkdir(dir, { recursive: true });
  await removeAbandonedPuts(dir);
  const server = new S3rver({
    port: 0,
    address: "127.0.0.1",
    silent: true,
    directory: dir,
    allowMismatchedSignatures: true,
  });
  makePutsAtomic((server as unknown as { store: FilesystemStore }).store);
  if (options.account) enforceIam(server as unknown as KoaLike, options.account);
  // `npm run chaos` only (RECIPE_CHAOS): S3's 500 and 503 answers and dropped connections, first in line.
  const faults = s3FaultMiddleware(() => (server as unknown as { httpServer?: Server }).httpServer);
  if (faults) (server as unknown as { middleware: unknown[] }).middleware.unshift(faults);
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

const PARTIAL = ".partial-";

/**
 * The bodies of PUTs whose process was killed before they completed (see makePutsAtomic): S3 keeps
 * nothing of them, so neither does the emulator once it starts again. A body another live process is
 * writing (`recipe status` opens the folder of a running `recipe run`) is left alone.
 */
async function removeAbandonedPuts(dir: string): Promise<void> {
  const files = await readdir(dir, { recursive: true });
  for (const f of files) {
    const at = f.lastIndexOf(PARTIAL);
    if (at < 0) continue;
    const pid = Number(f.slice(at + PARTIAL.length).split("-")[0]);
    if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) continue;
    await rm(join(dir, f), { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
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
    const partial = `${objectPath}${PARTIAL}${process.pid}-${randomUUID()}`;
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

interface KoaContext {
  status: number;
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
}
interface KoaLike {
  middleware: ((ctx: KoaContext, next: () => Promise<void>) => Promise<void>)[];
}

const requireS3rver = createRequire(import.meta.url);
const S3Error = requireS3rver("s3rver/lib/models/error.js") as new (code: string, message: string) => Error;
const { DUMMY_ACCOUNT } = requireS3rver("s3rver/lib/models/account.js") as {
  DUMMY_ACCOUNT: { createKeyPair(accessKeyId: string, secretAccessKey: string): void };
};

/**
 * S3's front door: who signed the request, and whether that principal's policies (and the bucket
 * policy, and for SSE-KMS the key's) allow what it asks. Runs before s3rver's own routing (Koa
 * composes its middleware when the server starts, so it goes right after the logger).
 */
function enforceIam(server: KoaLike, account: LocalAccount): void {
  // s3rver checks signatures itself: it must know each principal's key pair.
  for (const p of account.roles.values()) DUMMY_ACCOUNT.createKeyPair(p.accessKeyId, p.secretAccessKey);
  server.middleware.splice(1, 0, async (ctx, next) => {
    const key = accessKeyOf(ctx.headers, ctx.query);
    if (key === undefined) throw new S3Error("AccessDenied", "Anonymous access is not allowed");
    if (key === EMULATOR_CREDENTIALS.accessKeyId) return next();
    const principal = account.principalForKey(key);
    if (!principal)
      throw new S3Error(
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
      );
    const [bucket = "", ...rest] = ctx.path.replace(/^\//, "").split("/");
    const objectKey = rest.length > 0 ? decodeURIComponent(rest.join("/")) : undefined;
    try {
      const needs = s3Permissions(
        { method: ctx.method, bucket, key: objectKey, query: ctx.query, headers: ctx.headers },
        account.bucketKeys.get(bucket),
      );
      for (const n of needs) account.authorize(principal, n.action, n.resource, n.context);
    } catch (err) {
      if (err instanceof AccessDeniedError) throw new S3Error("AccessDenied", err.message);
      if (err instanceof UnmappedRequestError) throw new S3Error("NotImplemented", err.message);
      throw err;
    }
    // S3 answers a read of a missing key with 403, not 404, unless the caller may list the bucket.
    const hidden = () =>
      objectKey !== undefined && !account.allows(principal, "s3:ListBucket", `arn:aws:s3:::${bucket}`);
    const denied = () =>
      new S3Error(
        "AccessDenied",
        `User: ${principal.session} is not authorized to perform: s3:ListBucket on resource: "arn:aws:s3:::${bucket}" (a missing key reads as 403 without it)`,
      );
    try {
      await next();
    } catch (err) {
      if ((err as { code?: string }).code === "NoSuchKey" && hidden()) throw denied();
      throw err;
    }
    if (ctx.status === 404 && hidden()) throw denied();
  });
}
