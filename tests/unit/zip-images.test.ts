/**
 * Images inside a zip beside the source table (ViRL39K's images.zip): read in place by range reads,
 * on disk and over the S3 emulator, never unpacked.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import yazl from "yazl";
import { Source } from "../../core/config/schema.ts";
import { ZipArchive } from "../../core/images/zip-archive.ts";
import type { RunContext } from "../../core/pipeline/context.ts";
import { loadSourceImage } from "../../core/pipeline/steps.ts";
import type { ByteStore } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { type S3Emulator, startS3Emulator } from "../../local/s3-emulator.ts";

const A = new Uint8Array(Buffer.from("89504e470d0a1a0a0000000d49484452", "hex"));
const B = new Uint8Array(Buffer.concat([Buffer.from(A), Buffer.alloc(5000, 7)])); // compresses well

async function zipOf(files: Record<string, { data: Uint8Array; compress: boolean }>): Promise<Uint8Array> {
  const zip = new yazl.ZipFile();
  for (const [name, f] of Object.entries(files))
    zip.addBuffer(Buffer.from(f.data), name, { compress: f.compress });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

const source = Source.parse({
  name: "virl",
  uri: "src/",
  format: "parquet",
  domain: "general_vqa",
  license: "x",
  preset: "virl39k",
});
const ctxOf = (store: ByteStore) => ({ sources: () => ({ store, key: "src/" }) }) as unknown as RunContext;

let s3: S3Emulator;
beforeAll(async () => {
  s3 = await startS3Emulator("recipe-zip");
});
afterAll(async () => {
  await s3.stop();
});

describe("images in a zip beside the table", () => {
  for (const where of ["disk", "S3"] as const) {
    it(`reads a member by its relative path (${where}), stored or deflated, and null for one it lacks`, async () => {
      const store: ByteStore =
        where === "disk" ? new FsStore(mkdtempSync(join(tmpdir(), "recipe-zip-"))) : s3.store;
      await store.write("src/39Krelease.parquet", new Uint8Array([1]));
      await store.write(
        "src/images.zip",
        await zipOf({
          "images/q1-0.png": { data: A, compress: false },
          "images/q2-0.png": { data: B, compress: true },
        }),
      );
      const load = (ref: string) => loadSourceImage(ctxOf(store), source, "src/39Krelease.parquet", ref);

      expect(Buffer.from((await load("images/q1-0.png"))!).equals(Buffer.from(A))).toBe(true);
      expect(Buffer.from((await load("./images/q2-0.png"))!).equals(Buffer.from(B))).toBe(true);
      expect(await load("images/missing.png")).toBeNull();
    });
  }

  it("a file beside the table wins over the archive; a folder-less zip is read below its own name", async () => {
    const store = new FsStore(mkdtempSync(join(tmpdir(), "recipe-zip-")));
    await store.write("src/images/q1-0.png", B);
    await store.write(
      "src/images.zip",
      await zipOf({ "q1-0.png": { data: A, compress: true }, "q3-0.png": { data: A, compress: false } }),
    );
    const load = (ref: string) => loadSourceImage(ctxOf(store), source, "src/t.parquet", ref);

    expect(Buffer.from((await load("images/q1-0.png"))!).equals(Buffer.from(B))).toBe(true);
    expect(Buffer.from((await load("images/q3-0.png"))!).equals(Buffer.from(A))).toBe(true);
  });

  it("lists an archive's members from its central directory", async () => {
    const store = new FsStore(mkdtempSync(join(tmpdir(), "recipe-zip-")));
    await store.write(
      "a.zip",
      await zipOf({ "x/1.png": { data: A, compress: true }, "x/2.png": { data: B, compress: true } }),
    );
    const archive = (await ZipArchive.open(store, "a.zip"))!;
    expect(archive.size).toBe(2);
    expect(archive.has("x/2.png")).toBe(true);
    expect(await ZipArchive.open(store, "none.zip")).toBeNull();
    archive.close();
  });
});
