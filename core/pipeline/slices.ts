/** Question slices: what one `generate` array child (and its verify shard) works on. Kept small: the GPU worker imports it. */
import { InvariantError } from "../errors.ts";
import type { Question } from "../records/index.ts";
import type { ByteStore } from "../shards/byte-store.ts";
import { readShard } from "../shards/jsonl.ts";

/** One child of the `generate` array job: a slice of a dedup shard. */
export interface GenerateItem {
  shard: number;
  questions: string;
  skip: number;
  take: number;
}

export async function* questionsOf(store: ByteStore, key: string): AsyncGenerator<Question> {
  for await (const line of readShard(store, key)) {
    if (!line.ok) throw new InvariantError(`${key}:${line.line} is not JSON`);
    yield line.value as Question;
  }
}

export async function loadQuestionSlice(
  store: ByteStore,
  item: Pick<GenerateItem, "questions" | "skip" | "take">,
): Promise<Question[]> {
  const out: Question[] = [];
  let i = 0;
  for await (const q of questionsOf(store, item.questions)) {
    if (i++ < item.skip) continue;
    if (out.length >= item.take) break;
    out.push(q);
  }
  return out;
}
