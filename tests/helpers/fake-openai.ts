/**
 * A local OpenAI-compatible chat server for tests, on a free loopback port, with injected faults:
 * 429 with Retry-After, 500s, slow responses, connection resets. It counts every request and every
 * successful answer by the request's seed (one seed per question sample).
 */
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Faults {
  /** Per seed, how many first attempts fail, and how. */
  failFirst?: (seed: number) => { times: number; kind: "401" | "429" | "500" | "reset" | "slow" } | null;
  latencyMs?: number;
  answer?: (userText: string, seed: number) => string;
  /** After this many answers, hold every further request unanswered until release() (kill tests). */
  holdAfter?: number;
}

export interface FakeServer {
  url: string;
  requests: number[];
  successes: Map<number, number>;
  /** Answers per distinct request (seed and messages): a request answered twice was asked again. */
  answersPerRequest: Map<string, number>;
  /** Total answers sent. */
  readonly answered: number;
  /**
   * Stops holding requests on new connections. Requests on connections already open stay unanswered:
   * in kill tests their client is gone, though a request may still be unread in its socket.
   */
  release(): void;
  close(): Promise<void>;
}

export async function startFakeOpenAI(faults: Faults = {}): Promise<FakeServer> {
  const attempts = new Map<number, number>();
  const requests: number[] = [];
  const successes = new Map<number, number>();
  const answersPerRequest = new Map<string, number>();
  let answered = 0;
  let holding = faults.holdAfter !== undefined;
  // Connections opened while holding stay held after release(): their client was killed, and a request
  // still unread in its socket must not be answered (and counted) once the test releases the hold.
  const heldConnections = new WeakSet<object>();
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", async () => {
      if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
        res.writeHead(404).end();
        return;
      }
      const payload = JSON.parse(body) as {
        seed?: number;
        model: string;
        messages: { role: string; content: unknown }[];
      };
      const seed = payload.seed ?? -1;
      requests.push(seed);
      const n = (attempts.get(seed) ?? 0) + 1;
      attempts.set(seed, n);
      const fault = faults.failFirst?.(seed);
      if (fault && n <= fault.times) {
        if (fault.kind === "429") {
          res.writeHead(429, { "content-type": "application/json", "retry-after": "0" });
          res.end(JSON.stringify({ error: { message: "slow down", type: "rate_limit" } }));
          return;
        }
        if (fault.kind === "401") {
          res.writeHead(401, { "content-type": "application/json" }).end(
            JSON.stringify({
              error: { message: "Incorrect API key provided", type: "invalid_request_error" },
            }),
          );
          return;
        }
        if (fault.kind === "500") {
          res
            .writeHead(500, { "content-type": "application/json" })
            .end(JSON.stringify({ error: { message: "boom" } }));
          return;
        }
        if (fault.kind === "reset") {
          req.socket.destroy();
          return;
        }
        await new Promise((r) => setTimeout(r, 400));
      }
      if (heldConnections.has(req.socket) || (holding && answered >= faults.holdAfter!)) {
        heldConnections.add(req.socket);
        return; // held: never answered
      }
      if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
      const user = payload.messages.find((m) => m.role === "user");
      const text = Array.isArray(user?.content)
        ? (user.content as { type: string; text?: string }[]).map((p) => p.text ?? "").join(" ")
        : String(user?.content ?? "");
      const content =
        faults.answer?.(text, seed) ??
        `<think>Thinking about: ${text.slice(0, 40)}</think><answer>42</answer>`;
      successes.set(seed, (successes.get(seed) ?? 0) + 1);
      const request = `${seed}:${createHash("sha256").update(JSON.stringify(payload.messages)).digest("hex")}`;
      answersPerRequest.set(request, (answersPerRequest.get(request) ?? 0) + 1);
      answered += 1;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id: `chatcmpl-${seed}-${n}`,
          object: "chat.completion",
          created: 0,
          model: payload.model,
          choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
          usage: { prompt_tokens: 12, completion_tokens: content.length, total_tokens: 12 + content.length },
        }),
      );
    });
  });
  const openSockets = new Set<object>();
  server.on("connection", (socket) => {
    openSockets.add(socket);
    socket.once("close", () => openSockets.delete(socket));
  });
  // undici reuses a connection only when the server's keep-alive hint is well above its 2 s threshold.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    successes,
    answersPerRequest,
    get answered() {
      return answered;
    },
    release() {
      holding = false;
      for (const socket of openSockets) heldConnections.add(socket);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
