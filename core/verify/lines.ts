/**
 * The verifier over JSON lines, one output line per input line, in order: `recipe verify`, and the
 * long-lived process behind the train-rl image's Python reward glue, which answers each line as it
 * arrives.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { z } from "zod";
import { type Preset, verify } from "./index.ts";

const CaseLine = z.looseObject({
  id: z.union([z.string(), z.number()]).optional(),
  response: z.string(),
  answer: z.string(),
  choices: z.array(z.string()).nullish(),
  answerType: z.string().nullish(),
});

export interface VerifyCliOptions {
  input: string;
  preset: Preset;
  judge: boolean;
}

export interface VerdictLine {
  id: string | number | null;
  correct: boolean;
  extracted: string | null;
  reason: string;
  format: number;
}

export function verdictForLine(line: string, options: Omit<VerifyCliOptions, "input">): VerdictLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { id: null, correct: false, extracted: null, reason: "invalid_input", format: 0 };
  }
  const parsed = CaseLine.safeParse(value);
  if (!parsed.success) {
    const id = (value as { id?: unknown } | null)?.id;
    return {
      id: typeof id === "string" || typeof id === "number" ? id : null,
      correct: false,
      extracted: null,
      reason: "invalid_input",
      format: 0,
    };
  }
  const c = parsed.data;
  const v = verify(
    { response: c.response, answer: c.answer, choices: c.choices, answerType: c.answerType },
    { preset: options.preset, judge: options.judge },
  );
  return { id: c.id ?? null, correct: v.correct, extracted: v.extracted, reason: v.reason, format: v.format };
}

export async function verifyCommand(
  options: VerifyCliOptions,
  out: (text: string) => void,
  stdin: Readable = process.stdin,
): Promise<number> {
  const input = options.input === "-" ? stdin : createReadStream(options.input);
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (line.trim() === "") continue;
    out(`${JSON.stringify(verdictForLine(line, options))}\n`);
  }
  return 0;
}
