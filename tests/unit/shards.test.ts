import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ByteStore, listAll, NotFoundError } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { readShard, ShardWriter, writeShard } from "../../core/shards/jsonl.ts";
import { type S3Emulator, startS3Emulator } from "../../local/s3-emulator.ts";

const RECORDS = 100_000;
const PAD = "x".repeat(900); // ~1 KB per record: 100 MB of JSON if anything held the shard whole

function record(i: number) {
  return { i, text: `${PAD}${i}` };
}

// A full collection before each sample, so that a sample counts what is held, not garbage that V8
// has not collected yet (RSS alone grew 77 MB on Node 24, whose collector runs later than Node 20's).
setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as () => void;

/** Bytes the process holds after a full collection: the JS heap and the buffers outside it. */
function retained(): number {
  collect();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/**
 * Writes and reads back 100k records, sampling retained memory after 10k and after 100k records on
 * each side. Growth between the two samples is what "flat memory" means: it must not scale with the
 * shard (held whole, it would be ~100 MB).
 */
async function roundTrip(store: ByteStore, key: string) {
  const writer = new ShardWriter(store, key);
  let rssAt10k = 0;
  for (let i = 0; i < RECORDS; i++) {
    await writer.write(record(i));
    if (i === 10_000) rssAt10k = retained();
  }
  const summary = await writer.close();
  const rssAfterWrite = retained();
  let next = 0;
  let mismatches = 0;
  let rssRead10k = 0;
  for await (const line of readShard(store, key)) {
    if (
      !line.ok ||
      (line.value as { i: number }).i !== next ||
      (line.value as { text: string }).text !== `${PAD}${next}`
    ) {
      mismatches += 1;
    }
    next += 1;
    if (next === 10_000) rssRead10k = retained();
  }
  const rssAfterRead = retained();
  const mb = (n: number) => Math.round(n / 1e6);
  console.log(
    `[shards ${store.location}] ${RECORDS} records: retained write 10k=${mb(rssAt10k)}MB end=${mb(rssAfterWrite)}MB; ` +
      `read 10k=${mb(rssRead10k)}MB end=${mb(rssAfterRead)}MB`,
  );
  return {
    summary,
    read: next,
    mismatches,
    writeGrowth: rssAfterWrite - rssAt10k,
    readGrowth: rssAfterRead - rssRead10k,
  };
}

function behavesAsAShardStore(
  name: string,
  open: () => Promise<{ store: ByteStore; close(): Promise<void> }>,
) {
  describe(name, () => {
    let store: ByteStore;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ store, close } = await open());
    });
    afterAll(async () => close());

    it("round-trips 100k records in order with flat memory", async () => {
      const result = await roundTrip(store, "runs/t/distill/shards/00000.jsonl.gz");

      expect(result.summary.records).toBe(RECORDS);
      expect(result.read).toBe(RECORDS);
      expect(result.mismatches).toBe(0);
      // 90k more records (~90 MB of JSON) may not grow what the process holds by more than a bounded buffer.
      expect(result.writeGrowth).toBeLessThan(48e6);
      expect(result.readGrowth).toBeLessThan(48e6);
    });

    it("shows nothing at the key until the writer closes", async () => {
      const key = "runs/t/distill/shards/00001.jsonl.gz";
      const writer = new ShardWriter(store, key);
      for (let i = 0; i < 1000; i++) await writer.write(record(i));

      expect(await store.exists(key)).toBe(false);
      await writer.close();
      expect(await store.exists(key)).toBe(true);
    });

    it("leaves no object behind when a writer is aborted", async () => {
      const key = "runs/t/distill/shards/00002.jsonl.gz";
      const writer = new ShardWriter(store, key);
      for (let i = 0; i < 1000; i++) await writer.write(record(i));

      await writer.abort();

      expect(await store.exists(key)).toBe(false);
      expect(await listAll(store, "runs/t/distill/shards/")).not.toContain(key);
    });

    it("aborts a writer before its first record without an unhandled stream error", async () => {
      const key = "runs/t/never-written-before/shards/00003.jsonl.gz";
      const uncaught: unknown[] = [];
      const onError = (err: unknown) => uncaught.push(err);
      process.on("uncaughtException", onError);
      try {
        const writer = new ShardWriter(store, key);
        await writer.abort(new Error("the stage failed before writing"));
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        process.off("uncaughtException", onError);
      }
      expect(uncaught).toEqual([]);
      expect(await store.exists(key)).toBe(false);
    });

    it("yields a malformed line as an error entry and keeps reading", async () => {
      const key = "runs/t/ingest-sft/shards/00000.jsonl";
      await store.write(key, '{"a":1}\n{"a":\n\n{"a":3}\n');

      const lines = [];
      for await (const l of readShard(store, key)) lines.push(l);

      expect(lines.map((l) => l.ok)).toEqual([true, false, true]);
      expect(lines.map((l) => l.line)).toEqual([1, 2, 4]);
    });

    it("reads an empty shard as no records", async () => {
      const key = "runs/t/ingest-sft/shards/00001.jsonl.gz";
      await writeShard(store, key, []);

      const lines = [];
      for await (const l of readShard(store, key)) lines.push(l);

      expect(lines).toEqual([]);
    });

    it("throws NotFoundError for a missing shard and returns null bytes for a missing object", async () => {
      await expect(readShard(store, "runs/t/none.jsonl.gz").next()).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.readBytes("runs/t/none.json")).toBeNull();
    });

    it("lists keys under a prefix in order", async () => {
      await store.write("runs/l/a/2", "x");
      await store.write("runs/l/a/1", "x");
      await store.write("runs/l/b/1", "x");

      expect(await listAll(store, "runs/l/a/")).toEqual(["runs/l/a/1", "runs/l/a/2"]);
    });

    it("streams a large body through write()", async () => {
      const chunks = Array.from({ length: 20 }, (_, i) => Buffer.alloc(1 << 20, i));
      await store.write("runs/t/blob", Readable.from(chunks));

      const bytes = await store.readBytes("runs/t/blob");

      expect(bytes?.length).toBe(20 << 20);
      expect(bytes?.[19 << 20]).toBe(19);
    });
  });
}

