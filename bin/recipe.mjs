#!/usr/bin/env node
// Entry point of the `recipe` CLI. The commands live in local/cli; TypeScript runs through tsx.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../local/cli/main.ts");
process.exitCode = await main(process.argv);
