/**
 * The Batch container contract every training and evaluation image starts with: the pipeline bucket
 * and run id from RECIPE_BUCKET and RECIPE_RUN_ID, and a store over that bucket. `file://<folder>`
 * (tests, local development) makes a folder stand in for S3, for the pipeline bucket and any other.
 * Exits 3 (bad input) naming what is missing, as the images' launchers do for any bad input.
 */
import { EXIT_BAD_INPUT } from "../errors.ts";
import type { ByteStore } from "./byte-store.ts";
import { FsStore } from "./fs-store.ts";
import { createS3Client, missingRegion, S3Store } from "./s3-store.ts";

export interface JobStore {
  bucket: string;
  runId: string;
  store: ByteStore;
  /** A folder stands in for S3 (`file://`). */
  local: boolean;
  /** Another bucket's objects (an s3:// model outside the pipeline bucket); the folder when local. */
  storeFor: (bucket: string) => ByteStore;
}

export function jobStore(env: NodeJS.ProcessEnv = process.env): JobStore {
  const bucket = env.RECIPE_BUCKET;
  const runId = env.RECIPE_RUN_ID;
  if (!bucket || !runId) {
    console.error("RECIPE_BUCKET and RECIPE_RUN_ID must be set");
    process.exit(EXIT_BAD_INPUT);
  }
  const local = bucket.startsWith("file://");
  const noRegion = local ? null : missingRegion(env);
  if (noRegion) {
    console.error(noRegion);
    process.exit(EXIT_BAD_INPUT);
  }
  const store = local ? new FsStore(bucket.slice(7)) : new S3Store(createS3Client(), bucket);
  return {
    bucket,
    runId,
    store,
    local,
    storeFor: (other) => (local ? store : new S3Store(createS3Client(), other)),
  };
}
