/**
 * Where a run.json's sources are, checked before anything runs: a relative path or file:// URI must
 * exist (relative to the run.json's folder, as `recipe run` reads it); an s3:// URI must name a bucket.
 * Problems come in the config validator's shape, so they print the same way.
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ConfigProblem } from "../core/config/index.ts";
import type { RunConfig } from "../core/config/schema.ts";
import { GPU_INSTANCES, modelFitProblem } from "../core/generate/fit.ts";

const S3_URI = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/;

/** The local path a source URI names (relative to the run.json's folder, or file://); null for a remote one. */
export function localSourcePath(uri: string, configPath: string): string | null {
  if (uri.startsWith("file://")) return fileURLToPath(uri);
  if (/^[a-z0-9]+:\/\//.test(uri)) return null;
  return resolve(dirname(resolve(configPath)), uri);
}

export function sourceProblems(config: RunConfig, configPath: string): ConfigProblem[] {
  const base = dirname(resolve(configPath));
  const entries: [string, string][] = [
    ...config.sources.sft.map((s, i) => [`$.sources.sft[${i}].uri`, s.uri] as [string, string]),
    ...config.sources.rl.map((s, i) => [`$.sources.rl[${i}].uri`, s.uri] as [string, string]),
    ...config.dedup.decontamination.benchmarks.map(
      (b, i) => [`$.dedup.decontamination.benchmarks[${i}].uri`, b.uri] as [string, string],
    ),
  ];
  const problems: ConfigProblem[] = [];
  for (const [path, uri] of entries) {
    if (uri.startsWith("s3://")) {
      if (!S3_URI.test(uri)) {
        problems.push({
          path,
          expected: "s3://<bucket>/<key or prefix>",
          found: JSON.stringify(uri),
          message: "not a well-formed S3 URI",
        });
      }
      continue;
    }
    const file = localSourcePath(uri, configPath);
    if (file === null) continue; // other schemes: checked by the schema
    if (!existsSync(file)) {
      problems.push({
        path,
        expected: `a file or folder (relative paths are read from ${base})`,
        found: JSON.stringify(uri),
        message: `no such file or folder: ${file}`,
      });
    }
  }
  return problems;
}

/** The teacher and, with RL on, the policy against a GPU instance type (core/generate/fit.ts). */
export function modelFitProblems(config: RunConfig, instanceType: string): ConfigProblem[] {
  if (!(instanceType in GPU_INSTANCES))
    return [
      {
        path: "--instance-type",
        expected: `one of ${Object.keys(GPU_INSTANCES).join(", ")}`,
        found: JSON.stringify(instanceType),
        message: "not a GPU instance type this check knows",
      },
    ];
  const models: [string, string][] = [["$.teacher.model", config.teacher.model]];
  if (config.rl.enabled) models.push(["$.rl.policyModel", config.rl.policyModel]);
  return models.flatMap(([path, model]) => {
    const problem = modelFitProblem(model, instanceType);
    return problem
      ? [
          {
            path,
            expected: `a model that fits ${instanceType}`,
            found: JSON.stringify(model),
            message: problem,
          },
        ]
      : [];
  });
}
