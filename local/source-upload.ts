/**
 * A run's local sources into the emulator's `sources/`, by the files each source names: its table
 * (the file, or the JSON-lines / Parquet files below its folder), the image files its rows refer to,
 * and the zip archives beside a table that ingest reads images from. Never a folder walked whole: the
 * run's data directory (`.recipe/`, often right next to run.json) holds the emulator's own files, and
 * uploading it made every run copy the last one into itself.
 *
 * An object whose content is already there (the emulator's ETag is the MD5 of its bytes) is not
 * written again, so an unchanged file keeps its ETag and the stage fingerprints that list it
 * (core/pipeline/source-identity.ts) stay the same; a table file removed from a source folder is
 * removed from the emulator too.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import type { Source } from "../core/config/schema.ts";
import { sourceFileFormat } from "../core/pipeline/context.ts";
import { listAll } from "../core/shards/byte-store.ts";
import { FsStore } from "../core/shards/fs-store.ts";
import { shardRows } from "../core/shards/jsonl.ts";
import { readParquetRows } from "../core/shards/parquet.ts";
import { rowImagePaths } from "../core/stages/ingest.ts";
import type { S3Emulator } from "./s3-emulator.ts";

/**
 * What a source names, as `recipe run` uploads it: a source of the run.json (as written or resolved),
 * or a benchmark (`tablesOnly`: its rows refer to no images). A bare string is a URI whose format
 * its name says (JSON lines otherwise).
 */
export type UploadSource =
  | string
  | {
      uri: string;
      format?: "jsonl" | "parquet";
      preset?: Source["preset"];
      columns?: Partial<Source["columns"]>;
      tablesOnly?: boolean;
    };

function normalized(s: UploadSource): Exclude<UploadSource, string> & { format: "jsonl" | "parquet" } {
  const o = typeof s === "string" ? { uri: s } : s;
  return { ...o, format: o.format ?? sourceFileFormat(o.uri) ?? "jsonl" };
}

const REMOTE = /^[a-z0-9]+:\/\//;

/** Whether a path lies inside a `.recipe` folder or inside one of `excluded` (the data directory). */
function isExcluded(file: string, excluded: readonly string[]): boolean {
  if (file.split(sep).includes(".recipe")) return true;
  return excluded.some((d) => file === d || file.startsWith(`${d}${sep}`));
}

/** The table files of one local source: the file itself, or the matching files below its folder. */
function tableFiles(path: string, format: "jsonl" | "parquet", excluded: readonly string[]): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return isExcluded(path, excluded) ? [] : [path];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(dir, e.name);
      // Hidden folders (.git, .recipe, .venv) never hold a source's tables.
      if (e.isDirectory()) {
        if (!e.name.startsWith(".") && !isExcluded(full, excluded)) walk(full);
      } else if (e.isFile() && sourceFileFormat(e.name) === format && !isExcluded(full, excluded))
        out.push(full);
    }
  };
  walk(path);
  return out;
}

/** The image files (and zip archives) a table's rows refer to that exist locally. */
async function referencedFiles(table: string, source: ReturnType<typeof normalized>): Promise<string[]> {
  if (source.tablesOnly) return [];
  const dir = dirname(table);
  const store = new FsStore(dir);
  const name = table.slice(dir.length + 1);
  const refs = new Set<string>();
  const full = { ...source, columns: { images: "images", ...source.columns } } as Source;
  if (source.format === "parquet") {
    for await (const row of readParquetRows(store, name))
      for (const p of rowImagePaths(full, row)) refs.add(p);
  } else {
    for await (const row of shardRows(store, name))
      if (row.ok) for (const p of rowImagePaths(full, row.value)) refs.add(p);
  }
  const out = new Set<string>();
  const firsts = new Set<string>();
  for (const ref of refs) {
    const file = resolve(dir, ref);
    if (existsSync(file) && statSync(file).isFile()) out.add(file);
    firsts.add(ref.replace(/^\.\//, "").split("/")[0]!);
  }
  // Images not beside the table are read from a zip beside it (core/pipeline/steps.ts loadSourceImage).
  if (refs.size > 0)
    for (const zip of new Set([...[...firsts].map((f) => `${f}.zip`), "images.zip", "image.zip"])) {
      const file = join(dir, zip);
      if (existsSync(file) && statSync(file).isFile()) out.add(file);
    }
  return [...out];
}

export interface LocalSourcePlan {
  /** Every local file to upload, absolute. */
  files: string[];
  /** Source folders (absolute) with their table format: tables under them that are gone locally are removed. */
  folders: { path: string; format: "jsonl" | "parquet" }[];
}

/** The local files a run's sources name (relative paths and file:// are read from `base`). */
export async function localSourcePlan(
  sources: readonly UploadSource[],
  base: string,
  excluded: readonly string[],
): Promise<LocalSourcePlan> {
  const files = new Set<string>();
  const folders: LocalSourcePlan["folders"] = [];
  for (const source of sources.map(normalized)) {
    if (REMOTE.test(source.uri)) continue;
    const path = resolve(base, source.uri);
    if (existsSync(path) && statSync(path).isDirectory()) folders.push({ path, format: source.format });
    for (const table of tableFiles(path, source.format, excluded)) {
      files.add(table);
      for (const f of await referencedFiles(table, source)) if (!isExcluded(f, excluded)) files.add(f);
    }
  }
  return { files: [...files].sort(), folders };
}

function md5Of(file: string): Promise<string> {
  return new Promise((ok, fail) => {
    const h = createHash("md5");
    createReadStream(file)
      .on("data", (c) => h.update(c))
      .on("end", () => ok(h.digest("hex")))
      .on("error", fail);
  });
}

/** The emulator's key for a local source file (relative paths resolve under sources/, as in AWS). */
export function sourceKey(base: string, file: string): string {
  return `sources/${relative(base, file).split(sep).join("/")}`;
}

export interface UploadResult {
  uploaded: number;
  unchanged: number;
  removed: number;
}

/**
 * Uploads the files a run's local sources name to sources/ in the emulator; unchanged ones are left
 * as they are, and tables deleted from a source folder are deleted there as well.
 */
export async function uploadSources(
  s3: S3Emulator,
  runJsonPath: string,
  sources: readonly UploadSource[],
  excluded: readonly string[] = [],
): Promise<UploadResult> {
  const base = dirname(resolve(runJsonPath));
  const plan = await localSourcePlan(
    sources,
    base,
    excluded.map((d) => resolve(d)),
  );
  const result: UploadResult = { uploaded: 0, unchanged: 0, removed: 0 };
  for (const file of plan.files) {
    const key = sourceKey(base, file);
    const etag = await s3.client
      .send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
      .then((h) => h.ETag?.replace(/"/g, ""))
      .catch(() => undefined);
    if (etag && etag === (await md5Of(file))) {
      result.unchanged++;
      continue;
    }
    await s3.store.write(key, createReadStream(file));
    result.uploaded++;
  }
  const wanted = new Set(plan.files.map((f) => sourceKey(base, f)));
  for (const folder of plan.folders) {
    for (const key of await listAll(s3.store, `${sourceKey(base, folder.path)}/`)) {
      if (sourceFileFormat(key) === folder.format && !wanted.has(key)) {
        await s3.store.delete(key);
        result.removed++;
      }
    }
  }
  return result;
}
