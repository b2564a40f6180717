export { FaultProxy, FAULT_KINDS, prng } from "./fault-proxy.js";
export type {
  FaultKind,
  FaultProxyOptions,
  FaultProxyStats,
  FaultDecision,
  ProxyRequestInfo,
} from "./fault-proxy.js";
export { classifyS3Request } from "./classify.js";
export type { S3Operation } from "./classify.js";
export { countAttempts } from "./attempts.js";
export type { AttemptCounter } from "./attempts.js";
