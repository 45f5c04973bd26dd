/**
 * bench/shards: JSONL.gz shard write + read throughput and memory, filesystem store and S3 store
 * against a local S3 emulator over HTTP, 100k records of ~1 KB each.
 *
 *   npm run bench -- shards [--records 100000]
 *
 * Target (issue 3): flat memory: RSS growth from the 10k-th to the last record at most 48 MB
 * (the shard is ~100 MB of JSON, so holding it would show).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { ByteStore } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { readShard, ShardWriter } from "../../core/shards/jsonl.ts";
import { startS3Emulator } from "../../local/s3-emulator.ts";
import { BenchReport, fmt } from "../lib/stats.ts";

const { values: args } = parseArgs({ options: { records: { type: "string", default: "100000" } } });
const RECORDS = Number(args.records);
const PAD = "x".repeat(900);
const MB = 1e6;

async function measure(store: ByteStore) {
  const key = "bench/shards/00000.jsonl.gz";
  const w = new ShardWriter(store, key);
  const t0 = performance.now();
  let rss10k = 0;
  let peak = 0;
  for (let i = 0; i < RECORDS; i++) {
    await w.write({ i, text: `${PAD}${i}` });
    if (i === 10_000) rss10k = process.memoryUsage().rss;
    if (i % 5000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  await w.close();
  const writeSeconds = (performance.now() - t0) / 1000;
  const writeGrowth = process.memoryUsage().rss - rss10k;
  const t1 = performance.now();
  let n = 0;
  let rssRead10k = 0;
  for await (const line of readShard(store, key)) {
    if (line.ok) n++;
    if (n === 10_000) rssRead10k = process.memoryUsage().rss;
    if (n % 5000 === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  const readSeconds = (performance.now() - t1) / 1000;
  return {
    records: n,
    writePerSecond: RECORDS / writeSeconds,
    readPerSecond: n / readSeconds,
    writeGrowthMB: writeGrowth / MB,
    readGrowthMB: (process.memoryUsage().rss - rssRead10k) / MB,
    peakRssMB: peak / MB,
  };
}

const dir = await mkdtemp(join(tmpdir(), "bench-shards-"));
const fsResult = await measure(new FsStore(dir));
await rm(dir, { recursive: true, force: true });
const emulator = await startS3Emulator();
const s3Result = await measure(emulator.store);
await emulator.stop();

const report = new BenchReport("shards", { records: RECORDS });
for (const [name, r] of [
  ["filesystem", fsResult],
  ["s3 emulator", s3Result],
] as const) {
  console.log(
    `${name.padEnd(12)} write ${fmt(r.writePerSecond)} rec/s, read ${fmt(r.readPerSecond)} rec/s, ` +
      `RSS growth write ${fmt(r.writeGrowthMB)} MB, read ${fmt(r.readGrowthMB)} MB, peak RSS ${fmt(r.peakRssMB)} MB`,
  );
  report
    .figure(`${name}: write`, r.writePerSecond, "records/s")
    .figure(`${name}: read`, r.readPerSecond, "records/s")
    .figure(`${name}: records read back`, r.records, "records", { kind: "min", limit: RECORDS })
    .figure(`${name}: RSS growth while writing`, r.writeGrowthMB, "MB", { kind: "max", limit: 48 })
    .figure(`${name}: RSS growth while reading`, r.readGrowthMB, "MB", { kind: "max", limit: 48 });
}
report.finish();
