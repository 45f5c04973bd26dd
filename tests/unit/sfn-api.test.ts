/**
 * The local Step Functions API's execution registry (executions.json) when `recipe run` is killed:
 * what the next run and `recipe status` read. Found by npm run chaos.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Execution, loadExecutions } from "../../local/sfn-api.ts";

const ARN = "arn:aws:states:us-east-1:000000000000:execution:RecipePipeline-run:r1";

function registry(status: Execution["status"], owner?: number): string {
  const dir = mkdtempSync(join(tmpdir(), "recipe-sfn-"));
  const file = join(dir, "executions.json");
  const e: Execution = {
    executionArn: ARN,
    stateMachineArn: "arn:aws:states:us-east-1:000000000000:stateMachine:RecipePipeline-run",
    name: "r1",
    input: "{}",
    status,
    owner,
    startDate: 1,
  };
  writeFileSync(file, JSON.stringify([e], null, 2));
  return file;
}

/** A pid no process has: a child that has exited and been reaped. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(child.stdout);
}

describe("the local execution registry", () => {
  it("a process killed while it saves the registry leaves the previous one readable", () => {
    const file = registry("SUCCEEDED");
    // The child saves the registry (its start rewrites it) and is SIGKILLed halfway through the write.
    const script = `
      import fs from "node:fs";
      import { syncBuiltinESMExports } from "node:module";
      const write = fs.writeFileSync;
      fs.writeFileSync = (path, data, ...rest) => {
        write(path, String(data).slice(0, String(data).length / 2), ...rest);
        process.kill(process.pid, "SIGKILL");
      };
      syncBuiltinESMExports();
      const { startSfnApi } = await import(${JSON.stringify(join(process.cwd(), "local", "sfn-api.ts"))});
      await startSfnApi({ file: ${JSON.stringify(file)}, onStart: () => undefined });
    `;
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script]);

    expect(child.signal).toBe("SIGKILL");
    expect([...loadExecutions(file).values()].map((e) => [e.name, e.status])).toEqual([["r1", "SUCCEEDED"]]);
  });

  it("reads an execution whose recipe process is gone as ABORTED, in recipe status as in the next run", async () => {
    const file = registry("RUNNING", deadPid());
    const { statusCommand } = await import("../../cli/run.ts");
    let out = "";

    const code = await statusCommand(
      "r1",
      { dataDir: join(file, "..") },
      (t) => (out += t),
      (t) => (out += t),
    );

    expect(out).toMatch(/^run r1: ABORTED \(Local\.ProcessGone\)/);
    expect(code).toBe(1);
    expect(JSON.parse(readFileSync(file, "utf8"))[0].status).toBe("RUNNING"); // status only reads
  });
});
