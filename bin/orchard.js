#!/usr/bin/env node
// The `orchard` command. Sources are TypeScript loaded through tsx, so a fresh
// clone runs after `npm install` with no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
await main(process.argv.slice(2));
