// The fleet side by side, on N = 1, 5, 20 lab hosts in parallel, all from the lab's workstation:
//   floor            N bare SSH connections running `true` (the tool's key type and ssh2 settings)
//   drift            mor-harden's drift check, no drift; and with drift on every host
//   apply            mor-harden's apply through the code `pulumi up` runs: first apply on fresh
//                    hosts, and a second, no-change apply
//   ansible          bench/ansible/playbook.yml with the same files and handlers, --check --diff
//                    and for real (no change), forks = N
// Each with SSH round trips per host and bytes per host (both directions, IP level, counted by
// iptables in the workstation's namespace, the same way for every tool).
// Targets: drift within 1.5x of the floor at N = 20, no-change apply within 2x, mor-harden at
// least 15x faster than Ansible for check and apply.
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { execArgv, labDown, labExec, labUp, type LabHost, type LabNode, type LabState } from "../src/lab/lab";
import { LAB_STACK, labEnvironmentConfig } from "../src/lab/stacks";
import { prepareAnsible, runAnsible } from "./ansible";
import { withBenchLab } from "./lab-dir";
import { summarize, type Figure } from "./stats";

interface AnsibleFigures {
    samples: { seconds: number }[];
    bytes: number;
    roundTrips: number;
}

interface Sample {
    seconds: number;
    roundTrips: number;
    failures: number;
}

export const workstationOf = (state: LabState) => state.clients.find((client) => client.name === "workstation")!;

export function runner(state: LabState, mode: string, runs: number, file: string): Sample[] {
    const [command, ...args] = execArgv(workstationOf(state), ["node", join(__dirname, "fleet-runner.js"), mode, String(runs), file]);
    const result = spawnSync(command, args, { encoding: "utf8", timeout: 1_800_000 });
    if (result.status !== 0) throw new Error(`fleet-runner ${mode}: ${result.stderr}`);
    const samples = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as Sample[];
    if (samples.some((sample) => sample.failures > 0)) throw new Error(`fleet-runner ${mode}: some hosts failed: ${result.stdout}`);
    return samples;
}

/** Byte counters for SSH traffic between the workstation and these hosts, in the workstation's namespace. */
export class SshBytes {
    constructor(private readonly workstation: LabNode) {}

    private sh(script: string): string {
        const result = labExec(this.workstation, ["sh", "-c", script]);
        if (result.code !== 0) throw new Error(`byte counters: ${result.stderr}`);
        return result.stdout;
    }

    reset(hosts: LabHost[]): void {
        const rules = hosts.flatMap((host) => [
            `-A BENCH-SSH -d ${host.v4} -p tcp --dport 22 -j RETURN`,
            `-A BENCH-SSH -s ${host.v4} -p tcp --sport 22 -j RETURN`,
        ]);
        this.sh(
            [
                "iptables -w -N BENCH-SSH 2>/dev/null || iptables -w -F BENCH-SSH",
                "iptables -w -C INPUT -j BENCH-SSH 2>/dev/null || iptables -w -I INPUT -j BENCH-SSH",
                "iptables -w -C OUTPUT -j BENCH-SSH 2>/dev/null || iptables -w -I OUTPUT -j BENCH-SSH",
                ...rules.map((rule) => `iptables -w ${rule}`),
            ].join(" && "),
        );
    }

    total(): number {
        const { toHosts, fromHosts } = this.directions();
        return toHosts + fromHosts;
    }

    /** Bytes to the hosts (their port 22) and from them, apart. */
    directions(): { toHosts: number; fromHosts: number } {
        const counts = { toHosts: 0, fromHosts: 0 };
        for (const line of this.sh("iptables -w -nvx -L BENCH-SSH").split("\n").slice(2)) {
            const fields = line.trim().split(/\s+/);
            counts[line.includes("dpt:22") ? "toHosts" : "fromHosts"] += Number(fields[1]) || 0;
        }
        return counts;
    }
}

export type StackDocument = { config: Record<string, Record<string, unknown>> };

