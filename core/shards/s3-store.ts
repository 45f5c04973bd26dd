/**
 * The S3 ByteStore (AWS SDK v3). The one file under core/ that talks to AWS: the recipe logic
 * only sees the ByteStore interface. Works against any S3-compatible endpoint: set
 * AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) and path-style addressing is used.
 */
import type { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import {
  type Body,
  type ByteStore,
  NotFoundError,
  type ObjectVersion,
  type WriteOptions,
} from "./byte-store.ts";

/** Multipart part size for streamed writes; memory per upload is about partSize x queueSize. */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;

function customEndpoint(): string | undefined {
  return process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
}

/**
 * An S3 client for AWS or, when an endpoint is configured, an S3-compatible emulator. The region is
 * the SDK's own (AWS_REGION, the profile): never a default here, with an emulator either, so a
 * container started without a region fails here as on AWS ("Region is missing"), not only there.
 */
export function createS3Client(overrides: S3ClientConfig = {}): S3Client {
  const endpoint = (overrides.endpoint as string | undefined) ?? customEndpoint();
  const config: S3ClientConfig = { ...overrides };
  if (endpoint) {
    config.endpoint = endpoint;
    config.forcePathStyle = true;
    // Emulators do not all speak the newer flexible-checksum trailers; AWS itself gets the defaults.
    config.requestChecksumCalculation = "WHEN_REQUIRED";
    config.responseChecksumValidation = "WHEN_REQUIRED";
  }
  return new S3Client(config);
}

/**
 * Why an S3 client made here would have no region, or null. A Batch container gets a region only from
 * its job definition (the JS SDK v3 reads none from instance metadata); without one the first call
 * throws "Region is missing". The container entry points check this first and exit 3 (bad input, no
 * retry) naming it, instead of failing every attempt the same way.
 */
export function missingRegion(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.AWS_REGION || env.AWS_DEFAULT_REGION || env.AWS_PROFILE) return null;
  return "Region is missing: the job definition sets no AWS_REGION (the JS SDK v3 reads no region from instance metadata)";
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}

export class S3Store implements ByteStore {
  readonly location: string;

  constructor(
    readonly client: S3Client,
    readonly bucket: string,
  ) {
    this.location = `s3://${bucket}`;
  }

  async read(key: string): Promise<Readable> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(key);
      throw err;
    }
  }

  async readBytes(key: string): Promise<Buffer | null> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async write(key: string, body: Body, options: WriteOptions = {}): Promise<void> {
    if (typeof body === "string" || body instanceof Uint8Array) {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: options.contentType }),
      );
      return;
    }
    // Multipart: the object appears only when CompleteMultipartUpload succeeds, so a killed writer
    // leaves no partial object (the bucket's lifecycle rule aborts incomplete uploads).
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: options.contentType },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  async writeIfAbsent(key: string, body: Uint8Array | string, options: WriteOptions = {}): Promise<boolean> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType,
          IfNoneMatch: "*",
        }),
      );
      return true;
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      // 412: the key exists; 409: a concurrent conditional write won the race.
      if (status === 412 || status === 409) return false;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async size(key: string): Promise<number | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.ContentLength ?? null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async readRange(key: string, start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end - 1}` }),
      );
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(key);
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const obj of out.Contents ?? []) if (obj.Key) yield obj.Key;
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async *listDetailed(prefix: string): AsyncIterable<ObjectVersion> {
    let token: string | undefined;
    do {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const obj of out.Contents ?? [])
        if (obj.Key) yield { key: obj.Key, size: obj.Size ?? 0, etag: (obj.ETag ?? "").replace(/"/g, "") };
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}
