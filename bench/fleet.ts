// Drift checks and applies of N lab hosts in parallel, beside the floor: N bare SSH connections
// that run `true` (same key type, same ssh2 settings). Targets: drift within 1.5x of the floor.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execArgv, labDown, labUp, type LabState } from "../src/lab/lab";
import { labStackConfig } from "../src/lab/stacks";
import { stringify } from "yaml";
import { writeFileSync } from "node:fs";
import { summarize, type Figure } from "./stats";

interface Sample {
    seconds: number;
    roundTrips: number;
    failures: number;
}

function runner(state: LabState, mode: string, runs: number, files: string[]): Sample[] {
    const workstation = state.clients.find((client) => client.name === "workstation")!;
    const [command, ...args] = execArgv(workstation, ["node", join(__dirname, "fleet-runner.js"), mode, String(runs), ...files]);
    const result = spawnSync(command, args, { encoding: "utf8", timeout: 900_000 });
    if (result.status !== 0) throw new Error(`fleet-runner ${mode}: ${result.stderr}`);
    const samples = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as Sample[];
    if (samples.some((sample) => sample.failures > 0)) throw new Error(`fleet-runner ${mode}: some hosts failed: ${result.stdout}`);
    return samples;
}

export async function benchFleet(sizes = [1, 5, 20], runs = 3): Promise<Figure[]> {
    const figures: Figure[] = [];
    const dir = mkdtempSync(join(tmpdir(), "mor-harden-bench-"));
    const prefix = `mhf${process.pid % 100000}-`;
    const stop = () => {
        labDown(dir, prefix);
        rmSync(dir, { recursive: true, force: true });
    };
    // Interrupted (Ctrl-C, a CI timeout): the lab goes too.
    const onSignal = () => (stop(), process.exit(130));
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
        const state = await labUp(dir, Math.max(...sizes), prefix);
        const files = state.hosts.map((host) => {
            const path = join(dir, "stacks", host.name, "Pulumi.lab.yaml");
            spawnSync("mkdir", ["-p", join(dir, "stacks", host.name)]);
            writeFileSync(path, stringify(labStackConfig(state, host)));
            return path;
        });
        runner(state, "setup", 1, files);
        for (const size of sizes) {
            const subset = files.slice(0, size);
            const floor = runner(state, "floor", runs, subset);
            const drift = runner(state, "drift", runs, subset);
            const apply = runner(state, "apply", runs, subset);
            const floorFigure = summarize(`floor: ${size} x ssh true`, "s", floor.map((s) => s.seconds));
            const driftFigure = summarize(`drift check, ${size} hosts (${drift[0].roundTrips} round trip/host)`, "s", drift.map((s) => s.seconds), 1.5 * floorFigure.median);
            const applyFigure = summarize(`no-change apply, ${size} hosts (${apply[0].roundTrips} round trip/host)`, "s", apply.map((s) => s.seconds), 2 * floorFigure.median);
            figures.push(floorFigure, driftFigure, applyFigure);
            figures.push({ name: `  drift / floor (${size})`, unit: "x", median: driftFigure.median / floorFigure.median, min: NaN, max: NaN, samples: runs, target: 1.5, meetsTarget: driftFigure.median / floorFigure.median <= 1.5 });
            figures.push({ name: `  apply / floor (${size})`, unit: "x", median: applyFigure.median / floorFigure.median, min: NaN, max: NaN, samples: runs, target: 2, meetsTarget: applyFigure.median / floorFigure.median <= 2 });
        }
    } finally {
        stop();
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
    }
    return figures;
}
