// A real browser for the console's tests: Debian's chromium driven by
// playwright-core (no browser download), headless, with a fresh profile each
// launch. CI installs chromium (.ci/run) as it installs scep.
import fs from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env.ORCHARD_CHROMIUM ?? "/usr/bin/chromium";

export interface TestBrowser {
  browser: Browser;
  /** A new context (cookies of its own) and page; `problems` collects page errors, CSP reports and dialogs. */
  page(o?: { width?: number; height?: number }): Promise<{ context: BrowserContext; page: Page; problems: string[] }>;
  close(): Promise<void>;
}

export function hasChromium(): boolean {
  return fs.existsSync(CHROMIUM);
}

export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    // launch() gives every browser a fresh, temporary user-data dir of its own (removed at close).
  });
  return {
    browser,
    async page(o = {}) {
      const context = await browser.newContext({ viewport: { width: o.width ?? 1280, height: o.height ?? 900 } });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
      page.on("dialog", (d) => {
        // confirm() is the console's own (destructive actions): accepted. Anything else (alert, prompt) is a problem.
        if (d.type() === "confirm") return void d.accept();
        problems.push(`dialog ${d.type()}: ${d.message()}`);
        void d.dismiss();
      });
      page.on("console", (m) => {
        if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
      });
      return { context, page, problems };
    },
    async close() {
      await browser.close();
    },
  };
}
