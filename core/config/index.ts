import { createHash } from "node:crypto";
import type { z } from "zod";
import { ConfigError } from "../errors.ts";
import { RunConfig } from "./schema.ts";

export * from "./schema.ts";

/** One thing wrong with a run config, located by JSON path. */
export interface ConfigProblem {
  /** JSON path such as `$.teacher.temperature` or `$.sources.sft[0].format`. */
  path: string;
  expected: string;
  /** The value found, rendered as JSON; `undefined` when the key is missing. */
  found: string;
  message: string;
}

export type ValidationResult = { ok: true; config: RunConfig } | { ok: false; problems: ConfigProblem[] };

export function jsonPath(path: readonly PropertyKey[]): string {
  let out = "$";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "string" && /^[A-Za-z_$][\w$]*$/.test(part)) out += `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

function render(value: unknown): string {
  if (value === undefined) return "undefined (missing)";
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function expectedOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type":
      return issue.expected;
    case "too_small":
      return `${issue.origin} ${issue.inclusive === false ? ">" : ">="} ${String(issue.minimum)}`;
    case "too_big":
      return `${issue.origin} ${issue.inclusive === false ? "<" : "<="} ${String(issue.maximum)}`;
    case "invalid_value":
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "invalid_format":
      return issue.format === "regex" ? issue.message : `${issue.format} format`;
    case "unrecognized_keys":
      return "no such key (check the spelling; see docs/run-config.md)";
    case "not_multiple_of":
      return `a multiple of ${String(issue.divisor)}`;
    case "custom":
      return typeof issue.params?.expected === "string" ? issue.params.expected : issue.message;
    default:
      return issue.message;
  }
}

/** Flattens zod issues into one problem per path; an unknown key becomes one problem per key. */
export function problemsFromIssues(issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const input = issue.input as Record<string, unknown> | undefined;
        problems.push({
          path: jsonPath([...issue.path, key]),
          expected: expectedOf(issue),
          found: render(input?.[key]),
          message: `unknown key "${key}"`,
        });
      }
      continue;
    }
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      problems.push(...problemsFromIssues(issue.errors.flat()));
      continue;
    }
    problems.push({
      path: jsonPath(issue.path),
      expected: expectedOf(issue),
      found: render(issue.input),
      message: issue.message,
    });
  }
  return problems;
}

/** Validates a parsed run.json; never throws. Every problem is reported at once. */
export function validateRunConfig(input: unknown): ValidationResult {
  const result = RunConfig.safeParse(input, { reportInput: true });
  const problems = [
    ...presetConflicts(input),
    ...(result.success ? [] : problemsFromIssues(result.error.issues)),
  ];
  // The schema says a missing format only of a source that is otherwise valid: said of every one.
  for (const p of missingFormats(input)) if (!problems.some((q) => q.path === p.path)) problems.push(p);
  if (result.success && problems.length === 0) return { ok: true, config: result.data };
  return { ok: false, problems };
}

/** Each source object of run.json as given (before the schema), with its JSONPath. */
function rawSources(input: unknown): { path: string; source: Record<string, unknown> }[] {
  const sources = (input as { sources?: Record<string, unknown> } | null)?.sources;
  if (!sources || typeof sources !== "object") return [];
  return ["sft", "rl"].flatMap((branch) => {
    const list = (sources as Record<string, unknown>)[branch];
    if (!Array.isArray(list)) return [];
    return list.flatMap((s, i) =>
      s && typeof s === "object"
        ? [{ path: `$.sources.${branch}[${i}]`, source: s as Record<string, unknown> }]
        : [],
    );
  });
}

/** Sources with neither a `format` nor a `preset` that implies one. */
function missingFormats(input: unknown): ConfigProblem[] {
  return rawSources(input)
    .filter(({ source }) => !("format" in source) && !("preset" in source))
    .map(({ path }) => ({
      path: `${path}.format`,
      expected: '"jsonl" | "parquet"',
      found: "undefined",
      message: 'required: "jsonl" or "parquet" (only a preset implies it)',
    }));
}

/** A source with a preset reads the preset's columns: a `columns` mapping beside it is a mistake. */
function presetConflicts(input: unknown): ConfigProblem[] {
  return rawSources(input)
    .filter(({ source }) => "preset" in source && "columns" in source)
    .map(({ path, source }) => ({
      path: `${path}.columns`,
      expected: "no columns with a preset",
      found: JSON.stringify(source.columns),
      message: `preset ${JSON.stringify(source.preset)} reads its own columns; remove columns, or the preset to map columns yourself`,
    }));
}

/** Parses run.json text; a JSON syntax error is a problem at `$` with its position. */
export function parseRunConfigText(text: string): ValidationResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      problems: [
        {
          path: "$",
          expected: "a JSON object",
          found: "text that is not JSON",
          message: (err as Error).message,
        },
      ],
    };
  }
  return validateRunConfig(parsed);
}

/** Like validateRunConfig but throws a ConfigError listing every problem. */
export function resolveRunConfig(input: unknown): RunConfig {
  const result = validateRunConfig(input);
  if (!result.ok) throw new ConfigError(result.problems);
  return result.config;
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems
    .map((p, i) => `${i + 1}. ${p.path}: ${p.message}\n   expected: ${p.expected}\n   found:    ${p.found}`)
    .join("\n");
}

/** Canonical JSON: keys sorted at every level, so equal configs hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** sha256 of the resolved config; recorded in data cards and reports for lineage. */
export function configHash(config: RunConfig): string {
  return createHash("sha256").update(canonicalJson(config)).digest("hex");
}
