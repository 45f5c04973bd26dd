/**
 * The bundled replay teacher: an OpenAI-compatible chat server that answers the sample questions from
 * recorded responses (examples/sample/replay.jsonl). The response for a request is chosen by its seed,
 * so each sample of a question gets its own recorded answer and reruns are identical. It exists to run
 * the pipeline without a GPU; its answers are not for training, and every output says so.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { normalizeQuestionText } from "../core/records/index.ts";
import { PROJECT_ROOT } from "../infra/root.ts";

export interface ReplayServer {
  url: string;
  requests: number;
  /** Requests for questions with no recording (answered with a placeholder). */
  misses: number;
  /** Requests being held by `hold` (tests). */
  held: number;
  /** Answers held requests and stops holding. */
  release(): void;
  close(): Promise<void>;
}

/** Test hook: after `count` answers for `model`, hold further requests for it until release(). */
export interface Hold {
  model: string;
  count: number;
}

export interface Recording {
  question: string;
  responses: { content: string; finish_reason: string }[];
}

export const REPLAY_FILE = join(PROJECT_ROOT, "examples", "sample", "replay.jsonl");

/** The recordings of a replay file, by normalized question. */
export function loadRecordings(file = REPLAY_FILE): Map<string, Recording> {
  const recordings = new Map<string, Recording>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as Recording;
    recordings.set(normalizeQuestionText(r.question), r);
  }
  return recordings;
}

/** The recording that answers a prompt's text (its first line, or a question it starts with). */
export function findRecording(recordings: Map<string, Recording>, text: string): Recording | undefined {
  const question = normalizeQuestionText(text.split("\n")[0] ?? "");
  return (
    recordings.get(question) ??
    [...recordings.values()].find((r) =>
      normalizeQuestionText(text).startsWith(normalizeQuestionText(r.question)),
    )
  );
}

const UNKNOWN = {
  content: "<think>There is no recorded answer for this question.</think><answer>no recording</answer>",
  finish_reason: "stop",
};

/**
 * Starts the server over a replay file's recordings or, when `made` is given, over those recordings
 * instead (the synthetic teacher's, core/generate/synthetic.ts).
 */
export async function startReplayServer(
  file = REPLAY_FILE,
  delayMs = 0,
  hold?: Hold,
  made?: readonly Recording[],
): Promise<ReplayServer> {
  const recordings = made
    ? new Map(made.map((r) => [normalizeQuestionText(r.question), r] as const))
    : loadRecordings(file);
  const state = {
    requests: 0,
    misses: 0,
    answered: new Map<string, number>(),
    held: [] as (() => void)[],
    holding: !!hold,
  };
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", async () => {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
        res
          .writeHead(404, { "content-type": "application/json" })
          .end(JSON.stringify({ error: { message: "not found" } }));
        return;
      }
      state.requests++;
      let payload: { model?: string; seed?: number; messages?: { role: string; content: unknown }[] };
      try {
        payload = JSON.parse(body);
      } catch {
        res
          .writeHead(400, { "content-type": "application/json" })
          .end(JSON.stringify({ error: { message: "invalid JSON" } }));
        return;
      }
      const model = payload.model ?? "replay";
      if (hold && state.holding && model === hold.model && (state.answered.get(model) ?? 0) >= hold.count) {
        await new Promise<void>((r) => state.held.push(r));
      }
      state.answered.set(model, (state.answered.get(model) ?? 0) + 1);
      const user = payload.messages?.find((m) => m.role === "user");
      const text = Array.isArray(user?.content)
        ? (user.content as { type: string; text?: string }[])
            .filter((p) => p.type === "text")
            .map((p) => p.text ?? "")
            .join("\n")
        : String(user?.content ?? "");
      const rec = findRecording(recordings, text);
      if (!rec) state.misses++;
      const choice = rec ? rec.responses[Math.abs(payload.seed ?? 0) % rec.responses.length]! : UNKNOWN;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: `replay-${state.requests}`,
          object: "chat.completion",
          created: 0,
          model: payload.model ?? "replay",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: choice.content },
              finish_reason: choice.finish_reason,
            },
          ],
          usage: {
            prompt_tokens: Math.ceil(text.length / 4),
            completion_tokens: Math.ceil(choice.content.length / 4),
            total_tokens: 0,
          },
        }),
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return state.requests;
    },
    get misses() {
      return state.misses;
    },
    get held() {
      return state.held.length;
    },
    release() {
      state.holding = false;
      for (const r of state.held.splice(0)) r();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const release of state.held.splice(0)) release();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
