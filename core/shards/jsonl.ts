/**
 * Streaming JSONL.gz shards. Memory stays flat whatever the shard size: the reader yields one
 * line at a time from a gunzip stream, the writer respects backpressure down to the store.
 * A malformed line is yielded as an error entry (the stage turns it into a reject), never thrown.
 */
import { once } from "node:events";
import { createInterface } from "node:readline";
import { createGunzip, createGzip } from "node:zlib";
import type { ByteStore } from "./byte-store.ts";

export type ShardLine =
  | { line: number; ok: true; value: unknown }
  | { line: number; ok: false; error: string; raw: string };

/** A record read from a file, located by `origin` (file:line), or a line that could not be parsed. */
export type SourceRow =
  | { origin: string; ok: true; value: unknown }
  | { origin: string; ok: false; error: string };

/** readShard's lines as rows located by `key:line`, the shape every stage consumes. */
export async function* shardRows(store: ByteStore, key: string): AsyncGenerator<SourceRow> {
  for await (const line of readShard(store, key)) {
    yield line.ok
      ? { origin: `${key}:${line.line}`, ok: true, value: line.value }
      : { origin: `${key}:${line.line}`, ok: false, error: line.error };
  }
}

/** Reads a `.jsonl.gz` (or plain `.jsonl`) shard line by line. Blank lines are skipped. */
export async function* readShard(store: ByteStore, key: string): AsyncGenerator<ShardLine> {
  const raw = await store.read(key);
  const text = key.endsWith(".gz") ? raw.pipe(createGunzip()) : raw;
  raw.on("error", (err) => text.destroy(err));
  const lines = createInterface({ input: text, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  for await (const rawLine of lines) {
    line += 1;
    if (rawLine.trim() === "") continue;
    try {
      yield { line, ok: true, value: JSON.parse(rawLine) };
    } catch (err) {
      yield { line, ok: false, error: (err as Error).message, raw: rawLine.slice(0, 2000) };
    }
  }
}

export interface ShardSummary {
  key: string;
  records: number;
}

/**
 * Writes records to one shard. Nothing is visible at `key` until close() resolves (atomic store
 * write); abort() discards everything written so far.
 */
export class ShardWriter {
  private readonly gzip = createGzip({ level: 6 });
  private readonly done: Promise<void>;
  private failure: Error | null = null;
  private count = 0;
  private closed = false;

  constructor(
    readonly store: ByteStore,
    readonly key: string,
  ) {
    // The store attaches to the stream after its own set-up (a directory, an upload): an abort
    // before then must not surface as an unhandled 'error' event. Failures reach `done` either way.
    this.gzip.on("error", () => undefined);
    this.done = store.write(key, this.gzip, { contentType: "application/gzip" });
    this.done.catch((err: Error) => {
      this.failure = err;
    });
  }

  get records(): number {
    return this.count;
  }

  async write(record: unknown): Promise<void> {
    if (this.closed) throw new Error(`shard writer for ${this.key} is closed`);
    if (this.failure) throw this.failure;
    if (!this.gzip.write(`${JSON.stringify(record)}\n`)) {
      await Promise.race([once(this.gzip, "drain"), this.done.then(() => undefined)]);
      if (this.failure) throw this.failure;
    }
    this.count += 1;
  }

  async close(): Promise<ShardSummary> {
    if (!this.closed) {
      this.closed = true;
      this.gzip.end();
    }
    await this.done;
    return { key: this.key, records: this.count };
  }

  /** Abandons the shard: the store never shows a partial object. */
  async abort(reason = new Error("aborted")): Promise<void> {
    this.closed = true;
    this.gzip.destroy(reason);
    await this.done.catch(() => undefined);
  }
}

/** Convenience: writes an iterable of records to one shard. */
export async function writeShard(
  store: ByteStore,
  key: string,
  records: Iterable<unknown> | AsyncIterable<unknown>,
): Promise<ShardSummary> {
  const writer = new ShardWriter(store, key);
  try {
    for await (const r of records) await writer.write(r);
  } catch (err) {
    await writer.abort(err as Error);
    throw err;
  }
  return writer.close();
}
