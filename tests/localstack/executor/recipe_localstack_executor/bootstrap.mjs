// One Lambda execution environment on the host, for LocalStack's `recipe-host` executor: the part
// of a Lambda container's runtime-init. The supervisor listens for LocalStack's `POST /invoke`, runs
// each invocation in a worker process that loaded the handler once (warm starts), and posts the
// result or error back to LocalStack's executor endpoint. As in Lambda: an invocation that outlives
// the function's timeout is killed and answered with `Sandbox.Timedout`; the heap is capped at the
// function's memory size; a response above 6 MB is an error; a crash answers `Runtime.ExitError`, and
// the next invocation starts a fresh worker (a cold start).
import { fork } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

if (process.argv[2] === "worker") runWorker();
else runSupervisor();

function errorBody(err) {
  return {
    errorType: err?.name ?? "Error",
    errorMessage: err?.message ?? String(err),
    stackTrace: String(err?.stack ?? "")
      .split("\n")
      .slice(1)
      .map((l) => l.trim()),
  };
}

function runWorker() {
  const [file, exportName] = (() => {
    const handler = process.env._HANDLER ?? "index.handler";
    const dot = handler.lastIndexOf(".");
    const base = join(process.env.LAMBDA_TASK_ROOT, handler.slice(0, dot));
    const found = [".mjs", ".js", ".cjs"].map((x) => base + x).find((f) => existsSync(f));
    return [found ?? `${base}.js`, handler.slice(dot + 1)];
  })();
  let handler;
  import(pathToFileURL(file).href)
    .then((mod) => {
      handler = mod[exportName] ?? mod.default?.[exportName];
      if (typeof handler !== "function")
        throw Object.assign(new Error(`${file} does not export a function ${exportName}`), {
          name: "Runtime.HandlerNotFound",
        });
      process.send({ type: "ready" });
    })
    .catch((err) => process.send({ type: "init-error", error: errorBody(err) }));
  process.on("message", async (m) => {
    if (m.type !== "invoke") return;
    const context = {
      awsRequestId: m.id,
      invokedFunctionArn: m.arn,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, m.deadline - Date.now()),
    };
    try {
      const value = await handler(JSON.parse(m.payload || "null"), context);
      process.send({ type: "result", id: m.id, body: JSON.stringify(value ?? null) });
    } catch (err) {
      process.send({ type: "error", id: m.id, error: errorBody(err) });
    }
  });
}

function runSupervisor() {
  const endpoint = process.env.LOCALSTACK_RUNTIME_ENDPOINT;
  const timeoutS = Number(process.env.AWS_LAMBDA_FUNCTION_TIMEOUT ?? 3);
  const memoryMb = Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? 128);
  const post = async (path, body) => {
    const res = await fetch(`${endpoint}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    await res.arrayBuffer();
  };
  let worker = null;
  let ready = null;
  let current = null; // { id, timer }
  // The invocation's output goes to LocalStack (its CloudWatch Logs) before the result, as the
  // runtime-init sends it; everything also goes to this environment's log file.
  const answer = async (path, body) => {
    const c = current;
    current = null;
    if (!c) return;
    clearTimeout(c.timer);
    await post(`/invocations/${c.id}/logs`, { logs: c.logs.join("") }).catch((e) => console.error(e));
    await post(`/invocations/${c.id}/${path}`, body).catch((e) => console.error(e));
  };
  const capture = (chunk) => {
    process.stdout.write(chunk);
    current?.logs.push(chunk.toString("utf8"));
  };
  const startWorker = () => {
    const w = fork(process.argv[1], ["worker"], {
      execArgv: [`--max-old-space-size=${Math.max(64, Math.floor(memoryMb * 0.9))}`],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    w.stdout.on("data", capture);
    w.stderr.on("data", capture);
    // A message to a worker that is being killed fails asynchronously; that must not take the
    // supervisor down (its exit answers the invocation).
    w.on("error", (err) => console.error(JSON.stringify({ level: "WARN", message: String(err) })));
    worker = w;
    ready = new Promise((resolve, reject) => {
      w.on("message", (m) => {
        if (m.type === "ready") resolve();
        else if (m.type === "init-error") reject(m.error);
        else if (current && m.id === current.id) {
          if (m.type === "result") {
            if (Buffer.byteLength(m.body) > MAX_RESPONSE_BYTES)
              void answer("error", {
                errorType: "Function.ResponseSizeTooLarge",
                errorMessage: `Response payload size (${Buffer.byteLength(m.body)} bytes) exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).`,
              });
            else void answer("response", m.body);
          } else void answer("error", m.error);
        }
      });
      w.on("exit", (code, signal) => {
        if (worker === w) worker = null;
        reject({ errorType: "Runtime.ExitError", errorMessage: `Runtime exited (${signal ?? code})` });
        if (current && current.worker === w)
          void answer("error", {
            errorType: "Runtime.ExitError",
            errorMessage: `RequestId: ${current.id} Error: Runtime exited with error: ${signal ?? `exit status ${code}`}`,
          });
      });
    });
    ready.catch(() => {});
    return ready;
  };

  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", async () => {
      if (req.method !== "POST" || req.url !== "/invoke") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200).end();
      const inv = JSON.parse(body);
      const id = inv["invoke-id"];
      if (!worker) startWorker();
      const w = worker;
      try {
        await ready;
      } catch (err) {
        current = { id, timer: null, worker: w, logs: [] };
        await answer("error", err);
        return;
      }
      const deadline = Date.now() + timeoutS * 1000;
      current = {
        id,
        worker: w,
        logs: [],
        timer: setTimeout(() => {
          // The next invocation must not reach this process, which may not have exited yet.
          if (worker === w) worker = null;
          w.kill("SIGKILL");
          void answer("error", {
            errorType: "Sandbox.Timedout",
            errorMessage: `RequestId: ${id} Error: Task timed out after ${timeoutS.toFixed(2)} seconds`,
          });
        }, timeoutS * 1000),
      };
      try {
        w.send({ type: "invoke", id, arn: inv["invoked-function-arn"], payload: inv.payload, deadline });
      } catch (err) {
        if (worker === w) worker = null;
        await answer("error", {
          errorType: "Runtime.ExitError",
          errorMessage: `RequestId: ${id} Error: ${err}`,
        });
      }
    });
  });
  // LocalStack stops environments when it stops; if it is killed instead, go with it.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      worker?.kill("SIGKILL");
      process.exit(0);
    }
  }, 500).unref();
  server.listen(Number(process.env.RECIPE_EXECUTOR_PORT), process.env.RECIPE_EXECUTOR_HOST, async () => {
    try {
      await startWorker();
      await post(`/status/${process.env.LOCALSTACK_RUNTIME_ID}/ready`, {});
    } catch (err) {
      await post(`/status/${process.env.LOCALSTACK_RUNTIME_ID}/error`, err);
      process.exit(1);
    }
  });
}
