/**
 * One line for a user's mistake, never a stack trace: every CLI command's error goes through
 * `describeError`, which says what went wrong, where, and what to do, and picks the exit code
 * (2: bad input or set-up, 1: a failure). `--debug` (or RECIPE_DEBUG=1) adds the stack.
 */
import { ConfigError, InputContractError, InvariantError } from "../core/errors.ts";

export const EXIT_FAILURE = 1;
export const EXIT_INVALID = 2;

/** A mistake the CLI found in what it was given: the message is complete as it is. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface Described {
  message: string;
  code: number;
}

const FILE_ERRORS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EISDIR: "is a directory, not a file",
  ENOTDIR: "a part of the path is not a directory",
};

export function describeError(err: unknown): Described {
  const e = err as Error & { code?: string; path?: string; name?: string; $metadata?: unknown };
  if (e instanceof UsageError || e instanceof ConfigError || e instanceof InputContractError) {
    return { message: e.message, code: EXIT_INVALID };
  }
  if (e?.code && FILE_ERRORS[e.code] && e.path) {
    return { message: `cannot read ${e.path}: ${FILE_ERRORS[e.code]}`, code: EXIT_INVALID };
  }
  if (e?.code === "ECONNREFUSED" || e?.code === "ENOTFOUND") {
    return { message: `cannot connect: ${e.message}`, code: EXIT_FAILURE };
  }
  const text = String(e?.message ?? e);
  if (e?.name === "CredentialsProviderError" || /Could not load credentials/i.test(text)) {
    return {
      message:
        "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) for the account the stack is deployed in",
      code: EXIT_INVALID,
    };
  }
  if (/Region not accepted/i.test(text)) {
    return {
      message: `not a valid AWS region (${text.replace(/^.*region=/, "region=")}): set AWS_REGION, e.g. us-east-1`,
      code: EXIT_INVALID,
    };
  }
  if (/Region is missing/i.test(text)) {
    return {
      message:
        "no AWS region: set AWS_REGION (or AWS_PROFILE with a region) to the region the stack is deployed in",
      code: EXIT_INVALID,
    };
  }
  if (e?.name === "NoSuchBucket") return { message: `bucket not found: ${text}`, code: EXIT_INVALID };
  if (e?.name === "AccessDenied" || e?.name === "AccessDeniedException") {
    return { message: `AWS denied the request: ${text}`, code: EXIT_FAILURE };
  }
  if (e?.$metadata) return { message: `AWS ${e.name}: ${text}`, code: EXIT_FAILURE };
  if (e instanceof InvariantError) {
    return {
      message: `internal error (a bug; rerun with --debug and report it): ${text}`,
      code: EXIT_FAILURE,
    };
  }
  return { message: text, code: EXIT_FAILURE };
}

/** Whether stacks are shown: `--debug` anywhere on the command line, or RECIPE_DEBUG=1. */
export function debugRequested(argv: readonly string[]): boolean {
  return argv.includes("--debug") || process.env.RECIPE_DEBUG === "1";
}
