/**
 * The first rows' image paths of each local source, checked before anything runs: a relative path
 * that is neither a file beside the table nor possibly in a zip beside it (images.zip, image.zip,
 * <first folder>.zip, as ingest reads them) would only be rejected as image_not_found mid-run.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import type { ConfigProblem } from "../core/config/index.ts";
import type { RunConfig } from "../core/config/schema.ts";
import { FsStore } from "../core/shards/fs-store.ts";
import { shardRows } from "../core/shards/jsonl.ts";
import { readParquetRows } from "../core/shards/parquet.ts";
import { rowImagePaths } from "../core/stages/ingest.ts";
import { filesUnder } from "./source-counts.ts";
import { localSourcePath } from "./sources.ts";

/** Rows read per source: enough to catch a wrong folder, few enough to stay instant. */
export const IMAGE_ROWS_CHECKED = 20;

export async function sourceImageProblems(config: RunConfig, configPath: string): Promise<ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  for (const branch of ["sft", "rl"] as const) {
    for (const [i, source] of config.sources[branch].entries()) {
      const path = localSourcePath(source.uri, configPath);
      if (path === null || !existsSync(path)) continue;
      const file = statSync(path).isDirectory() ? filesUnder(path, source.format)[0] : path;
      if (!file) continue;
      const dir = dirname(file);
      const store = new FsStore(dir);
      const name = relative(dir, file);
      const rows: AsyncIterable<unknown> =
        source.format === "parquet"
          ? readParquetRows(store, name)
          : (async function* () {
              for await (const r of shardRows(store, name)) if (r.ok) yield r.value;
            })();
      let n = 0;
      const missing: string[] = [];
      try {
        for await (const row of rows) {
          if (++n > IMAGE_ROWS_CHECKED) break;
          for (const ref of rowImagePaths(source, row)) {
            if (existsSync(resolve(dir, ref))) continue;
            const first = ref.replace(/^\.\//, "").split("/")[0]!;
            const zips = [`${first}.zip`, "images.zip", "image.zip"].filter((z) => existsSync(join(dir, z)));
            if (zips.length === 0) missing.push(`row ${n}: "${ref}"`);
          }
        }
      } catch {
        continue; // an unreadable file: ingest rejects its rows with their reason
      }
      if (missing.length > 0)
        problems.push({
          path: `$.sources.${branch}[${i}].columns.images`,
          expected: `image files relative to ${dir} (or in images.zip beside it)`,
          found:
            missing.slice(0, 3).join(", ") + (missing.length > 3 ? `, and ${missing.length - 3} more` : ""),
          message: `${missing.length} image path(s) in the first ${Math.min(n, IMAGE_ROWS_CHECKED)} rows of ${file} do not exist`,
        });
    }
  }
  return problems;
}
