/**
 * A run.json against the stack it is uploaded to: what the schema alone cannot know. validate-config
 * runs these before any job starts, and `recipe validate` runs them against the deploy settings.
 *  - GPU queues: the teacher and the policy each need a queue whose instance types hold them
 *    (core/generate/queues.ts);
 *  - keys bound to hosts: a key given at deploy time (teacherApiKeySecretArn, judgeApiKeySecretArn)
 *    is sent only to the one https host the deploy tied it to (teacherEndpointHost,
 *    judgeEndpointHost). Anyone who may upload a run.json may choose its endpoints; none may choose
 *    where a key goes.
 */
import { type GpuQueue, planQueues, type QueuePlan } from "../generate/queues.ts";
import type { ConfigProblem } from "./index.ts";
import type { RunConfig } from "./schema.ts";

export interface DeployFacts {
  /** The deployed generate queues (none: not checked). */
  queues?: GpuQueue[];
  /** The host each deployed key is bound to; present exactly when the key is deployed. */
  keyHosts?: { teacher?: string; judge?: string };
}

/** The host[:port] of a URL as a key binding names it (lower case; the default port left out). */
function hostOf(url: URL): string {
  return url.host.toLowerCase();
}

/** Problems of a keyed endpoint: it must be https and on the bound host. */
export function keyedEndpointProblem(
  path: string,
  url: string,
  boundHost: string,
  setting: "teacherEndpointHost" | "judgeEndpointHost",
): ConfigProblem | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { path, expected: `https://${boundHost}/...`, found: JSON.stringify(url), message: "not a URL" };
  }
  const wrongScheme = parsed.protocol !== "https:";
  const wrongHost = hostOf(parsed) !== boundHost.toLowerCase();
  if (!wrongScheme && !wrongHost) return null;
  return {
    path,
    expected: `https://${boundHost}/...`,
    found: JSON.stringify(url),
    message:
      `the deployed API key may be sent only to https://${boundHost} (deploy setting ${setting}): ` +
      [
        wrongScheme ? `${parsed.protocol.replace(":", "")} is not https` : "",
        wrongHost ? `${hostOf(parsed)} is another host` : "",
      ]
        .filter(Boolean)
        .join(" and ") +
      `; nothing was sent. Point it at ${boundHost}, or redeploy with -c ${setting}=<host>`,
  };
}

export function deployProblems(
  config: RunConfig,
  deploy: DeployFacts,
): { problems: ConfigProblem[]; queues: QueuePlan | null } {
  const problems: ConfigProblem[] = [];
  const teacherHost = deploy.keyHosts?.teacher;
  if (teacherHost !== undefined && config.teacher.serving === "endpoint" && config.teacher.endpoint) {
    const p = keyedEndpointProblem(
      "$.teacher.endpoint.url",
      config.teacher.endpoint.url,
      teacherHost,
      "teacherEndpointHost",
    );
    if (p) problems.push(p);
  }
  const judgeHost = deploy.keyHosts?.judge;
  const judge = config.verification.judge;
  if (judgeHost !== undefined && judge.enabled && judge.endpoint) {
    const p = keyedEndpointProblem(
      "$.verification.judge.endpoint.url",
      judge.endpoint.url,
      judgeHost,
      "judgeEndpointHost",
    );
    if (p) problems.push(p);
  }
  const queues = deploy.queues ? planQueues(config, deploy.queues) : null;
  if (queues) problems.push(...queues.problems);
  return { problems, queues };
}
