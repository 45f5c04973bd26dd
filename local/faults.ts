/**
 * Fault injection for the embedded runtime (`npm run chaos`): opt-in through RECIPE_CHAOS, off
 * otherwise (every hook below is then a no-op, and normal runs are untouched).
 *
 * RECIPE_CHAOS is JSON: { seed, rate, control?, killAtWrite? }.
 *  - S3: a request is answered 500 InternalError or 503 SlowDown, or the emulator drops every open
 *    connection (what its clients see of a process restart), at `rate`;
 *  - Lambda: an invoke is refused with Lambda.TooManyRequestsException at `rate`, or its execution
 *    environment exits mid-invocation (Runtime.ExitError) right after sending its k-th HTTP request
 *    (an S3 write among them: a crash in the middle of a multi-part write), at `rate`;
 *  - killAtWrite: at the N-th S3 write under a run's stage folders this process tells the chaos
 *    harness at `control` and holds that request; the harness then kills the whole process group.
 *
 * Every decision is a hash of the seed, the kind of fault, what the request is about (the method and
 * key, the function and its event) and how many times this process has seen that same thing: never
 * wall time nor the order in which concurrent requests arrive. What still depends on timing is what
 * else is in flight when a fault lands.
 */
import { createHash } from "node:crypto";
import { appendFileSync } from "node:fs";
import type { Server, Socket } from "node:net";

export interface ChaosSettings {
  seed: number;
  /** The fraction of S3 requests and Lambda invokes that fail. */
  rate: number;
  /** The harness's control URL (kill requests). */
  control?: string;
  /** Ask the harness to kill this process group at this S3 write. */
  killAtWrite?: number;
  /** A file each landed fault is appended to (one JSON line), so a count survives a kill. */
  log?: string;
}

/** What landed in this process, by kind (the harness reads it from the counts file). */
export type FaultCounts = Record<string, number>;

export function chaosSettings(env: NodeJS.ProcessEnv = process.env): ChaosSettings | null {
  const raw = env.RECIPE_CHAOS;
  if (!raw) return null;
  const s = JSON.parse(raw) as ChaosSettings;
  if (!Number.isFinite(s.seed) || !(s.rate >= 0 && s.rate < 1))
    throw new Error(`RECIPE_CHAOS needs a numeric seed and a rate in [0, 1): ${raw}`);
  return s;
}

/** A number in [0, 1) from the seed and the parts: the same parts always give the same number. */
export function uniform(seed: number, ...parts: (string | number)[]): number {
  const h = createHash("sha256")
    .update(`${seed}\u0000${parts.join("\u0000")}`)
    .digest();
  return h.readUInt32BE(0) / 2 ** 32;
}

/** Decisions of one process: each thing counted by how often it was seen, never by the clock. */
export class Chaos {
  private readonly seen = new Map<string, number>();
  private readonly faultedInARow = new Map<string, number>();
  readonly counts: FaultCounts = {};
  private writes = 0;

  constructor(readonly settings: ChaosSettings) {}

  /** How many times `what` was seen before (0 the first time), counting this one. */
  private occurrence(what: string): number {
    const n = this.seen.get(what) ?? 0;
    this.seen.set(what, n + 1);
    return n;
  }

  /** Counts a fault that landed, by kind and stage (appended to the log at once: kills come next). */
  land(kind: string, stage = ""): void {
    const k = stage ? `${kind}@${stage}` : kind;
    this.counts[k] = (this.counts[k] ?? 0) + 1;
    if (this.settings.log) appendFileSync(this.settings.log, `${JSON.stringify({ kind, stage })}\n`);
  }

  /**
   * Whether this request (method and path) fails, and how. At most two faults in a row for the same
   * request, so the SDK's three attempts get through: what is tested is that each fault is survived,
   * not the SDK's retry budget.
   */
  s3(method: string, path: string): "500" | "503" | "restart" | null {
    const what = `${method} ${path}`;
    const n = this.occurrence(`s3 ${what}`);
    const inARow = this.faultedInARow.get(what) ?? 0;
    const u = uniform(this.settings.seed, "s3", what, n);
    let fault: "500" | "503" | "restart" | null = null;
    if (inARow < 2 && u < this.settings.rate) {
      const v = uniform(this.settings.seed, "s3-kind", what, n);
      fault = v < 0.1 ? "restart" : v < 0.55 ? "500" : "503";
    }
    if (fault) this.faultedInARow.set(what, inARow + 1);
    else this.faultedInARow.delete(what);
    return fault;
  }

