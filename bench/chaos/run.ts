/**
 * `npm run chaos [-- --kills 100 --seed 7 --faults 0.02 --questions 3000 --short]`: one run.json run
 * twice on the embedded runtime, once undisturbed and once under chaos, restarted with the same
 * command as a user would until it succeeds; then the two are compared byte for byte. Prints one JSON
 * object and exits 1 when a check fails.
 *
 * Under chaos, each kill is drawn from the seed: its kind (SIGKILL or SIGINT of the whole `recipe run`
 * process group, or SIGKILL of one Batch child as a Spot reclaim would) and its moment, an event count
 * (the n-th teacher request, or the n-th S3 write of the attempt). Before a kill the teacher stops
 * letting requests through and the harness waits until it is quiet: the requests it had let through
 * are answered and every answer it delivered is in the generation cache, so a request asked again
 * afterwards is a defect, not an answer lost in flight. The run trains (the trainer's dry run), and
 * the trainer's launcher is killed once, the first time it runs. Faults inside the runtime
 * (S3 500/503 and dropped connections, Lambda throttles and crashed environments) come from
 * RECIPE_CHAOS (local/faults.ts); the teacher's (429, 500, reset, cut-short answers) from the teacher.
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { uniform } from "../../local/faults.ts";
import { type Kill, killAt } from "./kills.ts";
import { type ChaosTeacher, startChaosTeacher } from "./teacher.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const RUN_ID = "chaos";
const OBJECT = "._S3rver_object";

const { values: args } = parseArgs({
  options: {
    kills: { type: "string", default: "100" },
    seed: { type: "string", default: "7" },
    faults: { type: "string", default: "0.02" },
    questions: { type: "string" },
    short: { type: "boolean", default: false },
    latency: { type: "string", default: "5" },
    keep: { type: "boolean", default: false },
    work: { type: "string" },
  },
});
const KILLS = Number(args.kills);
const SEED = Number(args.seed);
const RATE = Number(args.faults);
const QUESTIONS = Number(args.questions ?? (args.short ? 200 : 3000));
const problems: string[] = [];
if (!Number.isInteger(KILLS) || KILLS < 0)
  problems.push(`--kills must be a whole number >= 0: ${args.kills}`);
if (!Number.isFinite(SEED)) problems.push(`--seed must be a number: ${args.seed}`);
if (!(RATE >= 0 && RATE < 0.5)) problems.push(`--faults must be a rate in [0, 0.5): ${args.faults}`);
if (!Number.isInteger(QUESTIONS) || QUESTIONS < 1)
  problems.push(`--questions must be >= 1: ${args.questions}`);
if (problems.length > 0) {
  console.error(
    `npm run chaos: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join("\n")}`,
  );
  process.exit(2);
}

const work = args.work ? resolve(args.work) : mkdtempSync(join(tmpdir(), "recipe-chaos-"));
mkdirSync(work, { recursive: true });
const log = (line: string) => process.stderr.write(`[chaos] ${line}\n`);

/** The run: the sample plus a generated-question source for SFT and one for RL. */
function writeRunFolder(): string {
  const folder = join(work, "run");
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(join(folder, "generated"), { recursive: true });
  symlinkSync(join(ROOT, "examples", "sample"), join(folder, "sample"));
  const question = (i: number) => {
    const a = 3 + (Math.floor(uniform(SEED, "a", i) * 90) as number);
    const b = 3 + Math.floor(uniform(SEED, "b", i) * 90);
    const c = Math.floor(uniform(SEED, "c", i) * 50);
    return {
      id: `chaos-${String(i).padStart(5, "0")}`,
      question: `Chaos question ${i}: what is ${a} times ${b} plus ${c}?`,
      answer: String(a * b + c),
      images: [],
    };
  };
  const rl = Math.max(8, Math.floor(QUESTIONS / 5));
  const lines = (from: number, n: number) =>
    `${Array.from({ length: n }, (_, i) => JSON.stringify(question(from + i))).join("\n")}\n`;
  writeFileSync(join(folder, "generated", "sft.jsonl"), lines(0, QUESTIONS));
  writeFileSync(join(folder, "generated", "rl.jsonl"), lines(QUESTIONS, rl));
  const config = JSON.parse(readFileSync(join(ROOT, "examples", "run.sample.json"), "utf8"));
  delete config.$schema;
  config.runId = RUN_ID;
  config.description = `npm run chaos: the sample plus ${QUESTIONS} + ${rl} generated questions`;
  config.sources.sft.push({
    name: "generated-math",
    uri: "generated/sft.jsonl",
    format: "jsonl",
    domain: "text_math",
    license: "CC0-1.0",
  });
  config.sources.rl.push({
    name: "generated-rl",
    uri: "generated/rl.jsonl",
    format: "jsonl",
    domain: "text_math",
    license: "CC0-1.0",
  });
  config.batch = { questionsPerShard: Math.max(16, Math.ceil(QUESTIONS / 8)) };
  // RL training as the embedded runtime runs it (the trainer's dry run: its launcher checks the RL set,
  // the reward glue and verl's command), so that its launcher can be killed as a Spot reclaim would.
  // Batches of 2: the RL set of a short run gives verl steps to take.
  config.training = { rl: { enabled: true, trainBatchSize: 2, ppoMiniBatchSize: 2 } };
  const file = join(folder, "run.json");
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

interface Attempt {
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
}

/** One `recipe run` as its own process group (a kill takes its Batch children with it). */
function recipeRun(
  runJson: string,
  dataDir: string,
  teacher: ChaosTeacher,
  env: NodeJS.ProcessEnv,
  logFile: string,
): { child: ChildProcess; done: Promise<Attempt> } {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      join(ROOT, "bin", "recipe.mjs"),
      "run",
      runJson,
      "--teacher-url",
      teacher.url,
      "--teacher-model",
      "chaos-teacher",
      "--data-dir",
      dataDir,
      "--parallelism",
      "2",
    ],
    { cwd: work, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } },
  );
  const out = createWriteStream(logFile);
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const done = new Promise<Attempt>((r) =>
    child.once("exit", (code, signal) => r({ code, signal, seconds: (performance.now() - t0) / 1000 })),
  );
  return { child, done };
}

