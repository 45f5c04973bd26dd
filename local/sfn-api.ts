/**
 * A local Step Functions API (the AWS JSON 1.0 protocol the SDK speaks) for the embedded runtime:
 * StartExecution with the service's name rules (a second start with the same name and input while it
 * runs returns the same execution; a closed one or another input is ExecutionAlreadyExists),
 * DescribeExecution and ListExecutions. Executions persist in a JSON file so `recipe status` can read
 * them after `recipe run` has exited.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { accessKeyOf } from "./iam/s3-requests.ts";

export interface Execution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: string;
  status: "RUNNING" | "SUCCEEDED" | "FAILED" | "ABORTED";
  /** The process that runs it (locally an execution lives in the `recipe run` process that started it). */
  owner?: number;
  startDate: number;
  stopDate?: number;
  output?: string;
  error?: string;
  cause?: string;
}

export interface SfnApi {
  endpoint: string;
  executions: Map<string, Execution>;
  finish(
    executionArn: string,
    result: { status: Execution["status"]; output?: string; error?: string; cause?: string },
  ): void;
  /** Drops an execution's record (`recipe run --fresh`): its name can be started again. */
  forget(executionArn: string): void;
  close(): Promise<void>;
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Loads the recorded executions. One recorded RUNNING whose process is gone (killed, crashed, the
 * machine restarted) is not running: it is ABORTED, so the next `recipe run` starts the run again
 * instead of waiting for an execution no process runs.
 */
export function loadExecutions(file: string | undefined): Map<string, Execution> {
  if (!file || !existsSync(file)) return new Map();
  const executions = JSON.parse(readFileSync(file, "utf8")) as Execution[];
  for (const e of executions) {
    if (e.status === "RUNNING" && e.owner !== process.pid && !alive(e.owner)) {
      Object.assign(e, {
        status: "ABORTED",
        stopDate: Date.now(),
        error: "Local.ProcessGone",
        cause: `the recipe run process (pid ${e.owner ?? "unknown"}) that ran this execution exited (killed or crashed)`,
      });
    }
  }
  return new Map(executions.map((e) => [e.executionArn, e]));
}

export async function startSfnApi(options: {
  file?: string;
  onStart: (execution: Execution) => void;
  /**
   * Checks a call as IAM would (the signing access key, `states:<Action>`, the resource ARN); throws
   * an error named AccessDenied (or UnrecognizedClientException for an unknown key) to refuse it.
   */
  authorize?: (accessKeyId: string | undefined, action: string, resource: string) => void;
}): Promise<SfnApi> {
  const executions = loadExecutions(options.file);
  // Written whole to a file beside it, then renamed over it: a process killed mid-save (a recipe run
  // that is SIGKILLed) leaves the previous registry, never a torn one the next run cannot parse.
  const save = () => {
    if (!options.file) return;
    const partial = `${options.file}.${process.pid}.partial`;
    writeFileSync(partial, JSON.stringify([...executions.values()], null, 2));
    renameSync(partial, options.file);
  };
  if (options.file && existsSync(options.file)) save();
  const fail = (res: import("node:http").ServerResponse, type: string, message: string) => {
    res.writeHead(400, { "content-type": "application/x-amz-json-1.0", "x-amzn-errortype": type });
    res.end(JSON.stringify({ __type: type, message }));
  };
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      const action = String(req.headers["x-amz-target"] ?? "").replace("AWSStepFunctions.", "");
      const p = body ? JSON.parse(body) : {};
      if (options.authorize) {
        // StartExecution and ListExecutions are authorized on the state machine, the others on the execution.
        const resource = String(p.executionArn ?? p.stateMachineArn ?? "*");
        const key = accessKeyOf(req.headers, {});
        try {
          options.authorize(key, `states:${action}`, resource);
        } catch (err) {
          const e = err as Error;
          res.writeHead(e.name === "AccessDenied" ? 400 : 403, {
            "content-type": "application/x-amz-json-1.0",
            "x-amzn-errortype": e.name === "AccessDenied" ? "AccessDeniedException" : e.name,
          });
          res.end(
            JSON.stringify({
              __type: e.name === "AccessDenied" ? "AccessDeniedException" : e.name,
              message: e.message,
            }),
          );
          return;
        }
      }
      const ok = (value: unknown) => {
        res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
        res.end(JSON.stringify(value));
      };
      if (action === "StartExecution") {
        const arn = `${String(p.stateMachineArn).replace(":stateMachine:", ":execution:")}:${p.name}`;
        const existing = executions.get(arn);
        if (existing) {
          if (existing.status === "RUNNING" && existing.input === (p.input ?? "{}"))
            return ok({ executionArn: arn, startDate: existing.startDate / 1000 });
          return fail(res, "ExecutionAlreadyExists", `Execution Already Exists: '${arn}'`);
        }
        const execution: Execution = {
          executionArn: arn,
          stateMachineArn: p.stateMachineArn,
          name: p.name,
          input: p.input ?? "{}",
          status: "RUNNING",
          owner: process.pid,
          startDate: Date.now(),
        };
        executions.set(arn, execution);
        save();
        ok({ executionArn: arn, startDate: execution.startDate / 1000 });
        options.onStart(execution);
        return;
      }
      if (action === "DescribeExecution") {
        const e = executions.get(p.executionArn);
        if (!e) return fail(res, "ExecutionDoesNotExist", `Execution Does Not Exist: '${p.executionArn}'`);
        return ok({
          ...e,
          startDate: e.startDate / 1000,
          stopDate: e.stopDate ? e.stopDate / 1000 : undefined,
        });
      }
      if (action === "ListExecutions") {
        return ok({
          executions: [...executions.values()]
            .filter((e) => !p.stateMachineArn || e.stateMachineArn === p.stateMachineArn)
            .map((e) => ({
              executionArn: e.executionArn,
              stateMachineArn: e.stateMachineArn,
              name: e.name,
              status: e.status,
              startDate: e.startDate / 1000,
            })),
        });
      }
      fail(res, "UnknownOperationException", `${action} is not implemented by the local Step Functions API`);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    executions,
    forget(executionArn) {
      if (executions.delete(executionArn)) save();
    },
    finish(executionArn, result) {
      const e = executions.get(executionArn);
      if (!e) return;
      Object.assign(e, result, { stopDate: Date.now() });
      save();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
