import { webcrypto } from "node:crypto";
import * as pkijs from "pkijs";

// One explicit pkijs engine over Node's WebCrypto, passed to every pkijs call,
// so nothing depends on (or changes) pkijs's process-global engine.
export const cmsEngine = new pkijs.CryptoEngine({
  name: "nodeEngine",
  crypto: webcrypto as unknown as pkijs.CryptoEngineParameters["crypto"],
});
