/** The endpoint probe against real HTTP servers on loopback: each way an endpoint can be wrong. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { probeEndpoint } from "../../core/generate/probe.ts";

let server: Server | null = null;

async function serve(status: number, body: unknown): Promise<string> {
  server = createServer((_req, res) => {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}

afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = null;
});

describe("probeEndpoint", () => {
  it("names a refused connection", async () => {
    const url = await serve(200, {});
    await new Promise<void>((r) => server!.close(() => r()));
    server = null;

    const r = await probeEndpoint({ baseURL: url });

    expect(r).toEqual({
      ok: false,
      kind: "unreachable",
      message: `cannot reach the endpoint ${url}: connection refused (ECONNREFUSED)`,
    });
  });

  it("names a host that does not resolve", async () => {
    const r = await probeEndpoint({ baseURL: "http://no-such-host.invalid/v1" });

    expect(r).toMatchObject({ ok: false, kind: "unreachable" });
    expect(r.ok === false && r.message).toMatch(/host not found|EAI_AGAIN|ENOTFOUND|timed out/);
  });

  it("reports a refused API key", async () => {
    const url = await serve(401, { error: { message: "bad key" } });

    expect(await probeEndpoint({ baseURL: url, apiKey: "x" })).toMatchObject({ ok: false, kind: "auth" });
  });

  it("reports a model the endpoint does not serve, with the ones it does", async () => {
    const url = await serve(200, { data: [{ id: "Qwen/Qwen2.5-VL-7B-Instruct" }] });

    const r = await probeEndpoint({ baseURL: url, model: "Qwen/Qwen3-VL-235B-A22B-Instruct" });

    expect(r).toMatchObject({ ok: false, kind: "model" });
    expect(r.ok === false && r.message).toContain("it serves: Qwen/Qwen2.5-VL-7B-Instruct");
  });

  it("accepts a served model, and an endpoint without /models", async () => {
    const listed = await serve(200, { data: [{ id: "m" }] });
    expect(await probeEndpoint({ baseURL: listed, model: "m" })).toEqual({ ok: true, models: ["m"] });
    await new Promise<void>((r) => server!.close(() => r()));

    const bare = await serve(404, {});
    expect(await probeEndpoint({ baseURL: bare, model: "m" })).toEqual({ ok: true, models: null });
  });
});
