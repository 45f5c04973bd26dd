/**
 * The LLM judge: an OpenAI-compatible chat call with the strict 1/0 prompt kept in
 * lambdas/shared/judge-prompt.md. Used for answers the rule verifier returns as `undecided`.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { keyedEndpointProblem } from "../../core/config/deploy.ts";
import type { RunConfig } from "../../core/config/schema.ts";
import { ConfigError } from "../../core/errors.ts";
import type { Judge } from "../../core/stages/verify-traces.ts";
import { type JudgeInput, renderJudgePrompt } from "../../core/verify/judge-prompt.ts";

const PROMPT_FILE = join(dirname(fileURLToPath(import.meta.url)), "judge-prompt.md");

export function judgePrompt(): string {
  return readFileSync(PROMPT_FILE, "utf8");
}

/** The judge's chat messages: the template with every field fenced as data (core/verify/judge-prompt.ts). */
export function renderJudgeMessages(template: string, input: JudgeInput) {
  return [{ role: "user" as const, content: renderJudgePrompt(template, input) }];
}

let secretKey: Promise<string | undefined> | undefined;

/**
 * The judge's API key: RECIPE_JUDGE_API_KEY (the local runtime), or the secret the stack names in
 * RECIPE_JUDGE_API_KEY_SECRET_ARN (deploy context `judgeApiKeySecretArn`), read once per container.
 */
export function judgeApiKey(): Promise<string | undefined> {
  if (process.env.RECIPE_JUDGE_API_KEY) return Promise.resolve(process.env.RECIPE_JUDGE_API_KEY);
  const arn = process.env.RECIPE_JUDGE_API_KEY_SECRET_ARN;
  if (!arn) return Promise.resolve(undefined);
  secretKey ??= new SecretsManagerClient({})
    .send(new GetSecretValueCommand({ SecretId: arn }))
    .then((r) => r.SecretString)
    .catch((err) => {
      secretKey = undefined; // a later invocation tries again
      throw err;
    });
  return secretKey;
}

/** Reads the judge's reply: exactly "1" or "0" (whitespace and a trailing period allowed). */
export function parseJudgeReply(text: string): boolean | null {
  const t = text.trim().replace(/\.$/, "");
  if (t === "1") return true;
  if (t === "0") return false;
  return null;
}

/**
 * The judge over an OpenAI-compatible `/chat/completions` endpoint. A plain fetch rather than the
 * openai client: the verify-shard Lambda bundle must stay under 1 MB (the client is ~150 KB).
 */
export function openAiJudge(
  config: RunConfig["verification"]["judge"],
  apiKey = process.env.RECIPE_JUDGE_API_KEY,
): Judge | undefined {
  const baseURL = config.endpoint?.url ?? process.env.RECIPE_JUDGE_URL;
  if (!baseURL) return undefined;
  // The deploy bound the judge's key to one https host (judgeEndpointHost): validate-config refuses a
  // run.json pointing elsewhere; this refuses again here, before the key could leave.
  const bound = process.env.RECIPE_JUDGE_KEY_HOST;
  if (bound && apiKey !== undefined) {
    const problem = keyedEndpointProblem(
      "$.verification.judge.endpoint.url",
      baseURL,
      bound,
      "judgeEndpointHost",
    );
    if (problem) throw new ConfigError([problem]);
  }
  const template = judgePrompt();
  const url = `${baseURL.replace(/\/$/, "")}/chat/completions`;
  return async (input) => {
    let lastError: unknown = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${apiKey ?? "none"}` },
          body: JSON.stringify({
            model: config.model,
            messages: renderJudgeMessages(template, input),
            max_tokens: config.maxTokens,
            temperature: 0,
          }),
          signal: AbortSignal.timeout(120_000),
        });
        if (res.status === 429 || res.status >= 500) throw new Error(`judge endpoint answered ${res.status}`);
        if (!res.ok) return { verdict: false, reason: `judge_http_${res.status}`, model: config.model };
        const body = (await res.json()) as { choices?: { message?: { content?: string } }[] };
        const reply = body.choices?.[0]?.message?.content ?? "";
        const verdict = parseJudgeReply(reply);
        if (verdict === null)
          return { verdict: false, reason: `judge_unparseable: ${reply.slice(0, 40)}`, model: config.model };
        return { verdict, reason: verdict ? "judge_1" : "judge_0", model: config.model };
      } catch (err) {
        lastError = err;
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      }
    }
    throw lastError;
  };
}
