import { envName, SERVE_FLAGS } from "../config.ts";

// `orchard serve --help` and the README's flag table, both from the table
// the parser reads (src/config.ts SERVE_FLAGS), so neither can drift from it.

interface FlagInfo {
  name: string;
  arg?: string;
  shown: string;
  help: string;
}

function flags(): FlagInfo[] {
  return Object.entries(SERVE_FLAGS).map(([name, f]) => {
    const spec = f as { type: string; default?: string | boolean; arg?: string; shown?: string; help: string };
    const natural =
      spec.default === false ? "off" : spec.default === "" ? "empty" : spec.default === undefined ? "none" : `\`${String(spec.default)}\``;
    return { name, arg: spec.arg, shown: spec.shown ?? natural, help: spec.help };
  });
}

/** `orchard serve --help`: each flag with its default, environment variable and help. */
export function serveHelp(): string {
  const plain = (s: string) => s.replaceAll("`", "");
  const lines = ["usage: orchard serve [flags]", "", "Every flag can also be given as its environment variable.", ""];
  for (const f of flags()) {
    lines.push(`  --${f.name}${f.arg ? ` ${f.arg}` : ""}`);
    lines.push(`      ${plain(f.help)}`);
    lines.push(`      default: ${plain(f.shown)}; env: ${envName(f.name)}`);
  }
  lines.push("", "See README.md (flags), docs/reliability.md (limits) and docs/operations.md (running it).", "");
  return lines.join("\n");
}

/** The README's flag table, header included (test/readme-flags.test.ts keeps them equal). */
export function readmeFlagTable(): string {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  const rows = flags().map((f) => `| \`--${f.name}${f.arg ? ` ${cell(f.arg)}` : ""}\` | ${cell(f.shown)} | ${cell(f.help)} |`);
  return ["| flag | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}