/** Files of the emulator (under <dataDir>/s3/recipe-local), by key. */
function objects(dataDir: string): Map<string, string> {
  const root = join(dataDir, "s3", "recipe-local");
  const out = new Map<string, string>();
  if (!existsSync(root)) return out;
  for (const f of readdirSync(root, { recursive: true }).map(String))
    if (f.endsWith(OBJECT)) out.set(f.slice(0, -OBJECT.length).split("\\").join("/"), join(root, f));
  return out;
}

function cacheEntries(dataDir: string): number {
  const dir = join(dataDir, "s3", "recipe-local", "cache", "generate");
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith(OBJECT)).length;
}

/** Leftovers no S3 reader sees but a real bucket would hold: open multipart uploads, torn puts. */
function partials(dataDir: string): string[] {
  const root = join(dataDir, "s3", "recipe-local");
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true })
    .map(String)
    .filter((f) => f.includes("_S3rver_uploads") || f.includes(".partial-"))
    .filter((f) => !f.endsWith("_S3rver_uploads"));
}

async function waitFor(what: string, ok: () => boolean, limitMs = 60_000): Promise<boolean> {
  for (let waited = 0; !ok(); waited += 50) {
    if (waited > limitMs) {
      log(`gave up waiting for ${what}`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Pids of `root`'s descendants whose command line names a Batch image (the local Batch children). */
function batchChildren(root: number): { pid: number; image: string }[] {
  const parent = new Map<number, number>();
  const cmd = new Map<number, string>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      cmd.set(Number(name), readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " "));
    } catch {
      // exited while we looked
    }
  }
  const under = (pid: number): boolean => {
    for (let p = parent.get(pid); p; p = parent.get(p)) if (p === root) return true;
    return false;
  };
  return [...cmd]
    .filter(([pid, c]) => under(pid) && /batch-images\/[a-z-]+\/src\/main\.ts/.test(c))
    .map(([pid, c]) => ({ pid, image: /batch-images\/([a-z-]+)\//.exec(c)![1]! }))
    .sort((a, b) => a.pid - b.pid);
}

/** Whether any process of this process group is still there (zombies included). */
function groupAlive(pgid: number): boolean {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]) === pgid) return true;
    } catch {
      // exited while we looked
    }
  }
  return false;
}

