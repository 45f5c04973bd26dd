/**
 * The deploy settings a run.json is checked against outside AWS (`recipe validate`, `recipe
 * estimate`): cdk.json's context with `-c key=value` on top, read as `cdk deploy` reads them
 * (infra/config.ts), and what validate-config will know of that stack (core/config/deploy.ts).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { DeployFacts } from "../core/config/deploy.ts";
import type { GpuQueue } from "../core/generate/queues.ts";
import { type PipelineSettings, settingsFromContext } from "../infra/config.ts";
import { PROJECT_ROOT } from "../infra/root.ts";
import { UsageError } from "./errors.ts";

/** `-c key=value` pairs (repeatable, as cdk takes them) over cdk.json's context. */
export function deploySettings(pairs: string[] = []): PipelineSettings {
  const context: Record<string, unknown> = {
    ...(
      JSON.parse(readFileSync(join(PROJECT_ROOT, "cdk.json"), "utf8")) as {
        context?: Record<string, unknown>;
      }
    ).context,
  };
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`-c takes key=value (as cdk deploy does), not ${JSON.stringify(pair)}`);
    context[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  try {
    return settingsFromContext((k) => context[k]);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The stack's queues (named by their deploy setting) and the hosts its keys are bound to. */
export function deployFacts(s: PipelineSettings): DeployFacts {
  const queues: GpuQueue[] = [
    { size: "small", queue: "the small queue", instanceTypes: s.smallInstanceTypes },
    { size: "large", queue: "the large queue", instanceTypes: s.largeInstanceTypes },
  ];
  return {
    queues,
    keyHosts: {
      teacher: s.teacherApiKeySecretArn ? s.teacherEndpointHost : undefined,
      judge: s.judgeApiKeySecretArn ? s.judgeEndpointHost : undefined,
    },
  };
}
