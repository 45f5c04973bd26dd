/**
 * Copies a model folder staged in S3 (`teacher.weightsUri`, `rl.policyWeightsUri`) onto the host's
 * disk, and prints the local folder for the entrypoint to serve. Through the VPC's S3 gateway
 * endpoint this is free and fast; downloading from the Hugging Face Hub instead goes through the NAT
 * gateway (billed per GB) once per array child: 470 GB for the default teacher, every child.
 *
 *   stage-weights <s3://bucket/prefix/> <local root>
 *
 * Resumable (core/models/stage.ts). Exit codes: 0 done, 3 not a model folder (no config.json),
 * 75 transient.
 */
import { join } from "node:path";
import { EXIT_BAD_INPUT, EXIT_TRANSIENT, InputContractError } from "../../../core/errors.ts";
import { s3Folder, stageModelFolder } from "../../../core/models/stage.ts";
import { sha256Hex } from "../../../core/records/index.ts";
import { FsStore } from "../../../core/shards/fs-store.ts";
import { createS3Client, S3Store } from "../../../core/shards/s3-store.ts";

async function main(): Promise<number> {
  const [uri, root] = process.argv.slice(2);
  if (!uri || !root) {
    console.error("usage: stage-weights <s3://bucket/prefix/> <local root>");
    return EXIT_BAD_INPUT;
  }
  // file:// (tests, local development): a folder stands in for every bucket.
  const local = process.env.RECIPE_BUCKET?.startsWith("file://") ? process.env.RECIPE_BUCKET.slice(7) : null;
  const store = local ? new FsStore(local) : new S3Store(createS3Client(), s3Folder(uri)?.bucket ?? "");
  // One folder per URI: two models staged on one host never mix.
  const dir = join(root, sha256Hex(uri).slice(0, 16));
  try {
    const staged = await stageModelFolder(store, uri, dir, { copy: true, log: (l) => console.error(l) });
    console.error(`staged: ${(staged.copiedBytes / 1e9).toFixed(1)} GB copied, the rest already there`);
    console.log(dir);
    return 0;
  } catch (err) {
    console.error(`stage-weights: ${(err as Error).message}`);
    return err instanceof InputContractError ? EXIT_BAD_INPUT : EXIT_TRANSIENT;
  }
}

process.exitCode = await main();
