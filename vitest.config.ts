import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    // A limit for a hang, not a speed target: integration tests run whole sample runs, which take 20-60 s
    // on an idle 2-core machine and several times that on a busy one (benchmarks hold the speed targets).
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: "forks",
    setupFiles: ["tests/helpers/fast-check-seed.ts"],
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      POWERTOOLS_LOG_LEVEL: "SILENT",
      POWERTOOLS_METRICS_DISABLED: "true",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_REGION: "us-east-1",
    },
  },
});