  /** Whether this S3 write is the one at which the harness kills the process group. */
  killHere(method: string, path: string): boolean {
    if (this.settings.killAtWrite === undefined) return false;
    if (method !== "PUT" && method !== "POST" && method !== "DELETE") return false;
    // Only the run's own writes count: the sources and run.json every attempt uploads first would draw
    // kills to where no work is done. Cache entries are written right after a teacher answer: a kill
    // there is what the teacher-side kills (which first let every answer reach the cache) are for.
    if (!/^\/[^/]+\/runs\/[^/]+\/[^/]+\//.test(path)) return false;
    this.writes += 1;
    return this.writes === this.settings.killAtWrite;
  }

  /** Whether this invoke of `step` with this event is throttled. */
  throttle(step: string, payload: string): boolean {
    const what = `${step} ${digest(payload)}`;
    const n = this.occurrence(`throttle ${what}`);
    return uniform(this.settings.seed, "throttle", what, n) < this.settings.rate;
  }

  /**
   * Whether this invoke's execution environment crashes, and after its how-many-th HTTP request
   * (1..6: the step's first reads and writes).
   */
  crashAfter(step: string, payload: string): number | undefined {
    const what = `${step} ${digest(payload)}`;
    const n = this.occurrence(`crash ${what}`);
    // Each event crashes at most twice: the state machine retries Runtime.ExitError twice (CRASH_RETRY
    // in infra/constructs/pipeline-state-machine.ts), so the step then goes on.
    if (n >= 2 || uniform(this.settings.seed, "crash", what, n) >= this.settings.rate) return undefined;
    return 1 + Math.floor(uniform(this.settings.seed, "crash-at", what, n) * 6);
  }
}

function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

let current: Chaos | null | undefined;

/** This process's chaos, or null when RECIPE_CHAOS is not set. */
export function chaos(): Chaos | null {
  if (current === undefined) {
    const settings = chaosSettings();
    current = settings ? new Chaos(settings) : null;
  }
  return current;
}

interface KoaContext {
  method: string;
  path: string;
  status: number;
  body: unknown;
  set(name: string, value: string): void;
  req: { socket: Socket };
}

/**
 * The S3 emulator's fault middleware (first in its chain): S3's own 500 and 503 answers, connection
 * drops, and the harness's kills. Returns nothing to install when chaos is off.
 */
export function s3FaultMiddleware(
  httpServer: () => Server | undefined,
): ((ctx: KoaContext, next: () => Promise<void>) => Promise<void>) | null {
  const c = chaos();
  if (!c) return null;
  const sockets = new Set<Socket>();
  let tracked: Server | undefined;
  return async (ctx, next) => {
    const server = httpServer();
    if (server && server !== tracked) {
      tracked = server;
      server.on("connection", (s: Socket) => {
        sockets.add(s);
        s.once("close", () => sockets.delete(s));
      });
      sockets.add(ctx.req.socket);
      ctx.req.socket.once("close", () => sockets.delete(ctx.req.socket));
    }
    if (c.killHere(ctx.method, ctx.path)) {
      await askToBeKilled(c, `S3 write ${c.settings.killAtWrite}: ${ctx.method} ${ctx.path}`);
      await new Promise(() => undefined); // held: the process group is killed meanwhile
    }
    const fault = c.s3(ctx.method, ctx.path);
    if (fault === "restart") {
      c.land("s3-restart", stageOf(ctx.path));
      // What clients see of the emulator's process being killed and started again: every open
      // connection drops at once (requests in flight among them); what is on disk stays.
      for (const s of sockets) s.destroy();
      return;
    }
    if (fault) {
      c.land(fault === "500" ? "s3-500" : "s3-503", stageOf(ctx.path));
      const code = fault === "500" ? "InternalError" : "SlowDown";
      const message =
        fault === "500"
          ? "We encountered an internal error. Please try again."
          : "Please reduce your request rate.";
      ctx.status = Number(fault);
      ctx.set("Content-Type", "application/xml");
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>chaos</RequestId></Error>`;
      return;
    }
    await next();
  };
}

/** The stage (or top folder: sources, cache) an S3 path is about: /<bucket>/runs/<run>/<stage>/... */
export function stageOf(path: string): string {
  const parts = path.split("/").filter(Boolean);
  if (parts[1] === "runs") return parts[3] ?? "run";
  return parts[1] ?? "bucket";
}

async function askToBeKilled(c: Chaos, what: string): Promise<void> {
  if (!c.settings.control) return;
  try {
    await fetch(`${c.settings.control}/kill`, {
      method: "POST",
      body: JSON.stringify({ pid: process.pid, what, faults: c.counts }),
    });
  } catch {
    // The harness is gone: nothing will kill us, so the request stays held until the process ends.
  }
}