/** The stages under way: started (an object beside their fingerprint) and without _SUCCESS. */
function stageNow(dataDir: string): string {
  const run = join(dataDir, "s3", "recipe-local", "runs", RUN_ID);
  if (!existsSync(run)) return "start";
  const open = readdirSync(run)
    // Plan stages write a manifest and no _SUCCESS: they are never "under way" after their step.
    .filter((d) => !d.includes(".") && d !== "datasets" && !d.startsWith("plan-"))
    .filter((d) => !existsSync(join(run, d, `_SUCCESS${OBJECT}`)))
    .filter((d) => readdirSync(join(run, d)).some((f) => !f.startsWith("fingerprint.json")));
  return open.sort().join("+") || "between-stages";
}

/** The control server a runtime calls to be killed at its S3 write (local/faults.ts). */
async function controlServer(onKill: (body: { pid: number; what: string }) => void) {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      res.end("ok");
      if (req.url === "/kill") onKill(JSON.parse(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * What is normalised before the comparison: when something happened and how long it took, the
 * generate workers' account of the attempt that finished a shard (requests sent, retries, answers
 * found from a killed attempt, unreadable cache entries), and the report's record of which attempt
 * kept which stage. Nothing else: every other byte must be the same.
 */
const OPERATIONAL = new Set([
  "seconds",
  "wall_seconds",
  // The report's time block (when the run started and finished, its wall and stage seconds).
  "wallSeconds",
  "stageSeconds",
  "requests",
  "retries",
  "resumed",
  "cache_unreadable",
]);
const TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g;

function normalise(key: string, bytes: Buffer): Buffer {
  if (key.endsWith(".md") || key.endsWith(".html"))
    return Buffer.from(bytes.toString("utf8").replace(TIME, "<time>"));
  if (!key.endsWith(".json") && !key.endsWith("_SUCCESS")) return bytes;
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (typeof v === "string") return v.replace(TIME, "<time>");
    if (!v || typeof v !== "object") return v;
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k]) => !OPERATIONAL.has(k))
        .map(([k, x]) => [k, strip(x)]),
    );
  };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch {
    return bytes;
  }
  const out = strip(value) as Record<string, unknown>;
  if (key.endsWith("report/report.json")) delete out.revision;
  return Buffer.from(JSON.stringify(out));
}