behavesAsAShardStore("filesystem store", async () => {
  const dir = await mkdtemp(join(tmpdir(), "recipe-fs-"));
  return { store: new FsStore(dir), close: () => rm(dir, { recursive: true, force: true }) };
});

let emulator: S3Emulator;
behavesAsAShardStore("S3 store against an S3 emulator over HTTP", async () => {
  emulator = await startS3Emulator();
  return { store: emulator.store, close: () => emulator.stop() };
});

describe("filesystem store specifics", () => {
  it("creates a key once with writeIfAbsent and refuses the second writer", async () => {
    const dir = await mkdtemp(join(tmpdir(), "recipe-fs-"));
    const store = new FsStore(dir);

    const first = await store.writeIfAbsent("cache/generate/ab/x.json", "first");
    const second = await store.writeIfAbsent("cache/generate/ab/x.json", "second");

    expect([first, second]).toEqual([true, false]);
    expect((await store.readBytes("cache/generate/ab/x.json"))?.toString()).toBe("first");
    expect(await readdir(join(dir, "cache/generate/ab"))).toEqual(["x.json"]);
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses keys that would escape the root", async () => {
    const store = new FsStore(tmpdir());

    await expect(store.write("../etc/x", "x")).rejects.toThrow(/bad key/);
  });
});

describe("S3 emulator specifics", () => {
  it("shows a PUT all at once, as S3 does: never an empty or half-written object, even mid-upload", {
    timeout: 30_000,
  }, async () => {
    const { request } = await import("node:http");
    const s3 = await startS3Emulator();
    try {
      await s3.store.write("cache/generate/ab/old.json", "old");
      const readers = async () => ({
        fresh: (await s3.store.readBytes("cache/generate/ab/new.json"))?.toString() ?? null,
        replaced: (await s3.store.readBytes("cache/generate/ab/old.json"))?.toString() ?? null,
        listed: (await listAll(s3.store, "cache/generate/")).sort(),
      });
      const body = Buffer.alloc(64 << 10, "x");
      const put = (key: string) => {
        const req = request(`${s3.endpoint}/${s3.bucket}/${key}`, {
          method: "PUT",
          headers: { "content-length": body.length, "content-type": "application/json" },
        });
        const done = new Promise<number | undefined>((resolve, reject) => {
          req.on("response", (res) => {
            res.resume();
            resolve(res.statusCode);
          });
          req.on("error", reject);
        });
        req.write(body.subarray(0, body.length / 2));
        return { req, done };
      };
      const fresh = put("cache/generate/ab/new.json");
      const replaced = put("cache/generate/ab/old.json");
      // Wait until both half bodies have reached the emulator's disk, wherever it keeps them.
      const { stat } = await import("node:fs/promises");
      const folder = join(s3.directory, s3.bucket, "cache/generate/ab");
      const bytesOnDisk = async () => {
        let total = 0;
        for (const f of await readdir(folder))
          if (!f.endsWith(".json") && !f.endsWith(".md5")) total += (await stat(join(folder, f))).size;
        return total;
      };
      for (let i = 0; (await bytesOnDisk()) < body.length; i++) {
        if (i > 1000) throw new Error("the emulator never received the half bodies");
        await new Promise((r) => setTimeout(r, 10));
      }

      expect(await readers()).toEqual({
        fresh: null,
        replaced: "old",
        listed: ["cache/generate/ab/old.json"],
      });

      fresh.req.end(body.subarray(body.length / 2));
      replaced.req.end(body.subarray(body.length / 2));
      expect([await fresh.done, await replaced.done]).toEqual([200, 200]);
      const after = await readers();
      expect([after.fresh?.length, after.replaced?.length]).toEqual([body.length, body.length]);
      expect(after.listed).toEqual(["cache/generate/ab/new.json", "cache/generate/ab/old.json"]);
    } finally {
      await s3.stop();
    }
  });

  it("leaves nothing on disk of a PUT its process was killed in the middle of, once it starts again", async () => {
    // Found by npm run chaos: a recipe run SIGKILLed mid-PUT left the half body beside the object, on
    // disk for good (S3 keeps nothing of a PUT that never completed).
    const dir = await mkdtemp(join(tmpdir(), "recipe-s3-torn-"));
    const first = await startS3Emulator("torn", dir);
    await first.store.write("runs/r/verify-traces/shards/00008.jsonl.gz", "whole");
    await first.stop();
    const folder = join(dir, "torn", "runs/r/verify-traces/shards");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(folder, "00009.jsonl.gz._S3rver_object.partial-1b2c"), "half a bo");
    // A PUT a live process is still writing (recipe status opens a running run's folder) stays.
    const live = `00010.jsonl.gz._S3rver_object.partial-${process.pid}-3d4e`;
    await writeFile(join(folder, live), "in flig");

    const again = await startS3Emulator("torn", dir);
    try {
      expect((await readdir(folder)).filter((f) => f.includes(".partial-"))).toEqual([live]);
      expect(await listAll(again.store, "runs/")).toEqual(["runs/r/verify-traces/shards/00008.jsonl.gz"]);
    } finally {
      await again.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
