import { parseArgs } from "node:util";
import { setup } from "../api/setup.ts";

/** `ctsft setup [--force]`: idempotent; seconds and no network when already done. */
export async function setupCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { force: { type: "boolean", default: false } } });
  const python = await setup({ force: values.force });
  process.stdout.write(`${python}\n`);
  return 0;
}
