// The fake OpenAI-compatible server for bench/generate, in its own process: fixed latency per request.
import { startFakeOpenAI } from "../../tests/helpers/fake-openai.ts";

const server = await startFakeOpenAI({
  latencyMs: Number(process.argv[2] ?? 50),
  answer: () => "<think>ok</think><answer>42</answer>",
});
process.stdout.write(`${server.url}\n`);
process.on("SIGTERM", () => server.close().then(() => process.exit(0)));
