/**
 * `verify.mjs` in the evaluate image: the verifier service lmms-eval's `process_results` talks to
 * (batch-images/evaluate/tasks/recipe_eval_utils.py, through train-rl's recipe_reward.py glue), JSON
 * lines on stdin and stdout, one verdict per line, in order. Each answer is scored by core/verify
 * with the run's verification settings and, for what the rules leave undecided, the deployed judge
 * (core/eval/score.ts): the evaluate launcher passes the run's `verification` section in
 * RECIPE_EVAL_VERIFICATION; the judge's endpoint and key as the verify step reads them
 * (verification.judge.endpoint or RECIPE_JUDGE_URL; RECIPE_JUDGE_API_KEY or its secret's ARN).
 *
 *   verify.mjs --input - [--preset strict|recipe]
 */
import { createInterface } from "node:readline";
import { z } from "zod";
import { Verification } from "../../../core/config/schema.ts";
import { scoreAnswer } from "../../../core/eval/score.ts";
import { judgeApiKey, openAiJudge } from "../../../lambdas/shared/judge.ts";

const Line = z.looseObject({
  id: z.union([z.string(), z.number()]).optional(),
  response: z.string(),
  answer: z.string(),
  choices: z.array(z.string()).nullish(),
  answerType: z.string().nullish(),
  question: z.string().nullish(),
});

const raw = process.env.RECIPE_EVAL_VERIFICATION;
if (!raw) {
  console.error("RECIPE_EVAL_VERIFICATION (the run's verification settings, JSON) is not set");
  process.exit(3);
}
// The run's own section, with every default filled in as the run resolved it.
const verification = Verification.parse(JSON.parse(raw));
const args = process.argv.slice(2);
const presetArg = args.indexOf("--preset") >= 0 ? args[args.indexOf("--preset") + 1] : undefined;
if (presetArg === "strict" || presetArg === "recipe") verification.extractionPreset = presetArg;
const judge = verification.judge.enabled ? openAiJudge(verification.judge, await judgeApiKey()) : undefined;

for await (const line of createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })) {
  if (line.trim() === "") continue;
  let parsed: z.infer<typeof Line> | null = null;
  try {
    const r = Line.safeParse(JSON.parse(line));
    parsed = r.success ? r.data : null;
  } catch {
    parsed = null;
  }
  if (!parsed) {
    process.stdout.write(
      `${JSON.stringify({ id: null, correct: false, format: 0, reason: "invalid_input", extracted: null, judged: false })}\n`,
    );
    continue;
  }
  const v = await scoreAnswer(
    {
      response: parsed.response,
      answer: parsed.answer,
      choices: parsed.choices,
      answerType: parsed.answerType,
      question: parsed.question ?? "",
    },
    verification,
    judge,
  );
  process.stdout.write(`${JSON.stringify({ id: parsed.id ?? null, ...v })}\n`);
}
