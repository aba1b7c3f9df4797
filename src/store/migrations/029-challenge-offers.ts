import type { Migration } from "./index.ts";

export const challengeOffers: Migration = {
  version: 29,
  name: "challenge-offers",
  sql: `
-- What the latest digest challenge of each (Mac, user) offered (its
-- algorithms and qop, as digest/offers.ts writes them: "MD5",
-- "MD5,MD5-sess/auth") and the id of the nonce it was sent with: a response
-- is checked against what its own challenge offered, not against the flags of
-- the process that happens to receive it (a rolling restart may have changed
-- them). NULL in rows written before this migration, or by an older process,
-- and a response to another nonce: checked as before (MD5, and MD5-sess where
-- the receiving process offers it).
ALTER TABLE user_sessions ADD COLUMN challenge_nonce TEXT;
ALTER TABLE user_sessions ADD COLUMN challenge_offers TEXT;
`,
};
