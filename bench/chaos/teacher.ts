/**
 * The chaos harness's teacher: an OpenAI-compatible chat server with latency. Sample questions are
 * answered as the bundled replay teacher answers them (from its recordings, chosen by the request's
 * seed), generated questions ("Chaos question N: ...") by computing the answer, wrong for a seeded
 * share of samples so verification and the RL band have something to reject. Every answer is a
 * function of the request alone, so two runs ask for and get the same bytes.
 *
 * What it injects (at `rate`, decided by the seed, the request and how often it was asked): 429 with
 * Retry-After, 500, a connection reset before the answer, and an answer cut short mid-body. It counts
 * every request and every answer delivered per distinct request (model, seed and messages): an answer
 * delivered twice for the same request is a request asked again. `hold()` stops answering (kills
 * happen while it holds, once every delivered answer is in the generation cache).
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { uniform } from "../../local/faults.ts";
import { startReplayServer } from "../../local/replay-server.ts";

export interface ChaosTeacher {
  url: string;
  /** Requests received in this teacher's life (all attempts). */
  readonly requests: number;
  /** Distinct requests answered at least once. */
  readonly answeredDistinct: number;
  /** Answers delivered in total. */
  readonly answered: number;
  /**
   * Requests past the hold (let through before `hold()`, or after `release()`) not yet done with:
   * answered, refused, reset or dropped. While one is, an answer may still be counted.
   */
  readonly inFlight: number;
  /**
   * Whether the teacher is quiet: holding, nothing past the hold in flight, and every answer it
   * delivered is among the `cached` generation-cache entries. Only then may a kill land without
   * losing an answer it already gave (a request past the hold when `hold()` was called is answered
   * afterwards: checking the cache before it was, a kill then lost that answer and the next attempt
   * asked again).
   */
  quiet(cached: number): boolean;
  /** Requests answered more than once, with how often. */
  askedAgain(): { request: string; answers: number }[];
  faults: Record<string, number>;
  /** Called for each request received (before it is answered); may hold it. */
  onRequest: ((n: number) => void) | null;
  hold(): void;
  release(): void;
  setFaultRate(rate: number, seed: number): void;
  /** Forgets every count (the next run is counted on its own). */
  reset(): void;
  close(): Promise<void>;
}

const GENERATED = /^Chaos question (\d+): what is (\d+) times (\d+) plus (\d+)\?/;

export function generatedAnswer(a: number, b: number, c: number): string {
  return String(a * b + c);
}

export async function startChaosTeacher(latencyMs: number): Promise<ChaosTeacher> {
  const replay = await startReplayServer();
  let requests = 0;
  let answered = 0;
  const answers = new Map<string, number>();
  const asked = new Map<string, number>();
  const faults: Record<string, number> = {};
  let rate = 0;
  let seed = 0;
  let holding = false;
  let inFlight = 0;
  const held: (() => void)[] = [];

  const answerFor = async (body: string, payload: Payload): Promise<string> => {
    const user = payload.messages.find((m) => m.role === "user");
    const text = Array.isArray(user?.content)
      ? (user.content as { type: string; text?: string }[]).map((p) => p.text ?? "").join("\n")
      : String(user?.content ?? "");
    const m = GENERATED.exec(text);
    if (!m) {
      const res = await fetch(`${replay.url}/chat/completions`, { method: "POST", body });
      return await res.text();
    }
    const [, id, a, b, c] = m.map(Number) as number[];
    const right = generatedAnswer(a!, b!, c!);
    // A fixed share of samples is wrong, so pass rates vary between questions.
    const wrong = uniform(0, "wrong", id!, payload.seed ?? 0) < (id! % 4) / 5;
    const answer = wrong ? String(Number(right) + 1) : right;
    const content = `<think>Question ${id}: ${a} times ${b} is ${a! * b!}; adding ${c} gives ${Number(right)}. Checking the product and the sum once more gives the same result.</think><answer>${answer}</answer>`;
    return JSON.stringify({
      id: `chaos-${id}-${payload.seed ?? 0}`,
      object: "chat.completion",
      created: 0,
      model: payload.model,
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
      usage: { prompt_tokens: Math.ceil(text.length / 4), completion_tokens: Math.ceil(content.length / 4) },
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: string) => {
    if (req.method === "GET" && req.url?.endsWith("/models")) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: [] }));
      return;
    }
    if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
      res.writeHead(404).end();
      return;
    }
    requests += 1;
    const payload = JSON.parse(body) as Payload;
    const request = `${payload.model} ${payload.seed ?? ""} ${createHash("sha256").update(JSON.stringify(payload.messages)).digest("hex").slice(0, 24)}`;
    const n = asked.get(request) ?? 0;
    asked.set(request, n + 1);
    chaosTeacher.onRequest?.(requests);
    if (holding) await new Promise<void>((r) => held.push(r));
    // Its asker was killed while it was held (a socket its peer closed may not read as destroyed yet).
    if (req.socket.destroyed || !req.socket.writable || req.socket.readableEnded) return;
    // Past the hold: in flight until the response closes (after its answer is counted, or dropped).
    inFlight += 1;
    res.once("close", () => {
      inFlight -= 1;
    });
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
    // At most two faults in a row for one request: the worker's retries get through.
    const u = n < 2 ? uniform(seed, "teacher", request, n) : 1;
    const kind =
      u < rate ? (["429", "500", "reset", "truncated"] as const)[Math.floor((u / rate) * 4)] : null;
    if (kind) faults[`teacher-${kind}`] = (faults[`teacher-${kind}`] ?? 0) + 1;
    if (kind === "429") {
      res.writeHead(429, { "content-type": "application/json", "retry-after": "0" });
      res.end(JSON.stringify({ error: { message: "Rate limit reached", type: "rate_limit" } }));
      return;
    }
    if (kind === "500") {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "The server had an error", type: "server_error" } }));
      return;
    }
    if (kind === "reset") {
      req.socket.destroy();
      return;
    }
    const text = await answerFor(body, payload);
    // Its asker left while it was answered (killed): what is written now would reach no one.
    if (req.socket.destroyed || req.socket.readableEnded) return;
    if (kind === "truncated") {
      const bytes = Buffer.from(text);
      res.writeHead(200, { "content-type": "application/json", "content-length": String(bytes.length) });
      res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => req.socket.destroy());
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(text, () => {
      answered += 1;
      answers.set(request, (answers.get(request) ?? 0) + 1);
    });
  };

  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      handle(req, res, body).catch((err) => {
        if (!res.headersSent) res.writeHead(500).end(String(err));
      });
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const chaosTeacher: ChaosTeacher = {
    url: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return requests;
    },
    get answeredDistinct() {
      return answers.size;
    },
    get answered() {
      return answered;
    },
    get inFlight() {
      return inFlight;
    },
    quiet: (cached) => holding && inFlight === 0 && cached >= answers.size,
    askedAgain: () => [...answers].filter(([, k]) => k > 1).map(([request, k]) => ({ request, answers: k })),
    faults,
    onRequest: null,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const r of held.splice(0)) r();
    },
    reset() {
      requests = 0;
      answered = 0;
      answers.clear();
      asked.clear();
      for (const k of Object.keys(faults)) delete faults[k];
    },
    setFaultRate(r, s) {
      rate = r;
      seed = s;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const release of held.splice(0)) release();
        server.closeAllConnections();
        server.close(() => r());
        void replay.close();
      }),
  };
  return chaosTeacher;
}

interface Payload {
  model: string;
  seed?: number;
  messages: { role: string; content: unknown }[];
}
