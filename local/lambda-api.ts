/**
 * The local Lambda control-plane API, as much of it as the stack calls: GetAccountSettings
 * (`GET /2016-08-19/account-settings/`), which validate-config reads to fit the Distributed Maps under
 * the account's concurrency. It answers with the local account's limit (the one the local Lambda
 * service enforces, local/lambda-host.ts) and checks the caller's `lambda:GetAccountSettings` as IAM
 * would.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { accessKeyOf } from "./iam/s3-requests.ts";

export interface LambdaApi {
  endpoint: string;
  close(): Promise<void>;
}

export async function startLambdaApi(options: {
  /** The account's concurrent executions (ConcurrentExecutions; nothing is reserved locally). */
  concurrency: number;
  authorize?: (accessKeyId: string | undefined, action: string, resource: string) => void;
}): Promise<LambdaApi> {
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown, type?: string) => {
      res.writeHead(status, {
        "content-type": "application/json",
        ...(type ? { "x-amzn-errortype": type } : {}),
      });
      res.end(JSON.stringify(body));
    };
    req.resume();
    req.on("end", () => {
      if (req.method !== "GET" || !/^\/2016-08-19\/account-settings\/?$/.test(req.url?.split("?")[0] ?? "")) {
        send(
          404,
          { message: `the local Lambda API has no ${req.method} ${req.url}` },
          "ResourceNotFoundException",
        );
        return;
      }
      try {
        options.authorize?.(accessKeyOf(req.headers, {}), "lambda:GetAccountSettings", "*");
      } catch (err) {
        const e = err as Error;
        const type = e.name === "AccessDenied" ? "AccessDeniedException" : e.name;
        send(403, { Type: "User", message: e.message }, type);
        return;
      }
      send(200, {
        AccountLimit: {
          ConcurrentExecutions: options.concurrency,
          UnreservedConcurrentExecutions: options.concurrency,
          CodeSizeUnzipped: 262144000,
          CodeSizeZipped: 52428800,
          TotalCodeSize: 80530636800,
        },
        AccountUsage: { FunctionCount: 0, TotalCodeSize: 0 },
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
