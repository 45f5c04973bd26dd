/**
 * Copies a model folder staged in S3 (`teacher.weightsUri`, `rl.policyWeightsUri`) onto the host's
 * disk, and prints the local folder for the entrypoint to serve. Through the VPC's S3 gateway
 * endpoint this is free and fast; downloading from the Hugging Face Hub instead goes through the NAT
 * gateway (billed per GB) once per array child: 470 GB for the default teacher, every child.
 *
 *   stage-weights <s3://bucket/prefix/> <local root>
 *
 * Files already there with the same size are kept, so a retried attempt on the same host copies only
 * what is missing. Exit codes: 0 done, 3 not a model folder (no config.json), 75 transient.
 */
import { createWriteStream, mkdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { EXIT_BAD_INPUT, EXIT_TRANSIENT, InputContractError } from "../../../core/errors.ts";
import { sha256Hex } from "../../../core/records/index.ts";
import { type ByteStore, listAll } from "../../../core/shards/byte-store.ts";
import { FsStore } from "../../../core/shards/fs-store.ts";
import { createS3Client, S3Store } from "../../../core/shards/s3-store.ts";

/** Files copied at once (a model is a few large shards and small configs). */
const CONCURRENCY = 8;

export async function stageWeights(
  store: ByteStore,
  uri: string,
  root: string,
  log: (line: string) => void = () => undefined,
): Promise<string> {
  const m = /^s3:\/\/([^/]+)\/(.+?)\/?$/.exec(uri);
  if (!m) throw new InputContractError(`not an s3:// folder: ${uri}`);
  const prefix = `${m[2]}/`;
  const keys = (await listAll(store, prefix)).filter((k) => !k.endsWith("/"));
  if (!keys.includes(`${prefix}config.json`))
    throw new InputContractError(`${uri} holds no config.json (${keys.length} objects): not a model folder`);
  // One folder per URI: two models staged on one host never mix.
  const dir = join(root, sha256Hex(uri).slice(0, 16));
  let copied = 0;
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const file = join(dir, key.slice(prefix.length));
      const size = await store.size(key);
      try {
        if (statSync(file).size === size) continue;
      } catch {
        // not there yet
      }
      mkdirSync(dirname(file), { recursive: true });
      // Written beside, renamed into place: a killed copy never leaves a short file that looks done.
      await pipeline(await store.read(key), createWriteStream(`${file}.part`));
      renameSync(`${file}.part`, file);
      copied += size ?? 0;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, keys.length) }, worker));
  log(`staged ${uri}: ${keys.length} files, ${(copied / 1e9).toFixed(1)} GB copied, into ${dir}`);
  return dir;
}

async function main(): Promise<number> {
  const [uri, root] = process.argv.slice(2);
  if (!uri || !root) {
    console.error("usage: stage-weights <s3://bucket/prefix/> <local root>");
    return EXIT_BAD_INPUT;
  }
  const bucket = /^s3:\/\/([^/]+)\//.exec(uri)?.[1] ?? "";
  // file:// (tests, local development): a folder stands in for every bucket.
  const local = process.env.RECIPE_BUCKET?.startsWith("file://") ? process.env.RECIPE_BUCKET.slice(7) : null;
  const store = local ? new FsStore(local) : new S3Store(createS3Client(), bucket);
  try {
    const dir = await stageWeights(store, uri, root, (l) => console.error(l));
    console.log(dir);
    return 0;
  } catch (err) {
    console.error(`stage-weights: ${(err as Error).message}`);
    return err instanceof InputContractError ? EXIT_BAD_INPUT : EXIT_TRANSIENT;
  }
}

if (process.argv[1]?.endsWith("stage-weights.ts") || process.argv[1]?.endsWith("stage-weights.mjs"))
  process.exitCode = await main();
