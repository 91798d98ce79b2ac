import { Command } from "commander";
import { Runtime } from "../api/runtime.ts";
import { PROTOCOL_VERSION } from "../schema/version.ts";
import type { RuntimeInfo } from "../schema/ops.ts";

interface ModeReport {
  ok: boolean;
  error?: string;
  seconds: number;
}

async function tryMode(mode: "process" | "embedded"): Promise<{ report: ModeReport; info?: RuntimeInfo }> {
  const started = performance.now();
  try {
    const rt = await Runtime.start({ mode });
    try {
      const info = await rt.info();
      return { report: { ok: true, seconds: (performance.now() - started) / 1000 }, info };
    } finally {
      await rt.close();
    }
  } catch (e) {
    return { report: { ok: false, error: (e as Error).message, seconds: (performance.now() - started) / 1000 } };
  }
}

/** `ctsft doctor [--json]`: start the runtime in each local mode and report versions; exit 1
 * when the process mode (the default) does not start. */
export function doctorCommand(): Command {
  return new Command("doctor")
    .summary("check the runtime in every mode")
    .description("Start the runtime in each local mode (process, embedded) and report versions and what failed. Exits 1 when the process mode (the default) does not start.")
    .usage("[--json]")
    .option("--json", "print one JSON report on stdout", false)
    .action(async (f: { json: boolean }) => {
      process.exitCode = await doctor(f.json);
    });
}

async function doctor(json: boolean): Promise<number> {
  const proc = await tryMode("process");
  const emb = await tryMode("embedded");
  const info = proc.info ?? emb.info;
  const report = {
    protocol: PROTOCOL_VERSION,
    runtime: info
      ? { python: info.python, torch: info.torch, transformers: info.transformers, cuda: info.cuda, devices: info.devices, executable: info.executable }
      : null,
    modes: { process: proc.report, embedded: emb.report },
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const lines = [`ctsft protocol v${PROTOCOL_VERSION}`];
    if (info) lines.push(`python ${info.python} · torch ${info.torch} · transformers ${info.transformers} · cuda ${info.cuda ? info.devices.map((d) => d.name).join(", ") : "no"}`);
    for (const [mode, r] of Object.entries(report.modes)) lines.push(`${mode.padEnd(9)} ${r.ok ? "ok" : "FAIL"} (${r.seconds.toFixed(1)} s)${r.error ? `: ${r.error}` : ""}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  return proc.report.ok ? 0 : 1;
}
