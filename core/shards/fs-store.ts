import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, statSync } from "node:fs";
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InvariantError } from "../errors.ts";
import { type Body, type ByteStore, NotFoundError, type ObjectVersion } from "./byte-store.ts";

const TMP_MARK = ".tmp-";

/** A ByteStore over a local directory. Writes go to a temp file in the same folder, then rename. */
export class FsStore implements ByteStore {
  readonly root: string;
  readonly location: string;
  private readonly madeDirs = new Set<string>();

  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.madeDirs.add(dir);
  }

  constructor(root: string) {
    this.root = resolve(root);
    this.location = `file://${this.root}`;
  }

  private path(key: string): string {
    if (key.length === 0 || key.startsWith("/") || key.split("/").includes("..") || key.includes(TMP_MARK)) {
      throw new InvariantError(`bad key: ${JSON.stringify(key)}`);
    }
    return join(this.root, ...key.split("/"));
  }

  private tempPath(final: string): string {
    return `${final}${TMP_MARK}${process.pid}-${randomBytes(6).toString("hex")}`;
  }

  async read(key: string): Promise<Readable> {
    const p = this.path(key);
    try {
      await stat(p);
    } catch {
      throw new NotFoundError(key);
    }
    return createReadStream(p);
  }

  async readBytes(key: string): Promise<Buffer | null> {
    // A missing key is a normal answer (cache probes): check without paying for an exception.
    if (!statSync(this.path(key), { throwIfNoEntry: false })) return null;
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  }

  async write(key: string, body: Body): Promise<void> {
    const final = this.path(key);
    await this.ensureDir(dirname(final));
    const tmp = this.tempPath(final);
    try {
      if (typeof body === "string" || body instanceof Uint8Array) await writeFile(tmp, body);
      else await pipeline(body, createWriteStream(tmp));
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async writeIfAbsent(key: string, body: Uint8Array | string): Promise<boolean> {
    const final = this.path(key);
    await this.ensureDir(dirname(final));
    const tmp = this.tempPath(final);
    await writeFile(tmp, body);
    try {
      await link(tmp, final); // link() fails with EEXIST instead of replacing: an atomic create
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  async exists(key: string): Promise<boolean> {
    return statSync(this.path(key), { throwIfNoEntry: false })?.isFile() ?? false;
  }

  async size(key: string): Promise<number | null> {
    try {
      const st = await stat(this.path(key));
      return st.isFile() ? st.size : null;
    } catch {
      return null;
    }
  }

  async readRange(key: string, start: number, end: number): Promise<Buffer> {
    let handle: import("node:fs/promises").FileHandle;
    try {
      handle = await open(this.path(key), "r");
    } catch {
      throw new NotFoundError(key);
    }
    try {
      const buffer = Buffer.alloc(Math.max(0, end - start));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  /** Local files are identified by a content hash (a local file has no ETag). */
  async *listDetailed(prefix: string): AsyncIterable<ObjectVersion> {
    for await (const key of this.list(prefix)) {
      const hash = createHash("sha256");
      let size = 0;
      for await (const chunk of createReadStream(this.path(key)) as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
      }
      yield { key, size, etag: `sha256:${hash.digest("hex")}` };
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    const all: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: import("node:fs").Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (e.isFile() && !e.name.includes(TMP_MARK))
          all.push(relative(this.root, full).split(sep).join("/"));
      }
    };
    // Walk only the deepest folder the prefix names, not the whole store.
    const folder = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    await walk(folder ? join(this.root, ...folder.split("/")) : this.root);
    all.sort();
    for (const key of all) if (key.startsWith(prefix)) yield key;
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}
