/**
 * A node of a multi-node training job (core/train/cluster.ts): the main node starts the Ray head and
 * waits until every other node has joined; the others wait for the head, join it, and stay until
 * the main node says training is done. They meet through small files under the run's train-rl
 * folder, so a node that never comes up is named in the log instead of verl waiting for it forever.
 */
import { spawnSync } from "node:child_process";
import { TransientError } from "../../../core/errors.ts";
import type { ByteStore } from "../../../core/shards/byte-store.ts";
import { readJson, writeJson } from "../../../core/shards/byte-store.ts";
import {
  type NodeRole,
  rayHeadCommand,
  rayWorkerCommand,
  rendezvous,
  rendezvousPrefix,
} from "../../../core/train/cluster.ts";

export interface ClusterOptions {
  store: ByteStore;
  runId: string;
  role: NodeRole;
  gpusPerNode: number;
  /** Print Ray's commands instead of running them (no Ray, no GPU: the local dry run). */
  dryRun: boolean;
  /** How long the main node waits for the others, and the others for the head. */
  joinTimeoutMs: number;
  pollMs: number;
  out: (line: string) => void;
  /** Replaces the `ray` executable (tests: a command that only exits 0). */
  rayCommand?: string[];
  /** Added to `ray start`'s environment, which every Ray worker on this node inherits (trainingEnv). */
  env: Record<string, string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ray(o: ClusterOptions, argv: string[]): void {
  o.out(`node ${o.role.index}: ${argv.join(" ")}`);
  if (o.dryRun) return;
  const [cmd, ...args] = [...(o.rayCommand ?? [argv[0]!]), ...argv.slice(1)];
  const r = spawnSync(cmd!, args, {
    stdio: "inherit",
    env: { ...process.env, ...o.env, RAY_USAGE_STATS_ENABLED: "0" },
  });
  if (r.status !== 0)
    throw new TransientError(
      `${argv.slice(0, 3).join(" ")} failed on node ${o.role.index} (exit ${r.status})`,
    );
}

async function waitFor(o: ClusterOptions, what: string, ready: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + o.joinTimeoutMs;
  while (!(await ready())) {
    if (Date.now() > until)
      throw new TransientError(
        `node ${o.role.index}: gave up after ${Math.round(o.joinTimeoutMs / 1000)} s waiting for ${what}`,
      );
    await sleep(o.pollMs);
  }
}

/** Main node: start the head, then wait until every other node has joined it. */
export async function startHead(o: ClusterOptions): Promise<void> {
  const prefix = rendezvousPrefix(o.runId, o.role);
  ray(o, rayHeadCommand(o.gpusPerNode));
  await writeJson(o.store, rendezvous.head(prefix), { node: o.role.index, at: new Date().toISOString() });
  const others = Array.from({ length: o.role.nodes }, (_, i) => i).filter((i) => i !== o.role.index);
  const missing = new Set(others);
  await waitFor(o, "nodes to join", async () => {
    for (const i of [...missing]) if (await o.store.exists(rendezvous.node(prefix, i))) missing.delete(i);
    return missing.size === 0;
  }).catch((err: Error) => {
    throw new TransientError(`${err.message}: node(s) ${[...missing].join(", ")} never joined`);
  });
  o.out(`cluster: ${o.role.nodes} nodes joined the Ray head on node ${o.role.index}`);
}

/** Main node: tell the others training has ended (they leave; Batch ends the job with the main node). */
export async function finishCluster(o: ClusterOptions, status: "succeeded" | "failed"): Promise<void> {
  await writeJson(o.store, rendezvous.done(rendezvousPrefix(o.runId, o.role)), {
    status,
    at: new Date().toISOString(),
  });
}

/**
 * Other nodes: wait for the head, join it, say so, and stay until the main node is done. `whileUp`
 * runs every poll (the checkpoint upload of this node's shards).
 */
export async function joinCluster(
  o: ClusterOptions,
  whileUp: (final: boolean) => Promise<void>,
): Promise<string> {
  const prefix = rendezvousPrefix(o.runId, o.role);
  await waitFor(o, "the Ray head", () => o.store.exists(rendezvous.head(prefix)));
  const address = o.role.mainAddress ?? (o.dryRun ? "127.0.0.1" : undefined);
  if (!address)
    throw new TransientError(
      "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS is not set: this node cannot find the main node",
    );
  ray(o, rayWorkerCommand(address, o.gpusPerNode));
  await writeJson(o.store, rendezvous.node(prefix, o.role.index), { at: new Date().toISOString() });
  o.out(`node ${o.role.index}: joined the head at ${address}`);
  let done: { status?: string } | null = null;
  for (;;) {
    done = await readJson<{ status?: string }>(o.store, rendezvous.done(prefix));
    if (done) break;
    await whileUp(false);
    await sleep(o.pollMs);
  }
  await whileUp(true);
  return done.status ?? "unknown";
}
