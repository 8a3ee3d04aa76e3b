// Runs inside the lab's workstation namespace (where the hosts are reachable), for bench/fleet.ts:
//   node fleet-runner.js floor|drift|drift-dirty|apply|setup RUNS STACK_FILE...
// prints one JSON line: the wall-clock seconds of each run, for all hosts in parallel.
import pLimit from "p-limit";
import { HostSession } from "../src/ssh/session";
import { hostTarget } from "../src/apply/target";
import { applyHost } from "../src/apply/engine";
import { loadStackConfig } from "../src/config/stack-file";
import { secretsWithoutPulumi } from "../src/config/secrets";
import { checkStack } from "../src/drift/check";
import { renderHost } from "../src/render/host";
import { prepareRenderInput } from "../src/render/prepare";

type Mode = "floor" | "drift" | "drift-dirty" | "apply" | "setup";

async function once(mode: Mode, files: string[]): Promise<{ seconds: number; roundTrips: number; failures: number }> {
    const started = process.hrtime.bigint();
    // The first apply (setup) does real work on every host: a few at a time on this two-core
    // machine, so no host misses its confirm window. The measured modes run all hosts at once.
    const limit = pLimit(mode === "setup" ? 4 : files.length);
    const outcomes = await Promise.all(
        files.map((file) => limit(async () => {
            const loaded = loadStackConfig({ file });
            const secrets = secretsWithoutPulumi(loaded.config, loaded.source);
            if (mode === "floor") {
                // The floor: a bare connection that runs `true`, with the tool's key type and ssh2 settings.
                const session = await HostSession.connect(hostTarget(loaded.config, secrets).session);
                const result = await session.run("true\n");
                session.close();
                return { roundTrips: 1, ok: result.code === 0 };
            }
            if (mode === "drift" || mode === "drift-dirty") {
                const result = await checkStack({ file });
                return { roundTrips: result.roundTrips, ok: result.status === (mode === "drift" ? "clean" : "drift") };
            }
            const input = await prepareRenderInput(loaded.name, loaded.config, { source: loaded.source });
            const report = await applyHost(hostTarget(loaded.config, secrets), renderHost(input), secrets, { renderedForOpenssh: input.facts.openssh.join(".") });
            return { roundTrips: report.roundTrips, ok: true };
        })),
    );
    return {
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
        roundTrips: Math.max(...outcomes.map((outcome) => outcome.roundTrips)),
        failures: outcomes.filter((outcome) => !outcome.ok).length,
    };
}

async function main(): Promise<void> {
    const [mode, runs, ...files] = process.argv.slice(2);
    const samples = [];
    for (let run = 0; run < Number(runs); run++) samples.push(await once(mode as Mode, files));
    process.stdout.write(JSON.stringify(samples) + "\n");
}

main().catch((error: Error) => {
    console.error(error.message);
    process.exit(1);
});
