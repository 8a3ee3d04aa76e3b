// Runs inside the lab's workstation namespace (where the hosts are reachable), for bench/fleet.ts:
//   node fleet-runner.js floor|drift|drift-dirty|apply|setup|audit RUNS STACK_FILE
// over every host of the environment in STACK_FILE; prints one JSON line: the wall-clock seconds
// of each run, for all hosts in parallel.
import pLimit from "p-limit";
import { HostSession } from "../src/ssh/session";
import { hostTarget } from "../src/apply/target";
import { applyHosts } from "../src/apply/hosts";
import { selectHosts, type HostOfEnvironment } from "../src/config/environment";
import { loadEnvironment } from "../src/config/stack-file";
import { secretsWithoutPulumi } from "../src/config/secrets";
import { checkHost } from "../src/drift/check";
import { auditHost } from "../src/audit/check";

type Mode = "floor" | "drift" | "drift-dirty" | "apply" | "setup" | "audit";

/** A bare connection that runs `true`, with the tool's key type and ssh2 settings. */
async function floor({ host }: HostOfEnvironment): Promise<{ roundTrips: number; ok: boolean }> {
    const secrets = secretsWithoutPulumi(host.config, host.source, process.env, host.name);
    const session = await HostSession.connect(hostTarget(host.config, secrets).session);
    const result = await session.run("true\n");
    session.close();
    return { roundTrips: 1, ok: result.code === 0 };
}

async function once(mode: Mode, hosts: HostOfEnvironment[]): Promise<{ seconds: number; roundTrips: number; failures: number }> {
    const started = process.hrtime.bigint();
    // The first apply (setup) does real work on every host: a few at a time on this two-core
    // machine, so no host misses its confirm window. The measured modes run all hosts at once.
    const concurrency = mode === "setup" ? 4 : hosts.length;
    let outcomes: { roundTrips: number; ok: boolean }[];
    if (mode === "apply" || mode === "setup") {
        const results = await applyHosts(hosts, { concurrency });
        outcomes = results.map((result) => ({ roundTrips: result.report?.roundTrips ?? 0, ok: result.outcome === "done" }));
    } else if (mode === "floor") {
        const limit = pLimit(concurrency);
        outcomes = await Promise.all(hosts.map((host) => limit(() => floor(host))));
    } else if (mode === "audit") {
        const results = await Promise.all(hosts.map((host) => auditHost(host)));
        outcomes = results.map((result) => ({ roundTrips: result.roundTrips, ok: result.status === "checked" }));
    } else {
        const results = await Promise.all(hosts.map((host) => checkHost(host)));
        outcomes = results.map((result) => ({ roundTrips: result.roundTrips, ok: result.status === (mode === "drift" ? "clean" : "drift") }));
    }
    return {
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
        roundTrips: Math.max(...outcomes.map((outcome) => outcome.roundTrips)),
        failures: outcomes.filter((outcome) => !outcome.ok).length,
    };
}

async function main(): Promise<void> {
    const [mode, runs, file] = process.argv.slice(2);
    const hosts = selectHosts([loadEnvironment({ file })], []);
    const samples = [];
    for (let run = 0; run < Number(runs); run++) samples.push(await once(mode as Mode, hosts));
    process.stdout.write(JSON.stringify(samples) + "\n");
}

main().catch((error: Error) => {
    console.error(error.message);
    process.exit(1);
});
