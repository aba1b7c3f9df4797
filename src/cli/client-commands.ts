/** Placeholder until the client commands land. */
export async function runClientCommand(command: string, _args: string[]): Promise<number> {
  process.stderr.write(`orchard: unknown command ${command}\n`);
  return 2;
}
