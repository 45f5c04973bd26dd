#!/usr/bin/env node
// The CDK app (`npx cdk synth` / `npx cdk deploy`): the stack, checked by cdk-nag's AWS Solutions pack.
import { App, Validations } from "aws-cdk-lib";
import cdkNag from "cdk-nag";
import { settingsFrom } from "../infra/config.ts";
import { acknowledgeNagFindings } from "../infra/nag.ts";
import { RecipePipelineStack } from "../infra/stack.ts";

const app = new App();
const stack = new RecipePipelineStack(app, "RecipePipeline", {
  settings: settingsFrom(app.node),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
acknowledgeNagFindings(stack, new cdkNag.AwsSolutionsChecks());
Validations.of(app).addPlugins(new cdkNag.AwsSolutionsChecks(app));
