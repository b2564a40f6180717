import type { S3Client } from "@aws-sdk/client-s3";

/** Counters filled by {@link countAttempts}. */
export interface AttemptCounter {
  /** Commands sent through the client (each counted once, however many attempts it took). */
  commands: number;
  /** HTTP attempts made by the SDK (first tries and retries). */
  attempts: number;
  /** attempts - commands: the SDK's retries. */
  readonly retries: number;
}

/**
 * Adds two middlewares to `client`: one outside the SDK's retry loop (counts commands) and one
 * inside it (counts attempts), so `retries` is the number of SDK retries actually made.
 */
export function countAttempts(client: S3Client): AttemptCounter {
  const c = {
    commands: 0,
    attempts: 0,
    get retries() {
      return c.attempts - c.commands;
    },
  };
  client.middlewareStack.add(
    (next) => async (args) => {
      c.commands++;
      return next(args);
    },
    { step: "initialize", name: "reliabilityCountCommands", priority: "high" },
  );
  // The retry middleware lives in the finalizeRequest step; "deserialize" runs once per attempt.
  client.middlewareStack.add(
    (next) => async (args) => {
      c.attempts++;
      return next(args);
    },
    { step: "deserialize", name: "reliabilityCountAttempts", priority: "low" },
  );
  return c;
}
