/**
 * A probe of an OpenAI-compatible endpoint before any work is sent to it: `GET <base>/models`. A
 * connection refused, a DNS failure, a timeout, a refused API key or a model the endpoint does not
 * serve is reported at once, naming the endpoint and the cause, instead of surfacing hours later as
 * retries and a step timeout. An endpoint without `/models` (404) or with a passing 5xx is not judged
 * here: the requests themselves will tell.
 */

export type ProbeResult =
  | { ok: true; models: string[] | null }
  | { ok: false; kind: "unreachable" | "auth" | "model"; message: string };

const CAUSES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found (DNS)",
  EAI_AGAIN: "host not found (DNS, temporary)",
  ECONNRESET: "connection reset",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  CERT_HAS_EXPIRED: "TLS certificate expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed TLS certificate",
};

function causeOf(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "no answer (timed out)";
  const code = e?.cause?.code;
  if (code) return `${CAUSES[code] ?? code} (${code})`;
  return e?.cause?.message ?? e?.message ?? String(err);
}

export async function probeEndpoint(options: {
  baseURL: string;
  apiKey?: string;
  model?: string;
  timeoutMs?: number;
}): Promise<ProbeResult> {
  const url = `${options.baseURL.replace(/\/+$/, "")}/models`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { authorization: `Bearer ${options.apiKey ?? "none"}` },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (err) {
    return {
      ok: false,
      kind: "unreachable",
      message: `cannot reach the endpoint ${options.baseURL}: ${causeOf(err)}`,
    };
  }
  if (res.status === 401 || res.status === 403) {
    return {
      ok: false,
      kind: "auth",
      message: `the endpoint ${options.baseURL} refused the API key (HTTP ${res.status}): check the key you pass`,
    };
  }
  if (!res.ok) return { ok: true, models: null };
  let models: string[] | null = null;
  try {
    const body = (await res.json()) as { data?: { id?: unknown }[] };
    models = Array.isArray(body.data) ? body.data.map((m) => String(m.id)) : null;
  } catch {
    models = null;
  }
  if (options.model && models && models.length > 0 && !models.includes(options.model)) {
    return {
      ok: false,
      kind: "model",
      message: `the endpoint ${options.baseURL} does not serve the model ${options.model} (it serves: ${models.slice(0, 10).join(", ")})`,
    };
  }
  return { ok: true, models };
}
