/**
 * Parquet over a ByteStore: rows are read with hyparquet through range reads (footer, then one row
 * group at a time), so a large file is never loaded whole.
 */
import { type AsyncBuffer, parquetMetadataAsync, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { type ByteStore, NotFoundError } from "./byte-store.ts";

export async function storeAsyncBuffer(store: ByteStore, key: string): Promise<AsyncBuffer> {
  const byteLength = await store.size(key);
  if (byteLength === null) throw new NotFoundError(key);
  return {
    byteLength,
    async slice(start: number, end?: number) {
      const bytes = await store.readRange(key, start, end ?? byteLength);
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    },
  };
}

/** The row count of a Parquet file, from its footer only. */
export async function parquetRowCount(store: ByteStore, key: string): Promise<number> {
  const metadata = await parquetMetadataAsync(await storeAsyncBuffer(store, key));
  return Number(metadata.num_rows);
}

/** Yields the rows of a Parquet file, one row group at a time. */
export async function* readParquetRows(
  store: ByteStore,
  key: string,
): AsyncGenerator<Record<string, unknown>> {
  const file = await storeAsyncBuffer(store, key);
  const metadata = await parquetMetadataAsync(file);
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    // utf8: false: only columns annotated as strings are text. By default hyparquet decodes every
    // BYTE_ARRAY as UTF-8, which turned the `bytes` of Hugging Face Image structs into mangled text.
    const rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd, compressors, utf8: false });
    for (const row of rows) yield row as Record<string, unknown>;
    rowStart = rowEnd;
  }
}
