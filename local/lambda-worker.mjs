// One Lambda execution environment of the embedded runtime: a worker thread with the function's own
// environment (its role's credentials among it) and heap limit, which imports the handler's bundle
// once (the cold start) and then serves invocations one at a time, as Lambda does.
import { ClientRequest } from "node:http";
import { parentPort, workerData } from "node:worker_threads";

// `npm run chaos` only: an invocation may carry `crashAfter` (local/faults.ts), and the environment
// then exits right after sending that many HTTP requests (S3 reads and writes), as a Lambda
// environment whose process dies mid-invocation (the host reports Runtime.ExitError).
let crashIn = 0;
const end = ClientRequest.prototype.end;
ClientRequest.prototype.end = function (...args) {
  const out = end.apply(this, args);
  if (crashIn > 0 && --crashIn === 0) process.exit(1);
  return out;
};

let handle;
try {
  ({ handle } = await import(workerData.handlerUrl));
  if (typeof handle !== "function") throw new Error(`${workerData.handlerUrl} exports no handle()`);
} catch (err) {
  parentPort.postMessage({
    init: false,
    name: "Runtime.ImportModuleError",
    message: String(err?.stack ?? err),
  });
  process.exit(1);
}
parentPort.on("message", async ({ id, event, crashAfter }) => {
  crashIn = crashAfter ?? 0;
  try {
    const result = await handle(JSON.parse(event));
    parentPort.postMessage({ id, ok: true, result: JSON.stringify(result ?? null) });
  } catch (err) {
    parentPort.postMessage({
      id,
      ok: false,
      name: err?.name ?? "Error",
      message: String(err?.message ?? err),
    });
  }
});
parentPort.postMessage({ init: true });