async function main() {
  const runJson = writeRunFolder();
  const teacher = await startChaosTeacher(Number(args.latency));
  const summary: Record<string, unknown> = {
    seed: SEED,
    kills: KILLS,
    faultRate: RATE,
    questions: QUESTIONS,
    work,
  };
  try {
    // 1. Undisturbed.
    const calm = join(work, "undisturbed");
    rmSync(calm, { recursive: true, force: true });
    log(`undisturbed run (${QUESTIONS} generated questions) in ${calm}`);
    const first = recipeRun(runJson, calm, teacher, {}, join(work, "undisturbed.log"));
    const calmRun = await first.done;
    if (calmRun.code !== 0)
      throw new Error(`the undisturbed run failed (see ${join(work, "undisturbed.log")})`);
    const calmTeacher = { requests: teacher.requests, answered: teacher.answeredDistinct };
    const calmObjects = objects(calm);
    // The run's own writes (under its stage folders): what an S3-write kill counts.
    const runWrites = [...calmObjects.keys()].filter((k) => /^runs\/[^/]+\/[^/]+\//.test(k)).length;
    log(
      `undisturbed: ${calmRun.seconds.toFixed(1)} s, ${calmTeacher.requests} teacher requests, ${runWrites} objects`,
    );

    // 2. Chaos: the same teacher (its URL is in run.json and the data cards), counted afresh.
    teacher.reset();
    const chaotic = teacher;
    chaotic.setFaultRate(RATE, SEED);
    const dataDir = join(work, "chaos");
    rmSync(dataDir, { recursive: true, force: true });
    const faultLog = join(work, "faults.jsonl");
    rmSync(faultLog, { force: true });
    const inRun = (k: string) => /^runs\/[^/]+\/[^/]+\//.test(k);
    const runObjects = () => [...objects(dataDir).keys()].filter(inRun).length;
    // The kill to come, drawn when it is armed (at an attempt's start, or after a Batch child kill).
    let pending: Kill | null = null;
    const draw = (midAttempt = false): Kill | null =>
      next >= KILLS
        ? null
        : killAt(
            SEED,
            next,
            KILLS - next,
            calmTeacher.requests - chaotic.answeredDistinct,
            runWrites - runObjects(),
            midAttempt,
          );
    const landed: { kind: string; trigger: string; stage: string; attempt: number }[] = [];
    const quiesceTimeouts: number[] = [];
    let current: { child: ChildProcess; killed: boolean; exited: boolean } | null = null;
    let next = 0;
    let attemptRequests = 0;
    let armedTeacherAt: number | null = null;
    let killing = false;

    /** Holds the teacher, waits until each answer it gave is cached, then kills as `kill` says. */
    const strike = async (kill: Kill, attempt: number, what: string) => {
      // One kill at a time; one asked for meanwhile waits its turn (it holds an S3 request until then).
      while (killing) await new Promise((r) => setTimeout(r, 50));
      if (!current || current.killed || current.exited) return;
      const target = current;
      killing = true;
      chaotic.hold();
      const settled = await waitFor(
        "every delivered answer to reach the cache",
        () => target.exited || chaotic.quiet(cacheEntries(dataDir)),
      );
      if (!settled) quiesceTimeouts.push(attempt);
      if (current !== target || target.killed || target.exited) {
        // The attempt that asked ended meanwhile (it failed): its kill does not carry over.
        killing = false;
        chaotic.release();
        return;
      }
      const stage = /runs\/[^/]+\/([a-z-]+)\//.exec(what)?.[1] ?? stageNow(dataDir);
      const pgid = current.child.pid!;
      if (kill.kind === "batch-child") {
        const children = batchChildren(pgid);
        if (children.length > 0) {
          const victim = children[Math.floor(uniform(SEED, "victim", next) * children.length)]!;
          process.kill(victim.pid, "SIGKILL");
          // Its held requests must read as abandoned before the teacher answers again.
          await waitFor("the killed child to be gone", () => !existsSync(`/proc/${victim.pid}`), 30_000);
          await new Promise((r) => setTimeout(r, 100));
          landed.push({ kind: `batch-child-${victim.image}`, trigger: what, stage, attempt });
          next += 1;
          log(
            `attempt ${attempt}: SIGKILL Batch child ${victim.image} (pid ${victim.pid}) at ${what}, ${stage}`,
          );
        }
        killing = false;
        chaotic.release();
        // The next kill may land in this same attempt, on the teacher: the attempt's S3-write kill was
        // fixed when it started (an S3-write kill drawn here never landed, and the run could finish
        // with kills to spare: 17 of 30 landed in a long run).
        pending = draw(true);
        armedTeacherAt = pending?.trigger === "teacher" ? attemptRequests + pending.at : null;
        return;
      }
      const signal = kill.kind === "sigkill" ? "SIGKILL" : "SIGINT";
      current.killed = true;
      try {
        process.kill(-pgid, signal);
        landed.push({ kind: signal, trigger: what, stage, attempt });
        next += 1;
        log(`attempt ${attempt}: ${signal} to the process group at ${what}, ${stage}`);
      } catch {
        // already gone
      }
      killing = false;
    };

    let attempt = 0;
    const control = await controlServer(({ what }) => {
      if (pending?.trigger === "s3-write") void strike(pending, attempt, what);
    });
    chaotic.onRequest = () => {
      attemptRequests += 1;
      if (pending && armedTeacherAt !== null && attemptRequests >= armedTeacherAt) {
        armedTeacherAt = null;
        void strike(pending, attempt, `teacher request ${attemptRequests}`);
      }
    };

    // The trainer's launcher is killed once (SIGKILL, as a Spot reclaim would), the first time it runs:
    // no teacher request or run write happens while it does, so no drawn kill can land there.
    let launcherKilled = KILLS === 0;
    const launcherWatch = setInterval(() => {
      if (launcherKilled || killing || !current || current.killed || current.exited) return;
      const victim = batchChildren(current.child.pid!).find((c) => c.image === "train-rl");
      if (!victim) return;
      launcherKilled = true;
      try {
        process.kill(victim.pid, "SIGKILL");
        landed.push({
          kind: "batch-child-train-rl",
          trigger: "launcher running",
          stage: "train-rl",
          attempt,
        });
        log(`attempt ${attempt}: SIGKILL Batch child train-rl (pid ${victim.pid}), the trainer's launcher`);
      } catch {
        // it exited first
        launcherKilled = false;
      }
    }, 200);

    const t0 = performance.now();
    const attempts: { attempt: number; code: number | null; signal: string | null; seconds: number }[] = [];
    const maxAttempts = KILLS * 3 + 10;
    let succeeded = false;
    while (!succeeded && attempt < maxAttempts) {
      attempt += 1;
      attemptRequests = 0;
      chaotic.release();
      pending = draw();
      armedTeacherAt = pending?.trigger === "teacher" ? pending.at : null;
      const chaosEnv = {
        seed: SEED * 1000 + attempt,
        rate: RATE,
        control: control.url,
        killAtWrite: pending?.trigger === "s3-write" ? pending.at : undefined,
        log: faultLog,
      };
      const r = recipeRun(
        runJson,
        dataDir,
        chaotic,
        { RECIPE_CHAOS: JSON.stringify(chaosEnv) },
        join(work, `chaos-${attempt}.log`),
      );
      current = { child: r.child, killed: false, exited: false };
      const outcome = await r.done;
      current.exited = true;
      // Whatever the signal left of the group (a child that ignored SIGINT) goes too, and is gone
      // before the teacher answers again: a held request of a dying child must read as abandoned.
      try {
        process.kill(-r.child.pid!, "SIGKILL");
      } catch {
        // the group is gone
      }
      await waitFor("the killed process group to be gone", () => !groupAlive(r.child.pid!), 30_000);
      await new Promise((res) => setTimeout(res, 200));
      attempts.push({ attempt, code: outcome.code, signal: outcome.signal, seconds: outcome.seconds });
      succeeded = outcome.code === 0;
      if (!succeeded && !current.killed) log(`attempt ${attempt} exited ${outcome.code} without a kill`);
    }
    const chaosSeconds = (performance.now() - t0) / 1000;
    clearInterval(launcherWatch);
    await control.close();

    // 3. Compare.
    const hot = objects(dataDir);
    const diff = (filter: (k: string) => boolean) => {
      const keysA = [...calmObjects.keys()].filter(filter).sort();
      const keysB = [...hot.keys()].filter(filter).sort();
      const missing = keysA.filter((k) => !hot.has(k));
      const extra = keysB.filter((k) => !calmObjects.has(k));
      let sameBytes = 0;
      const differ = keysA.filter((k) => {
        if (!hot.has(k)) return false;
        const [a, b] = [readFileSync(calmObjects.get(k)!), readFileSync(hot.get(k)!)];
        if (a.equals(b)) sameBytes += 1;
        return !normalise(k, a).equals(normalise(k, b));
      });
      return { compared: keysA.length, sameBytes, missing, extra, differ };
    };
    const prefix = `runs/${RUN_ID}/`;
    const datasets = diff((k) => k.startsWith(`${prefix}datasets/`));
    const markers = diff((k) => k.startsWith(prefix) && (/\/_SUCCESS$/.test(k) || /\/stats\//.test(k)));
    const report = diff((k) => k.startsWith(`${prefix}report/`) && k.endsWith(".json"));
    const everything = diff((k) => k.startsWith(prefix));
    const outside = [...hot.keys()].filter(
      (k) => !/^(cache\/generate|sources|images)\//.test(k) && !k.startsWith(prefix),
    );
    const leftovers = partials(dataDir);
    const faults: Record<string, Record<string, number>> = {};
    const bump = (kind: string, stage: string) => {
      faults[kind] ??= {};
      faults[kind][stage] = (faults[kind][stage] ?? 0) + 1;
    };
    if (existsSync(faultLog))
      for (const line of readFileSync(faultLog, "utf8").split("\n").filter(Boolean)) {
        const f = JSON.parse(line) as { kind: string; stage: string };
        bump(f.kind, f.stage || "-");
      }
    // The teacher's faults land in the generate stages (distill and estimate-difficulty).
    for (const [kind, n] of Object.entries(chaotic.faults))
      faults[kind] = { "distill/estimate-difficulty": n };
    const killsByKind: Record<string, Record<string, number>> = {};
    for (const k of landed) {
      killsByKind[k.kind] ??= {};
      killsByKind[k.kind]![k.stage] = (killsByKind[k.kind]![k.stage] ?? 0) + 1;
    }
    const askedAgain = chaotic.askedAgain();
    Object.assign(summary, {
      succeeded,
      attempts: attempts.length,
      killsLanded: landed.length,
      killsByKind,
      trainerLauncherKilled: launcherKilled && KILLS > 0,
      faults,
      teacher: {
        undisturbedRequests: calmTeacher.requests,
        chaosRequests: chaotic.requests,
        distinctAnswered: { undisturbed: calmTeacher.answered, chaos: chaotic.answeredDistinct },
        askedAgainAfterAnswer: askedAgain.length,
        quiesceTimeouts: quiesceTimeouts.length,
      },
      compare: {
        datasets: { compared: datasets.compared, ...pickDiff(datasets) },
        successAndStats: { compared: markers.compared, ...pickDiff(markers) },
        report: { compared: report.compared, ...pickDiff(report) },
        allRunObjects: { compared: everything.compared, ...pickDiff(everything) },
      },
      objectsOutsideRunPrefixes: outside,
      openUploadsOrTornPuts: leftovers,
      seconds: { undisturbed: round(calmRun.seconds), chaos: round(chaosSeconds) },
      slowdown: round(chaosSeconds / calmRun.seconds),
    });
    const failures = [
      !succeeded && `the chaos run did not succeed in ${attempts.length} attempts`,
      datasets.missing.length + datasets.extra.length + datasets.differ.length > 0 &&
        "datasets differ from the undisturbed run",
      markers.missing.length + markers.extra.length + markers.differ.length > 0 &&
        "a _SUCCESS or stats object differs",
      report.missing.length + report.differ.length > 0 && "the report's counts differ",
      askedAgain.length > 0 && `${askedAgain.length} answered teacher requests were asked again`,
      outside.length > 0 && "objects outside the run's prefixes",
      leftovers.length > 0 && "open multipart uploads or torn puts left",
    ].filter(Boolean);
    summary.ok = failures.length === 0;
    summary.failures = failures;
    if (askedAgain.length > 0) summary.askedAgainExamples = askedAgain.slice(0, 5);
    await chaotic.close();
  } finally {
    console.log(JSON.stringify(summary, null, 2));
    if (!args.keep && summary.ok) rmSync(work, { recursive: true, force: true });
  }
  process.exit(summary.ok ? 0 : 1);
}

function pickDiff(d: { sameBytes: number; missing: string[]; extra: string[]; differ: string[] }) {
  return {
    sameBytes: d.sameBytes,
    identical: d.missing.length + d.extra.length + d.differ.length === 0,
    missing: d.missing.slice(0, 20),
    extra: d.extra.slice(0, 20),
    differ: d.differ.slice(0, 40),
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
