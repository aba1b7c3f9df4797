// SCEP (RFC 8894): devices get their identity certificate from the device CA.
export { ScepChallenges, challengeHash, type NewChallenge } from "./challenges.ts";
export { ScepService, ScepFailure, SCEP_CAPABILITIES } from "./service.ts";
