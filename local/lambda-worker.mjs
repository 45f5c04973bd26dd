// One Lambda execution environment of the embedded runtime: a worker thread with the function's own
// environment (its role's credentials among it) and heap limit, which imports the handler's bundle
// once (the cold start) and then serves invocations one at a time, as Lambda does.
import { parentPort, workerData } from "node:worker_threads";

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
parentPort.on("message", async ({ id, event }) => {
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
