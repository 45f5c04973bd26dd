// Stands in for `vllm serve` in entrypoint tests: the same CLI shape, /health, and an OpenAI chat
// endpoint on --port. Records its arguments to $FAKE_VLLM_ARGS and each chat request's body, one JSON a
// line, to $FAKE_VLLM_REQUESTS (tests/images validates them with vLLM's own request model).
import { appendFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";

const args = process.argv.slice(2);
if (process.env.FAKE_VLLM_ARGS) writeFileSync(process.env.FAKE_VLLM_ARGS, JSON.stringify(args));
const port = Number(args[args.indexOf("--port") + 1]);
const model = args[args.indexOf("--served-model-name") + 1];
const server = createServer((req, res) => {
  if (req.url === "/health") return res.writeHead(200).end();
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    const p = JSON.parse(body || "{}");
    if (process.env.FAKE_VLLM_REQUESTS && req.url?.endsWith("/chat/completions"))
      appendFileSync(process.env.FAKE_VLLM_REQUESTS, `${JSON.stringify(p)}\n`);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id: "x",
        object: "chat.completion",
        created: 0,
        model: p.model ?? model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: "<think>ok</think><answer>42</answer>" },
            finish_reason: "stop",
          },
        ],
        usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
      }),
    );
  });
});
setTimeout(() => server.listen(port, "127.0.0.1"), 300); // start-up takes a moment, as vLLM's does
process.on("SIGTERM", () => server.close(() => process.exit(0)));
