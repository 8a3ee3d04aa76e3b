// The audit of a fleet: N lab hosts (20 by default, BENCH_AUDIT_HOSTS) with MOR-like Asterisk
// files and MariaDB, half weak and half strong, audited all at once from the workstation, against
// the floor (N bare SSH connections running `true`, as bench/fleet.ts measures it).
// Target: within 2x the floor.
import { labUp } from "../src/lab/lab";
import type { VoipProfile } from "../src/lab/voip-files";
import { perHost, ratio, runner, SshBytes, stackFile, workstationOf } from "./fleet";
import { withBenchLab } from "./lab-dir";
import { summarize, type Figure } from "./stats";

export function benchAudit(size = Number(process.env.BENCH_AUDIT_HOSTS ?? 20), runs = Number(process.env.BENCH_RUNS ?? 3)): Promise<Figure[]> {
    return withBenchLab("mha", async (dir, prefix) => {
        const voip = Array.from({ length: size }, (_, index): VoipProfile =>
            index % 2 === 0 ? { secrets: "weak", database: "exposed" } : { secrets: "strong", database: "loopback" },
        );
        console.error(`audit N=${size}: starting the lab`);
        const state = await labUp(dir, size, prefix, { voip });
        const file = stackFile(state, dir);
        const counter = new SshBytes(workstationOf(state));
        const measure = (mode: string) => {
            console.error(`audit N=${size}: ${mode}`);
            counter.reset(state.hosts);
            const samples = runner(state, mode, runs, file);
            return { samples, bytes: perHost(counter.total(), size, runs) };
        };
        const floor = measure("floor");
        const audit = measure("audit");
        const label = (what: string, roundTrips: number, bytes: number) => `${what}, ${size} hosts (${roundTrips} round trips, ${bytes} B a host)`;
        const floorFigure = summarize(
            label("floor for the audit: ssh true", 1, floor.bytes),
            "s",
            floor.samples.map((sample) => sample.seconds),
        );
        const auditFigure = summarize(
            label("mor-harden audit, MOR-like hosts with MariaDB", audit.samples[0].roundTrips, audit.bytes),
            "s",
            audit.samples.map((sample) => sample.seconds),
        );
        return [floorFigure, auditFigure, ratio(`  audit / floor (${size})`, auditFigure, floorFigure, 2)];
    });
}
