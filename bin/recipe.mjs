#!/usr/bin/env node
// Entry point of the `recipe` CLI. The commands live in cli/; TypeScript runs through tsx.
import { register } from "tsx/esm/api";

// The project supports Node 24 (LTS) and 22; the AWS SDK's notice about Node versions is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
// Handlers run in process for `recipe run`: keep their structured logs and metrics off the terminal.
process.env.POWERTOOLS_LOG_LEVEL ??= "SILENT";
process.env.POWERTOOLS_METRICS_DISABLED ??= "true";

register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv);
