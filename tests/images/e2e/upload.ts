/**
 * Puts a local folder into the embedded runtime's bucket before `recipe run` starts, as a user's
 * `aws s3 cp --recursive` would: the S3 emulator on the run's data directory, the emulator's own
 * (the user's) credentials.
 *   node --import tsx tests/images/e2e/upload.ts <data dir> <folder> <key prefix>
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { LOCAL_BUCKET } from "../../../local/definition.ts";
import { startS3Emulator } from "../../../local/s3-emulator.ts";

const [dataDir, folder, prefix] = process.argv.slice(2);
if (!dataDir || !folder || !prefix) throw new Error("usage: upload.ts <data dir> <folder> <key prefix>");
const s3 = await startS3Emulator(LOCAL_BUCKET, join(dataDir, "s3"));
try {
  const files = readdirSync(folder, { recursive: true })
    .map(String)
    .filter((f) => statSync(join(folder, f)).isFile());
  for (const f of files) await s3.store.write(`${prefix}${f}`, readFileSync(join(folder, f)));
  console.log(JSON.stringify({ uri: `s3://${LOCAL_BUCKET}/${prefix}`, files: files.length }));
} finally {
  await s3.stop();
}
