/**
 * The examples report.html shows beside its counts, so that a person can judge the data: a few
 * rejects per reason (what was asked, what was extracted, the gold answer, the end of the response)
 * and a few kept traces per domain with their images. Reads are bounded: a few shards per stage, a
 * few images, whatever the run's size.
 */
import { sniffType } from "../images/sniff.ts";
import { keys, STAGES } from "../layout/index.ts";
import { type ByteStore, listAll } from "../shards/byte-store.ts";
import { readShard } from "../shards/jsonl.ts";

export interface RejectExample {
  stage: string;
  /** The question it is about, when the reject names one (its source line and images are looked up). */
  questionId?: string;
  reason: string;
  origin: string;
  detail?: string;
  question?: string;
  extracted?: string;
  gold?: string;
  responseEnd?: string;
}

export interface KeptExample {
  questionId: string;
  /** What the verifier said of the kept response. */
  extracted?: string;
  verdict?: string;
  domain: string;
  source: string;
  origin: string;
  question: string;
  images: string[];
  response: string;
}

/** Shards read per stage at most, looking for examples. */
const MAX_SHARDS = 6;
/** Largest image embedded in the report (bigger ones are named by hash). */
export const MAX_EMBEDDED_IMAGE_BYTES = 256 * 1024;

const clip = (t: unknown, n: number): string | undefined => {
  if (typeof t !== "string") return t === undefined || t === null ? undefined : clip(JSON.stringify(t), n);
  return t.length > n ? `${t.slice(0, n)}…` : t;
};

/** Up to `perReason` rejects for each stage and reason, in shard order. */
export async function rejectExamples(
  store: ByteStore,
  runId: string,
  perReason = 3,
): Promise<RejectExample[]> {
  const out: RejectExample[] = [];
  const seen = new Map<string, number>();
  for (const stage of STAGES) {
    if (stage === "validate-config") continue;
    const files = (await listAll(store, `${keys.stagePrefix(runId, stage)}rejects/`)).slice(0, MAX_SHARDS);
    for (const file of files) {
      for await (const line of readShard(store, file)) {
        if (!line.ok) continue;
        const r = line.value as {
          questionId?: string;
          reason?: string;
          origin?: string;
          detail?: string;
          record?: {
            question?: unknown;
            answer?: unknown;
            verdict?: { extracted?: unknown };
            example?: { question?: string; gold?: string; responseEnd?: string };
          };
        };
        const reason = r.reason ?? "unknown";
        const k = `${stage}\u0000${reason}`;
        if ((seen.get(k) ?? 0) >= perReason) continue;
        seen.set(k, (seen.get(k) ?? 0) + 1);
        const ex = r.record?.example;
        out.push({
          stage,
          ...(r.questionId ? { questionId: r.questionId } : {}),
          reason,
          origin: r.origin ?? "",
          detail: clip(r.detail, 300),
          question: clip(ex?.question ?? r.record?.question, 240),
          extracted: clip(r.record?.verdict?.extracted, 120),
          gold: clip(ex?.gold ?? r.record?.answer, 120),
          responseEnd: ex?.responseEnd,
        });
      }
    }
  }
  return out;
}

/** Up to `perDomain` kept SFT traces per domain, from select-and-mix's output (what the writer writes). */
export async function keptExamples(store: ByteStore, runId: string, perDomain = 2): Promise<KeptExample[]> {
  const out: KeptExample[] = [];
  const count = new Map<string, number>();
  // One trace per question: two kept traces of the same question say nothing more.
  const shown = new Set<string>();
  const files = (await listAll(store, keys.shardsPrefix(runId, "select-and-mix"))).slice(0, MAX_SHARDS);
  for (const file of files) {
    let n = 0;
    for await (const line of readShard(store, file)) {
      n += 1;
      if (!line.ok) continue;
      const t = line.value as {
        questionId?: string;
        verdict?: { extracted?: string; reason?: string };
        domain?: string;
        source?: string;
        response?: string;
        messages?: { role: string; content: string | { type: string; text?: string; sha256?: string }[] }[];
      };
      const domain = t.domain ?? "unknown";
      if ((count.get(domain) ?? 0) >= perDomain || shown.has(t.questionId ?? "")) continue;
      count.set(domain, (count.get(domain) ?? 0) + 1);
      shown.add(t.questionId ?? "");
      const user = t.messages?.find((m) => m.role === "user")?.content ?? "";
      const parts = typeof user === "string" ? [{ type: "text", text: user }] : user;
      out.push({
        questionId: t.questionId ?? "",
        ...(t.verdict?.extracted !== undefined ? { extracted: clip(t.verdict.extracted, 120) } : {}),
        ...(t.verdict?.reason ? { verdict: t.verdict.reason } : {}),
        domain,
        source: t.source ?? "",
        origin: `${file}:${n}`,
        question:
          clip(
            parts
              .map((p) => p.text ?? "")
              .join(" ")
              .trim(),
            600,
          ) ?? "",
        images: parts.filter((p) => p.type === "image" && p.sha256).map((p) => p.sha256!),
        response: clip(t.response, 1500) ?? "",
      });
    }
  }
  return out.sort((a, b) => a.domain.localeCompare(b.domain));
}

/** An image as a data: URI for the one-file report, or null when it is too big or not a web format. */
export async function imageDataUri(store: ByteStore, sha256: string): Promise<string | null> {
  const size = await store.size(keys.image(sha256));
  if (size === null || size > MAX_EMBEDDED_IMAGE_BYTES) return null;
  const bytes = await store.readBytes(keys.image(sha256));
  const type = bytes ? sniffType(bytes) : null;
  return bytes && type ? `data:${type};base64,${bytes.toString("base64")}` : null;
}
