// Types of bin/bundle.js, for the bench and the tests (TypeScript) that use it.
export const ROOT: string;
export function bundlePath(root?: string): string;
export function sourceStamp(root?: string): string;
export function bundleStamp(file: string): string | undefined;
export function bundle(o: { root?: string; entry: string | { contents: string }; outfile: string; stamp?: string; external?: string[] }): Promise<void>;
export function buildOrchard(root?: string): Promise<void>;
export function ensureOrchardBundle(root?: string): string | Error;
export function loadOrchard(root?: string): Promise<{ main(argv: string[]): Promise<void> }>;
