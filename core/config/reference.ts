/**
 * Generates the run.json reference (docs/run-config.md) and JSON Schema (docs/run.schema.json)
 * from the zod schema, so documentation and validation never drift. A test fails when the
 * committed files differ from what this produces; `npm run docs` rewrites them.
 */
import { z } from "zod";
import { PRESETS } from "../stages/presets.ts";
import { RunConfig } from "./schema.ts";

type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  minItems?: number;
  pattern?: string;
  format?: string;
};

export function runConfigJsonSchema(): JsonSchema & Record<string, unknown> {
  return z.toJSONSchema(RunConfig, { io: "input", unrepresentable: "any" }) as JsonSchema &
    Record<string, unknown>;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(" \\| ");
  if (s.anyOf) return s.anyOf.map(typeOf).join(" \\| ");
  if (s.type === "array") return `array of ${s.items ? typeOf(s.items) : "any"}`;
  if (s.type === "object" && s.propertyNames?.enum) return "map of domain to value";
  if (s.format) return `${s.type} (${s.format})`;
  return Array.isArray(s.type) ? s.type.join(" \\| ") : (s.type ?? "any");
}

function constraints(s: JsonSchema): string {
  const out: string[] = [];
  if (s.exclusiveMinimum !== undefined) out.push(`> ${s.exclusiveMinimum}`);
  if (s.minimum !== undefined && s.minimum > -MAX_SAFE) out.push(`>= ${s.minimum}`);
  if (s.exclusiveMaximum !== undefined) out.push(`< ${s.exclusiveMaximum}`);
  if (s.maximum !== undefined && s.maximum < MAX_SAFE) out.push(`<= ${s.maximum}`);
  if (s.minLength) out.push(`min length ${s.minLength}`);
  if (s.minItems) out.push(`min items ${s.minItems}`);
  if (s.pattern) out.push(`pattern \`${s.pattern}\``);
  return out.join(", ");
}

function cell(text: string): string {
  return text.replaceAll("\n", " ").replaceAll("|", "\\|");
}

function rows(schema: JsonSchema, path: string, out: string[]): void {
  const props = schema.properties ?? {};
  for (const [name, prop] of Object.entries(props)) {
    const p = path ? `${path}.${name}` : name;
    const required = schema.required?.includes(name) && prop.default === undefined;
    const def = prop.default === undefined ? "" : `\`${cell(JSON.stringify(prop.default))}\``;
    const desc = prop.description ?? prop.items?.description ?? "";
    out.push(
      `| \`${p}\` | ${typeOf(prop)} | ${required ? "**required**" : def} | ${cell(constraints(prop))} | ${cell(desc)} |`,
    );
    if (prop.type === "object" && prop.properties) rows(prop, p, out);
    if (prop.type === "array" && prop.items?.properties) rows(prop.items, `${p}[]`, out);
  }
}

export function runConfigReference(): string {
  const schema = runConfigJsonSchema();
  const out = [
    "# run.json reference",
    "",
    "<!-- Generated from core/config/schema.ts by `npm run docs`. Do not edit by hand. -->",
    "",
    "A run is one JSON file. Unknown keys are errors, so a typo never silently falls back to a default.",
    "Defaults are the published OpenMMReasoner numbers. Check a file with `npx recipe validate run.json`;",
    "editors can use `docs/run.schema.json`.",
    "",
    "| field | type | default | constraints | description |",
    "| --- | --- | --- | --- | --- |",
  ];
  rows(schema, "", out);
  out.push(
    "",
    "## Source presets",
    "",
    '`sources[].preset` reads a known public data set in its real schema (instead of `columns`). Rows: what a record is (`questions` are distilled again by the teacher; a record that also carries a response can be used as a trace with `kind: "traces"`). The required columns are checked on the first record read: a source whose columns differ fails naming the column.',
    "",
    "| preset | data set | rows | files | required columns | pass rate | taken on trust (not yet seen on a row) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...Object.entries(PRESETS).map(
      ([name, p]) =>
        `| \`${name}\` | ${p.dataset} | ${p.rows} | ${p.layout.replaceAll("|", "\\|")} | ${p.required.map((c) => `\`${c}\``).join(", ")} | ${p.passRate ? "yes" : ""} | ${p.inferred || "nothing"} |`,
    ),
  );
  return `${out.join("\n")}\n`;
}
