#!/usr/bin/env node
// The `orchard` command. Sources are TypeScript: they run from one bundle,
// dist/orchard.mjs, rebuilt here whenever src/ changed (bin/bundle.js), so a
// fresh clone runs after `npm install` with no build step and no TypeScript
// loader in the process (ORCHARD_RUNTIME=tsx runs the sources through tsx).
import { loadOrchard } from "./bundle.js";

const { main } = await loadOrchard();
await main(process.argv.slice(2));
