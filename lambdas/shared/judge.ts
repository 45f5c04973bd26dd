/**
 * The LLM judge: an OpenAI-compatible chat call with the strict 1/0 prompt kept in
 * lambdas/shared/judge-prompt.md. Used for answers the rule verifier returns as `undecided`.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import type { RunConfig } from "../../core/config/schema.ts";
import type { Judge } from "../../core/stages/verify-traces.ts";

const PROMPT_FILE = join(dirname(fileURLToPath(import.meta.url)), "judge-prompt.md");

export function judgePrompt(): string {
  return readFileSync(PROMPT_FILE, "utf8");
}

export function renderJudgeMessages(
  template: string,
  input: { question: string; gold: string; prediction: string },
) {
  const user = template
    .replace("{{question}}", input.question)
    .replace("{{gold}}", input.gold)
    .replace("{{prediction}}", input.prediction);
  return [{ role: "user" as const, content: user }];
}

/** Reads the judge's reply: exactly "1" or "0" (whitespace and a trailing period allowed). */
export function parseJudgeReply(text: string): boolean | null {
  const t = text.trim().replace(/\.$/, "");
  if (t === "1") return true;
  if (t === "0") return false;
  return null;
}

export function openAiJudge(
  config: RunConfig["verification"]["judge"],
  apiKey = process.env.RECIPE_JUDGE_API_KEY,
): Judge | undefined {
  const baseURL = config.endpoint?.url ?? process.env.RECIPE_JUDGE_URL;
  if (!baseURL) return undefined;
  const client = new OpenAI({ baseURL, apiKey: apiKey ?? "none", maxRetries: 3, timeout: 120_000 });
  const template = judgePrompt();
  return async (input) => {
    const res = await client.chat.completions.create({
      model: config.model,
      messages: renderJudgeMessages(template, input),
      max_tokens: config.maxTokens,
      temperature: 0,
    });
    const reply = res.choices[0]?.message?.content ?? "";
    const verdict = parseJudgeReply(reply);
    if (verdict === null)
      return { verdict: false, reason: `judge_unparseable: ${reply.slice(0, 40)}`, model: config.model };
    return { verdict, reason: verdict ? "judge_1" : "judge_0", model: config.model };
  };
}
