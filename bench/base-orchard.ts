// --baseline-orchard REV: another git revision's Orchard, run beside this
// checkout's in the same rounds (rows base-<row>), so that a change is
// measured as an A/B on the same machine at the same time, not against a
// run made minutes earlier under other load.
//
// The revision's tree is exported with `git archive` into a temp dir, given
// this checkout's node_modules (a symlink), and bundled by this checkout's
// bin/bundle.js (ensureOrchardBundle) into its own dist/orchard.mjs: the two
// builds differ in src/ only, never in how they are built. The base rows'
// servers are this checkout's bench/server-process.ts with
// ORCHARD_BENCH_BUNDLE naming that bundle (bench/servers.ts).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { ensureOrchardBundle } from "../bin/bundle.js";
import { openStore } from "../src/store/index.ts";
import { seedEnrollments } from "../test/support/apns.ts";

/** The revision asked for, resolved before anything is set up. */
export interface BaseRevision {
  /** As given: HEAD~1, a branch, a hash. */
  rev: string;
  /** The full commit hash. */
  commit: string;
  /** `git describe --always --tags` of the commit. */
  describe: string;
}

/** The revision exported and built. */
export interface BaseOrchard extends BaseRevision {
  /** The exported tree. */
  root: string;
  /** Its bundle, root/dist/orchard.mjs. */
  bundle: string;
  /** Seconds to export and build it. */
  buildS: number;
  /** Its package.json names other dependency versions than this checkout's (it runs on this checkout's node_modules). */
  dependenciesDiffer: boolean;
}

function git(root: string, args: string[]): string {
  return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 20 }).trim();
}

/** Resolves REV in the checkout at `root`; throws with the reason when it names no commit. */
export function resolveBaseRevision(root: string, rev: string): BaseRevision {
  // A revision starting with "-" would be read as an option of git.
  if (rev === "" || rev.startsWith("-")) throw new Error(`--baseline-orchard: ${JSON.stringify(rev)} is not a git revision`);
  let commit: string;
  try {
    commit = git(root, ["rev-parse", "--verify", "--quiet", `${rev}^{commit}`]);
  } catch (err) {
    const why = (err as { stderr?: string }).stderr?.trim().split("\n")[0];
    throw new Error(`--baseline-orchard ${rev}: not a commit of ${root}${why ? ` (${why})` : ""}`);
  }
  return { rev, commit, describe: git(root, ["describe", "--always", "--tags", commit]) };
}

/** `git describe` of the checkout itself, "-dirty" when it has changes: what the base is compared with. */
export function describeTree(root: string): string {
  try {
    return git(root, ["describe", "--always", "--tags", "--dirty"]);
  } catch {
    return "unknown";
  }
}

/**
 * Exports the revision into a temp dir and builds its bundle; throws with
 * the reason (and removes the dir) when it cannot be built.
 */
export function prepareBaseOrchard(root: string, r: BaseRevision): BaseOrchard {
  const t0 = performance.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `orchard-bench-base-${r.commit.slice(0, 12)}-`));
  try {
    const tar = path.join(dir, "tree.tar");
    git(root, ["archive", "--format=tar", "--output", tar, r.commit]);
    const tree = path.join(dir, "tree");
    fs.mkdirSync(tree);
    execFileSync("tar", ["-x", "-f", tar, "-C", tree], { stdio: ["ignore", "ignore", "pipe"] });
    fs.rmSync(tar);
    fs.symlinkSync(fs.realpathSync(path.join(root, "node_modules")), path.join(tree, "node_modules"), "dir");
    let bundle: string | Error;
    try {
      bundle = ensureOrchardBundle(tree);
    } catch (err) {
      bundle = err as Error; // e.g. a revision from before src/ existed
    }
    if (bundle instanceof Error) throw new Error(`--baseline-orchard ${r.rev} (${r.describe}): cannot build it: ${bundle.message}`);
    return {
      ...r,
      root: tree,
      bundle,
      buildS: (performance.now() - t0) / 1000,
      dependenciesDiffer: dependencies(root) !== dependencies(tree),
    };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function dependencies(root: string): string {
  try {
    const p = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
    return JSON.stringify([p.dependencies ?? {}, p.devDependencies ?? {}]);
  } catch {
    return "?";
  }
}

/** Removes the export (the temp dir holding the tree). */
export function removeBaseOrchard(base: BaseOrchard): void {
  fs.rmSync(path.dirname(base.root), { recursive: true, force: true });
}

/** What the bench writes a seeded store with (scale, push, ddm). */
export interface StoreKit {
  openStore: typeof openStore;
  seedEnrollments: typeof seedEnrollments;
}

const kits = new Map<string, Promise<StoreKit>>();

/**
 * The store code of a build: this checkout's, or the base's own, loaded from
 * its tree (the bench runs under tsx). A base row's store is seeded by the
 * base's code, so it holds the schema that build migrates to: an older
 * Orchard refuses a store a newer one migrated.
 */
export function storeKit(base?: BaseOrchard): Promise<StoreKit> {
  if (!base) return Promise.resolve({ openStore, seedEnrollments });
  let kit = kits.get(base.root);
  if (!kit) {
    const load = (file: string) => import(pathToFileURL(path.join(base.root, file)).href);
    kit = (async () => {
      try {
        const [store, apns] = await Promise.all([load("src/store/index.ts"), load("test/support/apns.ts")]);
        if (typeof store.openStore !== "function" || typeof apns.seedEnrollments !== "function")
          throw new Error("no openStore in src/store/index.ts or no seedEnrollments in test/support/apns.ts");
        return { openStore: store.openStore, seedEnrollments: apns.seedEnrollments } as StoreKit;
      } catch (err) {
        throw new Error(`--baseline-orchard ${base.describe}: cannot load its store code to seed a store: ${(err as Error).message}`);
      }
    })();
    kits.set(base.root, kit);
  }
  return kit;
}

/** The name of an Orchard row's --baseline-orchard twin: base-<row>. */
export const BASE_ROW_PREFIX = "base-";

/**
 * The rows in the order a round runs them: each Orchard row and its
 * base-<row> swap places every other round, so that neither build always
 * runs second: in two DDM A/Bs at 100,000 enrollments the row run second
 * was about 5% faster whichever build it was (BENCHMARKS.md, 2026-12-04
 * fourth session).
 */
export function roundOrder<T extends { name: string }>(rows: readonly T[], round: number): T[] {
  const order = [...rows];
  if (round % 2 === 1) return order;
  for (let i = 0; i + 1 < order.length; i++) {
    if (order[i + 1]!.name !== BASE_ROW_PREFIX + order[i]!.name) continue;
    [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
    i++;
  }
  return order;
}