/** The lab's environment (as `lab up` writes it) with the benchmarks' settings. */
export function benchEnvironment(state: LabState): StackDocument {
    const document = labEnvironmentConfig(state) as StackDocument;
    // All hosts on two shared cores: a first apply of 20 at once must not miss its confirm window.
    document.config["mor-harden:connection"] = { ...document.config["mor-harden:connection"], confirmTimeout: 300 };
    // A benchmark makes some 40 SSH connections a minute from the workstation, above the
    // firewall's default limit of new SSH connections from one source (20 a minute): its dropped
    // SYNs would time 1 to 3 s of TCP retransmission instead of the tool.
    document.config["mor-harden:firewall"] = { ...document.config["mor-harden:firewall"], sshRateLimit: { perMinute: 600, burst: 600 } };
    return document;
}

/** The lab's environment with the benchmarks' settings, in the benchmark's own directory. */
export function stackFile(state: LabState, dir: string): string {
    const path = join(dir, "stacks", `Pulumi.${LAB_STACK}.yaml`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, stringify(benchEnvironment(state)));
    return path;
}

export function ratio(name: string, numerator: Figure, denominator: Figure, target?: number, higherIsBetter = false): Figure {
    const value = numerator.median / denominator.median;
    return {
        name,
        unit: "x",
        median: value,
        min: NaN,
        max: NaN,
        samples: numerator.samples,
        target,
        meetsTarget: target === undefined ? undefined : higherIsBetter ? value >= target : value <= target,
    };
}

export const perHost = (bytes: number, hosts: number, runs: number) => Math.round(bytes / hosts / runs);

const defaultSizes = (process.env.BENCH_SIZES ?? "1,5,20").split(",").map(Number);
/** BENCH_ANSIBLE=0 leaves Ansible out (it takes most of the time: about 70 SSH commands a host). */
const withAnsible = process.env.BENCH_ANSIBLE !== "0";
/**
 * Ansible runs per size: one number for every size, or one per size ("3,3,1"): an Ansible run of
 * 20 lab hosts takes about 20 minutes on two cores, so a full set of medians there takes hours.
 */
export function ansibleRunsPerSize(sizes: number[], setting = process.env.BENCH_ANSIBLE_RUNS ?? "3"): number[] {
    const counts = setting.split(",").map((count) => Number(count.trim()));
    if (counts.some((count) => !Number.isInteger(count) || count < 1) || (counts.length !== 1 && counts.length !== sizes.length)) {
        throw new Error(`BENCH_ANSIBLE_RUNS="${setting}": expected a whole number of runs, or one per size (${sizes.length} sizes: ${sizes.join(",")})`);
    }
    return sizes.map((_, index) => counts[counts.length === 1 ? 0 : index]);
}

