/**
 * A Hugging Face model folder staged in S3 (`s3://bucket/prefix/`), copied onto local disk: the
 * generate image serves a staged teacher or policy from it, the train-rl image trains an s3://
 * start model from it. Files already there with the same size are kept, so a retried attempt on
 * the same host copies only what is missing; each file is written beside its place and renamed
 * into it, so a killed copy never leaves a short file that looks done.
 */
import { createWriteStream, mkdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import pLimit from "p-limit";
import { InputContractError } from "../errors.ts";
import { type ByteStore, listAll } from "../shards/byte-store.ts";

/** Files copied at once (a model is a few large shards and small configs). */
const COPY_CONCURRENCY = 8;

/** The bucket and key prefix of an `s3://bucket/prefix[/]` folder, or null for anything else. */
export function s3Folder(uri: string): { bucket: string; prefix: string } | null {
  const m = /^s3:\/\/([^/]+)\/(.+?)\/?$/.exec(uri);
  return m ? { bucket: m[1]!, prefix: `${m[2]!}/` } : null;
}

/**
 * Copies the model folder at `uri` (read from `store`) into `dir`, or only checks and sizes it when
 * `copy` is false (a dry run). Throws InputContractError when the folder holds no config.json.
 */
export async function stageModelFolder(
  store: ByteStore,
  uri: string,
  dir: string,
  options: { copy: boolean; log?: (line: string) => void },
): Promise<{ files: number; bytes: number; copiedBytes: number }> {
  const folder = s3Folder(uri);
  if (!folder) throw new InputContractError(`not an s3:// folder: ${uri}`);
  const keys = (await listAll(store, folder.prefix)).filter((k) => !k.endsWith("/"));
  if (!keys.includes(`${folder.prefix}config.json`))
    throw new InputContractError(
      `${uri}: no config.json under it (${keys.length} objects): point it at a Hugging Face model folder`,
    );
  const limit = pLimit(COPY_CONCURRENCY);
  const sizes = await Promise.all(keys.map((k) => limit(async () => (await store.size(k)) ?? 0)));
  const bytes = sizes.reduce((a, b) => a + b, 0);
  options.log?.(`model folder ${uri}: ${keys.length} files, ${(bytes / 1e9).toFixed(1)} GB -> ${dir}`);
  let copiedBytes = 0;
  if (options.copy)
    await Promise.all(
      keys.map((key, i) =>
        limit(async () => {
          const file = join(dir, key.slice(folder.prefix.length));
          try {
            if (statSync(file).size === sizes[i]) return;
          } catch {
            // not there yet
          }
          mkdirSync(dirname(file), { recursive: true });
          await pipeline(await store.read(key), createWriteStream(`${file}.part`));
          renameSync(`${file}.part`, file);
          copiedBytes += sizes[i]!;
        }),
      ),
    );
  return { files: keys.length, bytes, copiedBytes };
}
