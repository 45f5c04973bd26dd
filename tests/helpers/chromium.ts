/**
 * Renders a page in headless Chromium (Debian's `chromium`) and reports what a reader's browser
 * would show: console errors and uncaught exceptions, every image and whether it loaded, the widest
 * element, and the headings. Talks the DevTools protocol over a pipe (--remote-debugging-pipe), so
 * it needs no port, no WebSocket and no browser-automation package.
 */
import { spawn, spawnSync } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { pathToFileURL } from "node:url";

export interface Rendered {
  errors: string[];
  images: { src: string; ok: boolean }[];
  widest: { right: number; tag: string };
  scrollWidth: number;
  headings: string[];
}

/** The Chromium binary, or null when none is installed. */
export function chromiumPath(): string | null {
  for (const name of ["chromium", "chromium-browser"]) {
    const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  }
  return null;
}

const CHECK = `(async () => {
  for (const d of document.querySelectorAll("details")) d.open = true;
  await Promise.all([...document.images].map((i) => i.decode().catch(() => undefined)));
  const images = [...document.images].map((i) => ({ src: i.src.slice(0, 48), ok: i.complete && i.naturalWidth > 0 }));
  let widest = { right: 0, tag: "" };
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.right > widest.right) widest = { right: r.right, tag: el.tagName.toLowerCase() };
  }
  return {
    images,
    widest,
    scrollWidth: document.documentElement.scrollWidth,
    headings: [...document.querySelectorAll("h1, h2, h3")].map((h) => h.textContent.trim()),
  };
})()`;

export async function renderInChromium(file: string, width = 1280): Promise<Rendered> {
  const binary = chromiumPath();
  if (!binary) throw new Error("chromium is not installed");
  const child = spawn(
    binary,
    [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--remote-debugging-pipe",
      `--window-size=${width},900`,
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
  );
  const toBrowser = child.stdio[3] as Writable;
  const fromBrowser = child.stdio[4] as Readable;
  let stderr = "";
  child.stderr!.on("data", (c) => (stderr += c));
  const pending = new Map<number, { ok: (v: unknown) => void; fail: (e: Error) => void }>();
  const listeners: ((m: { method: string; params: Record<string, unknown>; sessionId?: string }) => void)[] =
    [];
  let buffer = "";
  fromBrowser.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    for (let at = buffer.indexOf("\0"); at >= 0; at = buffer.indexOf("\0")) {
      const msg = JSON.parse(buffer.slice(0, at));
      buffer = buffer.slice(at + 1);
      if (msg.id !== undefined) {
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error) p?.fail(new Error(`${msg.error.message} (${JSON.stringify(msg.error)})`));
        else p?.ok(msg.result);
      } else for (const l of listeners) l(msg);
    }
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  let nextId = 0;
  const send = <T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<T> =>
    new Promise<T>((ok, fail) => {
      const id = ++nextId;
      pending.set(id, { ok: ok as (v: unknown) => void, fail });
      toBrowser.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  const errors: string[] = [];
  try {
    const { targetId } = await send<{ targetId: string }>("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await send<{ sessionId: string }>("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    listeners.push((m) => {
      if (m.sessionId !== sessionId) return;
      if (m.method === "Runtime.consoleAPICalled" && m.params.type === "error")
        errors.push(`console.error: ${JSON.stringify(m.params.args)}`);
      if (m.method === "Runtime.exceptionThrown")
        errors.push(`exception: ${JSON.stringify(m.params.exceptionDetails)}`);
      if (m.method === "Log.entryAdded" && (m.params.entry as { level?: string }).level === "error")
        errors.push(`log: ${JSON.stringify(m.params.entry)}`);
    });
    for (const domain of ["Runtime", "Log", "Page"]) await send(`${domain}.enable`, {}, sessionId);
    await send(
      "Emulation.setDeviceMetricsOverride",
      { width, height: 900, deviceScaleFactor: 1, mobile: false },
      sessionId,
    );
    const loaded = new Promise<void>((resolve) =>
      listeners.push((m) => {
        if (m.sessionId === sessionId && m.method === "Page.loadEventFired") resolve();
      }),
    );
    await send("Page.navigate", { url: pathToFileURL(file).href }, sessionId);
    await loaded;
    const { result } = await send<{ result: { value: Omit<Rendered, "errors"> } }>(
      "Runtime.evaluate",
      { expression: CHECK, awaitPromise: true, returnByValue: true },
      sessionId,
    );
    return { errors, ...result.value };
  } catch (err) {
    throw new Error(`${(err as Error).message}\nchromium said: ${stderr.slice(-2000)}`);
  } finally {
    child.kill();
    await exited;
  }
}
