/** Streams and environment of one CLI run (injectable for tests and embedding). */
export interface MainIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream | NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Aborts the run (the binary wires SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
}
