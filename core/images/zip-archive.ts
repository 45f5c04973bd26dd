/**
 * Images inside a zip beside a source table (ViRL39K's `images.zip`, LLaVA-CoT's joined `image.zip`),
 * read where they are: the central directory once, then each image by range reads of the ByteStore,
 * so a 100 GB archive in S3 is never downloaded or unpacked. yauzl does the zip format (ZIP64
 * included); this module only gives it ranged reads.
 */
import { Readable } from "node:stream";
import yauzl from "yauzl";
import type { ByteStore } from "../shards/byte-store.ts";

class StoreReader extends yauzl.RandomAccessReader {
  constructor(
    private readonly store: ByteStore,
    private readonly key: string,
  ) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const { store, key } = this;
    return Readable.from(
      (async function* () {
        if (end > start) yield Buffer.from(await store.readRange(key, start, end));
      })(),
    );
  }
}

export class ZipArchive {
  private constructor(
    private readonly zip: yauzl.ZipFile,
    private readonly entries: Map<string, yauzl.Entry>,
  ) {}

  /** Opens an archive by reading its central directory; null when the object is missing. */
  static async open(store: ByteStore, key: string): Promise<ZipArchive | null> {
    const size = await store.size(key);
    if (size === null) return null;
    const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
      yauzl.fromRandomAccessReader(
        new StoreReader(store, key),
        size,
        { lazyEntries: true, autoClose: false, decodeStrings: true },
        (err, z) => (err ? reject(err) : resolve(z!)),
      ),
    );
    const entries = new Map<string, yauzl.Entry>();
    await new Promise<void>((resolve, reject) => {
      zip.on("entry", (e: yauzl.Entry) => {
        if (!e.fileName.endsWith("/")) entries.set(e.fileName, e);
        zip.readEntry();
      });
      zip.once("end", () => resolve());
      zip.once("error", reject);
      zip.readEntry();
    });
    return new ZipArchive(zip, entries);
  }

  get size(): number {
    return this.entries.size;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The bytes of one member (decompressed, CRC checked by yauzl); null when there is none. */
  async read(name: string): Promise<Uint8Array | null> {
    const entry = this.entries.get(name);
    if (!entry) return null;
    const stream = await new Promise<Readable>((resolve, reject) =>
      this.zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s!))),
    );
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  }

  close(): void {
    this.zip.close();
  }
}
