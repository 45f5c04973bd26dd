/**
 * The gold-parse rate per preset: bench/verifier/gold-fixtures.jsonl holds records in each preset's
 * real schema (shared/SOURCES.md; the records are made up, the schemas and the gold forms are the
 * sources'). Each record goes through its preset's reader and ingest's answer-tag step, then through
 * the verifier's gold reading: a value the rules compare, text, or unreadable (rejected at ingest as
 * `gold_unreadable`).
 *
 *   node --import tsx bench/verifier/gold-rate.ts      (also part of `npm run bench -- verifier`)
 */
import { readFileSync } from "node:fs";
import { goldAnswer } from "../../core/stages/ingest.ts";
import { PRESETS } from "../../core/stages/presets.ts";
import { readGoldKind } from "../../core/verify/index.ts";

export interface PresetGoldRate {
  preset: string;
  records: number;
  value: number;
  text: number;
  unreadable: number;
  /** Records the preset's reader rejects or gives no answer (not a gold reading). */
  noAnswer: number;
  via: Record<string, number>;
  unreadableReasons: Record<string, number>;
}

export function goldRates(path = "bench/verifier/gold-fixtures.jsonl"): PresetGoldRate[] {
  const rows = readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { preset: string; record: Record<string, unknown> });
  const byPreset = new Map<string, PresetGoldRate>();
  for (const { preset, record } of rows) {
    const rate =
      byPreset.get(preset) ??
      ({
        preset,
        records: 0,
        value: 0,
        text: 0,
        unreadable: 0,
        noAnswer: 0,
        via: {},
        unreadableReasons: {},
      } as PresetGoldRate);
    byPreset.set(preset, rate);
    rate.records += 1;
    const read = PRESETS[preset]!.read(record);
    const answer = "reject" in read ? undefined : read.answer;
    const given = typeof answer === "string" ? goldAnswer(answer) : "";
    if (given === "") {
      rate.noAnswer += 1;
      continue;
    }
    const g = readGoldKind(given);
    rate[g.kind] += 1;
    if (g.kind === "unreadable")
      rate.unreadableReasons[g.reason] = (rate.unreadableReasons[g.reason] ?? 0) + 1;
    else rate.via[g.via] = (rate.via[g.via] ?? 0) + 1;
  }
  return [...byPreset.values()];
}

export function printGoldRates(rates: readonly PresetGoldRate[]): void {
  console.log("\ngold-parse rate per preset (bench/verifier/gold-fixtures.jsonl)");
  console.log(`  ${"preset".padEnd(26)} records  value  text  unreadable  no answer  found by`);
  for (const r of rates) {
    const via = Object.entries(r.via)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    console.log(
      `  ${r.preset.padEnd(26)} ${String(r.records).padStart(7)}  ${String(r.value).padStart(5)}  ${String(r.text).padStart(4)}  ${String(r.unreadable).padStart(10)}  ${String(r.noAnswer).padStart(9)}  ${via}`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) printGoldRates(goldRates());
