import { spawn } from "node:child_process";
import { Command } from "commander";
import { runtimeEnv, setup } from "../api/setup.ts";

/** `ctsft ray ARGS…`: Ray's own command line (`ray start`, `ray status`, `ray stop`) run by the
 * runtime's Python with the Ray extra on PYTHONPATH (installed first if missing, as
 * `ctsft setup --with ray` does), so a node started this way runs workers that can import the
 * runtime, torch and Ray: what the Ray executor needs on every node. Exits with Ray's exit code. */
export function rayCommand(): Command {
  return new Command("ray")
    .summary("Ray's own CLI (ray start, ray status, …) in the runtime's environment with the Ray extra")
    .description(
      "Run Ray's command line with the runtime's Python and the Ray extra (installed first if missing), " +
        "e.g. `ctsft ray start --head --port 6379` on the head node and `ctsft ray start --address HEAD:6379` on the others: " +
        "their workers can then import the runtime, which the Ray executor (`executor: { kind: ray }`) needs.",
    )
    .usage("<ray arguments…>")
    .argument("<args...>", "passed to `ray` unchanged")
    // Everything after the first argument is Ray's, `--`, `-h` and `-V` included (the root
    // program reads its own options only before the command: enablePositionalOptions).
    .passThroughOptions()
    .allowUnknownOption()
    .action(async (args: string[]) => {
      const env = await setup({ with: ["ray"] });
      // Not PYTHONSAFEPATH: the processes this starts (raylet, workers, jobs) run users' scripts,
      // which may import modules beside them.
      const { PYTHONSAFEPATH: _, ...childEnv } = runtimeEnv({}, { pythonPath: env.pythonPath });
      const child = spawn(env.python, ["-m", "ray.scripts.scripts", ...args], { stdio: "inherit", env: childEnv });
      for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
      process.exitCode = await new Promise<number>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
    });
}
