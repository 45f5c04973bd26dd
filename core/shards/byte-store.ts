import type { Readable } from "node:stream";

/** A body to store: small values as bytes or text, large ones as a stream (never buffered whole). */
export type Body = Readable | Uint8Array | string;

/**
 * The small interface every stage uses for bytes at rest: S3 in AWS and against emulators,
 * the filesystem for tests and tools. Keys are S3-style (`a/b/c.jsonl.gz`), built by core/layout.
 */
export interface ByteStore {
  /** Human-readable location, for logs (`s3://bucket`, `file:///tmp/x`). */
  readonly location: string;
  /** A stream of the object's bytes; throws NotFoundError when it does not exist. */
  read(key: string): Promise<Readable>;
  /** The whole object (for small objects: configs, stats, cache entries), or null when absent. */
  readBytes(key: string): Promise<Buffer | null>;
  /** Atomic write: readers see the old object or the whole new one, never a part. */
  write(key: string, body: Body, options?: WriteOptions): Promise<void>;
  /** Atomic create: returns false (and changes nothing) when the key already exists. */
  writeIfAbsent(key: string, body: Uint8Array | string, options?: WriteOptions): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  /** Size in bytes, or null when the key does not exist. */
  size(key: string): Promise<number | null>;
  /** Bytes [start, end) of an object (Parquet footers and column chunks are read this way). */
  readRange(key: string, start: number, end: number): Promise<Buffer>;
  /** Keys under a prefix, in lexicographic order. */
  list(prefix: string): AsyncIterable<string>;
  /**
   * Keys under a prefix with what identifies their content without reading it (a listing, not a
   * download): the size and S3's ETag, or for local files a content hash.
   */
  listDetailed?(prefix: string): AsyncIterable<ObjectVersion>;
  delete(key: string): Promise<void>;
}

/** An object as a listing describes it. */
export interface ObjectVersion {
  key: string;
  size: number;
  /** S3's ETag (quotes removed) or, for a local file, `sha256:<hex>` of its bytes. */
  etag: string;
}

export interface WriteOptions {
  contentType?: string;
}

export class NotFoundError extends Error {
  override readonly name = "NotFoundError";
  constructor(readonly key: string) {
    super(`no such key: ${key}`);
  }
}

export async function readJson<T = unknown>(store: ByteStore, key: string): Promise<T | null> {
  const bytes = await store.readBytes(key);
  return bytes === null ? null : (JSON.parse(bytes.toString("utf8")) as T);
}

export async function writeJson(store: ByteStore, key: string, value: unknown): Promise<void> {
  await store.write(key, `${JSON.stringify(value, null, 2)}\n`, { contentType: "application/json" });
}

export async function listAll(store: ByteStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const key of store.list(prefix)) out.push(key);
  return out;
}
