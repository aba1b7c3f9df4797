// SCEP (RFC 8894): devices get their identity certificate from the device CA.
export { registerScepRoutes, registerScepApiRoutes, SCEP_CAPABILITIES, MAX_PKI_MESSAGE_BYTES, type ScepDeps } from "./routes.ts";
export { ScepChallenges, challengeHash, type NewChallenge } from "./challenges.ts";
export { ScepService, ScepFailure } from "./service.ts";
