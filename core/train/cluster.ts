/**
 * Multi-node training as an AWS Batch multi-node parallel (MNP) job: every node runs the same
 * launcher; the main node starts the Ray head, the others join it, and the main node runs verl with
 * `trainer.nnodes` = the node count. Nodes meet through small files in the run's train-rl folder
 * (head up, node joined, training done), scoped to the job and its attempt, so a retried attempt
 * never reads the last one's. Pure: the launcher does the I/O.
 */
import { networkInterfaces } from "node:os";
import { InputContractError } from "../errors.ts";
import { keys } from "../layout/index.ts";

/**
 * The network interfaces NCCL and Gloo may use between nodes: anything but loopback, Docker's bridge
 * and ECS's `ecs-eth0` (169.254.172.x, the task metadata link, which NCCL has been seen choosing and
 * then getting "Connection refused": NVIDIA/nccl issue 859). The multi-node job definition sets it; a
 * value already in the job's environment (a submission's container override) wins.
 */
export const DEFAULT_SOCKET_IFNAME = "^lo,docker,ecs";

/** A host's network interfaces, as `os.networkInterfaces()` gives them. */
export type Interfaces = Record<string, { family: string | number; internal: boolean }[] | undefined>;

/**
 * Gloo's interface: Gloo takes interface names only, not NCCL's `^lo,docker,ecs` exclusion list (given
 * it, creating a Gloo group fails "Unable to find address for: ^lo"), so an exclusion list picks the
 * first non-loopback IPv4 interface whose name none of its prefixes begins; a plain name given in the
 * environment wins. Null when none qualifies (Gloo then resolves the host name itself).
 */
export function glooInterface(given: string, interfaces: Interfaces): string | null {
  if (given && !given.startsWith("^")) return given;
  const excluded = given.startsWith("^") ? given.slice(1).split(",").filter(Boolean) : [];
  for (const [name, addrs] of Object.entries(interfaces)) {
    if (excluded.some((p) => name.startsWith(p))) continue;
    if (addrs?.some((a) => (a.family === "IPv4" || a.family === 4) && !a.internal)) return name;
  }
  return null;
}

/**
 * The environment every process of a training job needs, on every node: `ray start` (whose Ray
 * workers inherit it), verl's driver and verl's `ray.init` runtime environment, or every lmms-engine
 * process. Ray workers do not inherit the driver's environment, so the run's settings (the verifier
 * preset the reward reads) must travel here, not only in the driver's. NCCL's interfaces as given
 * (NCCL reads the exclusion list); Gloo's resolved to this host's interface name (glooInterface).
 */
export function trainingEnv(
  env: NodeJS.ProcessEnv,
  run: { verifyPreset: string },
  interfaces: Interfaces = networkInterfaces(),
): Record<string, string> {
  const gloo = glooInterface(env.GLOO_SOCKET_IFNAME || DEFAULT_SOCKET_IFNAME, interfaces);
  return {
    NCCL_SOCKET_IFNAME: env.NCCL_SOCKET_IFNAME || DEFAULT_SOCKET_IFNAME,
    ...(gloo ? { GLOO_SOCKET_IFNAME: gloo } : {}),
    RECIPE_VERIFY_PRESET: run.verifyPreset,
  };
}

/** The Ray head's port (Ray's default GCS port). */
export const RAY_PORT = 6379;

export interface NodeRole {
  /** Nodes in the job (1: a plain single-node job). */
  nodes: number;
  index: number;
  mainIndex: number;
  isMain: boolean;
  /** The MNP job's own id (a node's id is `<job id>#<node index>`). */
  jobId: string;
  attempt: number;
  /** The main node's private address, which Batch gives every other node. */
  mainAddress?: string;
}

/** A node's role from the environment AWS Batch sets in each MNP container. */
export function nodeRole(env: NodeJS.ProcessEnv): NodeRole {
  const int = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new InputContractError(`${name} is not a whole number: ${raw}`);
    return n;
  };
  const nodes = Math.max(1, int("AWS_BATCH_JOB_NUM_NODES", 1));
  const index = int("AWS_BATCH_JOB_NODE_INDEX", 0);
  const mainIndex = int("AWS_BATCH_JOB_MAIN_NODE_INDEX", 0);
  if (index >= nodes || mainIndex >= nodes)
    throw new InputContractError(`node ${index} (main ${mainIndex}) does not fit a ${nodes}-node job`);
  return {
    nodes,
    index,
    mainIndex,
    isMain: index === mainIndex,
    jobId: (env.AWS_BATCH_JOB_ID ?? "local").split("#")[0]!,
    attempt: int("AWS_BATCH_JOB_ATTEMPT", 1),
    mainAddress: env.AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS || undefined,
  };
}

/** Where the nodes of one attempt of one job meet. */
export function rendezvousPrefix(runId: string, role: NodeRole): string {
  const job = role.jobId.replace(/[^A-Za-z0-9._-]/g, "_");
  return `${keys.stagePrefix(runId, "train-rl")}cluster/${job}-attempt-${role.attempt}/`;
}

export const rendezvous = {
  head: (prefix: string) => `${prefix}head.json`,
  node: (prefix: string, index: number) => `${prefix}node-${index}.json`,
  done: (prefix: string) => `${prefix}done.json`,
};

/** `ray start` for the main node: the head, with this node's GPUs. */
export function rayHeadCommand(gpusPerNode: number): string[] {
  return ["ray", "start", "--head", `--port=${RAY_PORT}`, `--num-gpus=${gpusPerNode}`];
}

/** `ray start` for another node: join the head at the main node's address. */
export function rayWorkerCommand(mainAddress: string, gpusPerNode: number): string[] {
  return ["ray", "start", `--address=${mainAddress}:${RAY_PORT}`, `--num-gpus=${gpusPerNode}`];
}

/**
 * The node count the job runs with must be the one verl is told: a mismatch would leave verl waiting
 * for GPUs that never join (or idle nodes billed for nothing).
 */
export function checkNodeCount(role: NodeRole, configured: number, setting = "training.rl.nodes"): void {
  if (role.nodes !== configured)
    throw new InputContractError(
      `the job runs on ${role.nodes} node(s) but ${setting} is ${configured}: the state machine submits ${setting} nodes; was the job submitted by hand?`,
    );
}