export async function benchFleet(
    sizes = defaultSizes,
    runs = Number(process.env.BENCH_RUNS ?? 3),
    ansibleRuns = ansibleRunsPerSize(sizes),
    onSize: (figures: Figure[]) => void = () => undefined,
): Promise<Figure[]> {
    const figures: Figure[] = [];
    const ansibleRoundTrips: { check?: number; apply?: number } = {};
    await withBenchLab("mhf", async (dir, prefix) => {
        for (const [sizeIndex, size] of sizes.entries()) {
            const note = (what: string) => console.error(`fleet N=${size}: ${what}`);
            // First apply: fresh hosts for every run.
            const first: Sample[] = [];
            const firstBytes: number[] = [];
            for (let run = 0; run < runs; run++) {
                labDown(dir, prefix);
                const fresh = await labUp(dir, size, prefix);
                const counter = new SshBytes(workstationOf(fresh));
                counter.reset(fresh.hosts);
                note(`first apply, run ${run + 1}/${runs}`);
                first.push(...runner(fresh, "apply", 1, stackFile(fresh, dir)));
                firstBytes.push(perHost(counter.total(), size, 1));
            }
            const state = await labUp(dir, size, prefix); // the hosts of the last first apply, hardened
            const file = stackFile(state, dir);
            const counter = new SshBytes(workstationOf(state));
            const measure = (mode: string): { samples: Sample[]; bytes: number } => {
                note(mode);
                counter.reset(state.hosts);
                const samples = runner(state, mode, runs, file);
                return { samples, bytes: perHost(counter.total(), size, runs) };
            };
            const floor = measure("floor");
            const drift = measure("drift");
            const apply = measure("apply");
            // A hand edit on every host, reported by drift and by Ansible's check; then repaired.
            for (const host of state.hosts) labExec(host, ["sh", "-c", "echo '# hand edit' >> /etc/fail2ban/jail.d/mor-harden.local"]);
            const dirty = measure("drift-dirty");

            let ansibleDir: string | undefined;
            if (withAnsible) {
                ansibleDir = join(dir, "ansible");
                rmSync(ansibleDir, { recursive: true, force: true });
                await prepareAnsible(state, file, ansibleDir);
                // The playbook sees the hand edit (so its check is a real check): once, at the first size.
                if (sizeIndex === 0) {
                    note("ansible --check --diff, with drift");
                    const dirtyCheck = runAnsible(state, ansibleDir, { check: true });
                    if (dirtyCheck.changedHosts !== size) throw new Error(`ansible --check saw drift on ${dirtyCheck.changedHosts} of ${size} hosts`);
                }
            }
            runner(state, "setup", 1, file); // repaired by mor-harden: Ansible starts from the same hosts

            const ansibleRunCount = ansibleRuns[sizeIndex];
            const ansible = (directory: string, check: boolean): AnsibleFigures => {
                const samples = [];
                counter.reset(state.hosts);
                for (let run = 0; run < ansibleRunCount; run++) {
                    note(`ansible ${check ? "--check --diff" : "apply"}, run ${run + 1}/${ansibleRunCount}`);
                    const result = runAnsible(state, directory, { check });
                    if (result.failedHosts > 0) throw new Error(`ansible: ${result.failedHosts} hosts failed`);
                    samples.push(result);
                }
                const bytes = perHost(counter.total(), size, ansibleRunCount);
                // Round trips a host do not depend on N: counted once (-vvv, untimed), at the first size.
                const key = check ? "check" : "apply";
                ansibleRoundTrips[key] ??= runAnsible(state, directory, { check, count: true }).roundTrips!;
                return { samples, bytes, roundTrips: ansibleRoundTrips[key]! };
            };
            const ansibleCheck = ansibleDir ? ansible(ansibleDir, true) : undefined;
            const ansibleApply = ansibleDir ? ansible(ansibleDir, false) : undefined;

            const label = (what: string, roundTrips: number, bytes: number) =>
                `${what}, ${size} host${size > 1 ? "s" : ""} (${roundTrips} round trips, ${bytes} B a host)`;
            const seconds = (samples: { seconds: number }[]) => samples.map((sample) => sample.seconds);
            const floorFigure = summarize(label("floor: ssh true", 1, floor.bytes), "s", seconds(floor.samples));
            const driftFigure = summarize(label("mor-harden drift, clean", drift.samples[0].roundTrips, drift.bytes), "s", seconds(drift.samples));
            const dirtyFigure = summarize(
                label("mor-harden drift, drift on every host", dirty.samples[0].roundTrips, dirty.bytes),
                "s",
                seconds(dirty.samples),
            );
            const firstFigure = summarize(
                label(
                    "mor-harden first apply, fresh hosts",
                    Math.max(...first.map((s) => s.roundTrips)),
                    Math.round(firstBytes.reduce((a, b) => a + b, 0) / firstBytes.length),
                ),
                "s",
                seconds(first),
            );
            const applyFigure = summarize(label("mor-harden no-change apply", apply.samples[0].roundTrips, apply.bytes), "s", seconds(apply.samples));
            const sizeFigures = [
                floorFigure,
                driftFigure,
                dirtyFigure,
                firstFigure,
                applyFigure,
                ratio(`  drift / floor (${size})`, driftFigure, floorFigure, 1.5),
                ratio(`  no-change apply / floor (${size})`, applyFigure, floorFigure, 2),
                ratio(`  first apply / floor (${size})`, firstFigure, floorFigure),
            ];
            if (ansibleCheck && ansibleApply) {
                const checkFigure = summarize(label("ansible --check --diff", ansibleCheck.roundTrips, ansibleCheck.bytes), "s", seconds(ansibleCheck.samples));
                const ansibleApplyFigure = summarize(
                    label("ansible apply (no change)", ansibleApply.roundTrips, ansibleApply.bytes),
                    "s",
                    seconds(ansibleApply.samples),
                );
                sizeFigures.push(
                    checkFigure,
                    ansibleApplyFigure,
                    ratio(`  ansible check / mor-harden drift (${size})`, checkFigure, driftFigure, 15, true),
                    ratio(`  ansible apply / mor-harden no-change apply (${size})`, ansibleApplyFigure, applyFigure, 15, true),
                );
            }
            figures.push(...sizeFigures);
            onSize(sizeFigures);
        }
    });
    return figures;
}
