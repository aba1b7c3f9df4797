import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { FastifyInstance, FastifyReply } from "fastify";

// The web console (docs/console.md): the client in src/console/ is bundled
// in memory by esbuild on the first request and kept for the life of the
// process, so there is no build step to remember. It is a client of the /v1
// API like any other (signed in with a session cookie); these routes only
// hand out its page, script and style sheet, which hold no data and no secret.

/** src/console/main.tsx, from src/http/ (run through tsx) or from dist/ (the bundle orchard serve runs, bin/bundle.js). */
const ENTRY = [
  path.join(import.meta.dirname, "..", "console", "main.tsx"),
  path.join(import.meta.dirname, "..", "src", "console", "main.tsx"),
].find((file) => fs.existsSync(file))!;

/**
 * Strict: only this origin's script and style files run or apply; no inline
 * script or style, no plugin, no framing (clickjacking), no form posted
 * elsewhere. Every value a device sends is escaped by the components (JSX);
 * this is the second wall should one ever slip through.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export interface ConsoleBundle {
  js: Buffer;
  css: Buffer;
  /** Short hash of both, in the asset URLs so a new version is never served from a stale cache. */
  version: string;
}

let bundling: Promise<ConsoleBundle> | undefined;

/** The console's script and style sheet, built once per process (a failed build is retried at the next request). */
export function consoleBundle(): Promise<ConsoleBundle> {
  bundling ??= bundle().catch((err: unknown) => {
    bundling = undefined;
    throw err;
  });
  return bundling;
}

async function bundle(): Promise<ConsoleBundle> {
  // esbuild is loaded with the first console request, not with every server.
  const { build } = await import("esbuild");
  const out = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    outdir: "/ui",
    entryNames: "app",
    format: "esm",
    target: "es2022",
    platform: "browser",
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    legalComments: "none",
    logLevel: "silent",
  });
  const file = (ext: string) => {
    const f = out.outputFiles.find((o) => o.path.endsWith(ext));
    return Buffer.from(f ? f.contents : new Uint8Array());
  };
  const js = file(".js");
  const css = file(".css");
  const version = createHash("sha256").update(js).update(css).digest("hex").slice(0, 12);
  return { js, css, version };
}

/** The one page: no inline script or style, only the two files. */
export function consolePage(version: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Orchard</title>
<link rel="stylesheet" href="/ui/app.css?v=${version}">
<script type="module" src="/ui/app.js?v=${version}"></script>
</head>
<body>
<noscript>The Orchard console needs JavaScript.</noscript>
<div id="app"></div>
</body>
</html>
`;
}

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header("content-security-policy", CONSOLE_CSP)
    .header("x-content-type-options", "nosniff")
    .header("x-frame-options", "DENY")
    .header("referrer-policy", "no-referrer")
    .header("cross-origin-opener-policy", "same-origin")
    .header("cross-origin-resource-policy", "same-origin");
}

/** GET / (to the console), /ui (the page), /ui/app.js and /ui/app.css: no sign-in needed, nothing in them is a secret. */
export function registerConsoleRoutes(app: FastifyInstance): void {
  app.get("/", async (_req, reply) => reply.redirect("/ui/", 302));
  app.get("/ui", async (_req, reply) => reply.redirect("/ui/", 301));
  app.get("/ui/", async (_req, reply) => {
    const { version } = await consoleBundle();
    return secure(reply).header("cache-control", "no-store").type("text/html; charset=utf-8").send(consolePage(version));
  });
  for (const [name, type] of [
    ["app.js", "text/javascript; charset=utf-8"],
    ["app.css", "text/css; charset=utf-8"],
  ] as const) {
    app.get<{ Querystring: { v?: string } }>(`/ui/${name}`, async (req, reply) => {
      const b = await consoleBundle();
      // Versioned URLs are immutable; an unversioned one is checked each time.
      const cache = req.query.v === b.version ? "public, max-age=31536000, immutable" : "no-cache";
      return secure(reply)
        .header("cache-control", cache)
        .type(type)
        .send(name === "app.js" ? b.js : b.css);
    });
  }
}
