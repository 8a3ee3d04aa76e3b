// How long a lab host takes to start (target: under 5 s a host), measured over several runs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { labDown, labUp } from "../src/lab/lab";
import { summarize, type Figure } from "./stats";

export async function benchLabStart(runs = 3, hosts = 3): Promise<Figure[]> {
    const samples: number[] = [];
    const dir = mkdtempSync(join(tmpdir(), "mor-harden-bench-"));
    const prefix = `mhb${process.pid % 100000}-`;
    const onSignal = () => (labDown(dir, prefix), rmSync(dir, { recursive: true, force: true }), process.exit(130));
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
        for (let run = 0; run < runs; run++) {
            const state = await labUp(dir, hosts, prefix);
            samples.push(...state.hosts.map((host) => host.startSeconds));
            labDown(dir, prefix);
        }
    } finally {
        labDown(dir, prefix);
        rmSync(dir, { recursive: true, force: true });
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
    }
    return [summarize(`lab host start (${hosts} hosts x ${runs} runs)`, "s", samples, 5)];
}
