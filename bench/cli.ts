// npm run bench -- cli: the CLI as users run it (whole processes), side by side with OpenSSH.
// From the lab's workstation, at N = 1, 5, 20, 50 lab hosts, over the lab's link and over a relay
// that holds every chunk 50 ms each way (a 100 ms round trip, as test/helpers/faults.ts's relay):
//   ssh true         N OpenSSH processes at once: `ssh -o BatchMode=yes ... HOST true`
//   floor            ssh2's in-process floor (bench/fleet-runner.ts floor), beside it
//   drift            one `mor-harden drift --config FILE` over the N hosts (default concurrency)
//   no-change apply  one `mor-harden apply --config FILE` over the N hosts (default concurrency)
// interleaved run by run (ssh, drift, apply) so the machine's load falls on all alike; bytes to and
// from each host (iptables counters in the workstation's namespace), the workstation's CPU (the
// children's user + system time), and at N = 1 the host's CPU (every process of the host's PID
// namespace, exited ones through their parents' cutime/cstime). Also: the CLI's start-up against
// bare node, first applies of fresh hosts (one at a time; their median) with round trips and host commands timed,
// and at the largest N the concurrency that suits drift and apply best. The lab hosts not in a
// measurement are stopped while it runs (SIGSTOP: a real fleet's other hosts use no CPU of the
// workstation's; here they share its two cores).
// BENCH_CLI_SIZES (or BENCH_SIZES), BENCH_RUNS (5), BENCH_CLI_LINKS (lab,wan), BENCH_CLI_SWEEP
// (drift and apply concurrencies tried at the largest N; "" for none) narrow it.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { HOSTS_KEY } from "../src/config/environment";
import { PROJECT } from "../src/config/schema";
import { execArgv, labExec, labUp, type LabHost, type LabState } from "../src/lab/lab";
import { benchEnvironment, ratio, runner, SshBytes, workstationOf, type StackDocument } from "./fleet";
import { withBenchLab } from "./lab-dir";
import { summarize, type Figure } from "./stats";
import { CLI_FILE as CLI } from "../src/cli/bin";

const list = (text: string) =>
    text
        .split(",")
        .map((item) => item.trim())
        .filter(Boolean);
const SIZES = list(process.env.BENCH_CLI_SIZES ?? process.env.BENCH_SIZES ?? "1,5,20,50").map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LINKS = list(process.env.BENCH_CLI_LINKS ?? "lab,wan") as Link[];
const SWEEP = list(process.env.BENCH_CLI_SWEEP ?? "5,10,25,50");
/** Each way: a 100 ms round trip. */
const WAN_DELAY_MS = 50;
const RELAY_BASE_PORT = 22000;
/** The default --concurrency of drift and of apply (src/cli/main.ts), measured with the main figures. */
const DEFAULT_CONCURRENCY: Record<string, number> = { drift: 25, apply: 10 };

type Link = "lab" | "wan";

interface Timed {
    seconds: number;
    cpu: number;
    failures: number;
    errors: string[];
    stdout: string;
}

function timeInWorkstation(state: LabState, commands: string[][], ok = [0]): Timed {
    const [command, ...args] = execArgv(workstationOf(state), ["node", join(__dirname, "cli-runner.js"), "time", JSON.stringify({ commands, ok })]);
    const result = spawnSync(command, args, { encoding: "utf8", timeout: 900_000 });
    if (result.status !== 0) throw new Error(`cli-runner: ${result.stderr}`);
    const timed = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as Timed;
    if (timed.failures > 0) throw new Error(`cli-runner: ${timed.failures} of ${commands.length} failed: ${timed.errors.join(" | ")}`);
    return timed;
}

/** The CPU seconds every process of a lab host has used (exited ones through their parents). */
function hostCpu(host: LabHost): number {
    const result = labExec(host, ["sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null"]);
    const ticks = result.stdout
        .split("\n")
        .filter(Boolean)
        .reduce((sum, line) => {
            // Fields after the command's ")" : state is field 3, utime..cstime are fields 14-17.
            const fields = line.slice(line.lastIndexOf(")") + 2).split(" ");
            return sum + [11, 12, 13, 14].reduce((total, index) => total + Number(fields[index] ?? 0), 0);
        }, 0);
    return ticks / 100; // USER_HZ
}

/**
 * Runs `measure` with every lab host but `measured` stopped (SIGSTOP to every process of its PID
 * namespace but its init), continued after. A real fleet's other hosts take none of the
 * workstation's CPU; on the lab all hosts share its two cores, and 50 idle hosts (fail2ban's
 * threads, rsyslog, apache) put 0.1-0.2x on the N = 1 and 5 figures (issue 23).
 */
function withOthersStopped<T>(state: LabState, measured: LabHost[], measure: () => T): T {
    const others = state.hosts.filter((host) => !measured.includes(host));
    const signalAll = (signal: "STOP" | "CONT") => {
        for (const host of others) {
            const result = labExec(host, ["sh", "-c", `kill -${signal} -1`]);
            if (result.code !== 0) throw new Error(`${host.name}: kill -${signal} -1: ${result.stderr.trim()}`);
        }
    };
    try {
        signalAll("STOP");
        return measure();
    } finally {
        signalAll("CONT");
    }
}

/** Stack files for the first N hosts over a link, from one document (certificates issued once). */
class Stacks {
    private readonly document: StackDocument;

    constructor(
        private readonly state: LabState,
        private readonly dir: string,
    ) {
        this.document = benchEnvironment(state);
    }

    file(size: number, link: Link): string {
        const hostsKey = `${PROJECT}:${HOSTS_KEY}`;
        const all = this.document.config[hostsKey] as Record<string, { connection: Record<string, unknown> }>;
        const workstation = workstationOf(this.state);
        const hosts = Object.fromEntries(
            this.state.hosts.slice(0, size).map((host, index) => {
                const entry = all[host.name];
                // Over the relay: the workstation's port for this host, forwarded to the host's sshd port.
                const connection =
                    link === "wan" ? { ...entry.connection, address: workstation.v4, port: RELAY_BASE_PORT + index + 1, forwarded: true } : entry.connection;
                return [host.name, { ...entry, connection }];
            }),
        );
        const path = join(this.dir, `cli-${link}-${size}`, "Pulumi.bench.yaml");
        mkdirSync(join(path, ".."), { recursive: true });
        writeFileSync(path, stringify({ config: { ...this.document.config, [hostsKey]: hosts } }));
        return path;
    }
}

/** known_hosts naming each host by its lab name (HostKeyAlias), whatever address reaches it. */
function knownHosts(state: LabState, dir: string): string {
    const path = join(dir, "cli-known_hosts");
    writeFileSync(path, state.hosts.map((host) => `${host.name} ${host.publicKey}`).join("\n") + "\n");
    return path;
}

function sshCommands(state: LabState, size: number, link: Link, knownHostsFile: string): string[][] {
    const workstation = workstationOf(state);
    return state.hosts.slice(0, size).map((host, index) => {
        const [address, port] = link === "wan" ? [workstation.v4, RELAY_BASE_PORT + index + 1] : [host.v4, 22];
        // -F /dev/null: none of this machine's ssh_config; the lab's operator key and host keys only.
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            state.operatorKey,
            "-o",
            `UserKnownHostsFile=${knownHostsFile}`,
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            `HostKeyAlias=${host.name}`,
            "-o",
            "ControlMaster=no",
            "-p",
            String(port),
            `root@${address}`,
            "true",
        ];
    });
}

/** The relay in the workstation for every host; returns its stop. */
async function startRelay(state: LabState): Promise<() => void> {
    const spec = {
        delayMs: WAN_DELAY_MS,
        listen: workstationOf(state).v4,
        ports: state.hosts.map((host, index) => [RELAY_BASE_PORT + index + 1, host.v4]),
        lifetimeSeconds: 1200,
    };
    const [command, ...args] = execArgv(workstationOf(state), ["node", join(__dirname, "cli-runner.js"), "relay", JSON.stringify(spec)]);
    const child = spawn(command, args, { detached: true, stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the relay did not start within 10 s")), 10_000);
        child.stdout!.once("data", () => (clearTimeout(timer), resolve()));
        child.once("exit", (code) => (clearTimeout(timer), reject(new Error(`the relay ended (${code})`))));
    });
    return () => {
        try {
            process.kill(-child.pid!, "SIGKILL");
        } catch {
            // already gone
        }
    };
}

/** Times of the host commands a first apply runs (once each, on the host it hardened). */
function hostCommandTimes(host: LabHost): Figure[] {
    const commands: [string, string][] = [
        ["fail2ban-client -t (validator)", "fail2ban-client -t"],
        // What the apply runs: the jails restarted at the switch, a plain reload once mor-harden's sets exist.
        ["fail2ban-client reload --restart (the switch)", "fail2ban-client reload --restart"],
        ["fail2ban-client reload", "fail2ban-client reload"],
        ["sshd -t (validator)", "sshd -t"],
        ["sshd -T", "sshd -T"],
        ["apache2ctl -t (validator)", "apache2ctl -t"],
        ["iptables-restore --test, both families (validator)", "iptables-save | iptables-restore --test && ip6tables-save | ip6tables-restore --test"],
    ];
    return commands.map(([name, command]) => timedOnHost(host, `  first apply's host command: ${name}`, command));
}

/** One run of `command` on the host, timed there. */
function timedOnHost(host: LabHost, name: string, command: string): Figure {
    const result = labExec(host, ["sh", "-c", `s=$(date +%s%N); ${command} >/dev/null 2>&1; rc=$?; e=$(date +%s%N); echo "$rc $(( (e - s) / 1000 ))"`], {
        timeoutMs: 120_000,
    });
    const [code, micros] = result.stdout.trim().split(" ").map(Number);
    if (code !== 0) throw new Error(`${host.name}: ${command} exited ${code}`);
    return summarize(name, "s", [micros / 1e6]);
}

const perHost = (bytes: number, hosts: number) => Math.round(bytes / hosts);

/** What the bench reads of `apply --json`'s report of a host. */
interface FirstApplyReport {
    roundTrips: number;
    connections: number;
    concerns: { concern: string; status: string; seconds?: number }[];
}

/** `onFigures` gets each group of figures as soon as it is measured (a full run takes long). */
export async function benchCli(onFigures: (figures: Figure[]) => void = () => undefined): Promise<Figure[]> {
    const figures: Figure[] = [];
    await withBenchLab("mhc", async (dir, prefix) => {
        const largest = Math.max(...SIZES);
        console.error(`cli: starting ${largest} lab hosts`);
        const state = await labUp(dir, largest, prefix);
        const stacks = new Stacks(state, dir);
        const known = knownHosts(state, dir);
        const counter = new SshBytes(workstationOf(state));
        const first = state.hosts[0];

        // Start-up: `--help` against bare node, one process each, interleaved.
        const bare: number[] = [];
        const help: number[] = [];
        for (let run = 0; run < RUNS * 2; run++) {
            bare.push(timeInWorkstation(state, [["node", "-e", "0"]]).seconds);
            help.push(timeInWorkstation(state, [["node", CLI, "--help"]]).seconds);
        }
        const bareFigure = summarize("start-up: bare node (node -e 0)", "s", bare);
        const helpFigure = summarize("start-up: mor-harden --help", "s", help);
        figures.push(bareFigure, helpFigure, ratio("  CLI start-up / bare node", helpFigure, bareFigure, 1.5));
        onFigures(figures.slice());

        // First applies of fresh hosts, one host a process and one process at a time (a host's own
        // first apply varies by a few hundred ms: fail2ban's stock sshd jail stops when its idle
        // threads next look, 0-0.6 s), against `ssh true` to the same hosts interleaved; then the
        // host commands it runs, on the first host. A host is kept fresh for the sshd jail's stop.
        const firstHosts = state.hosts.slice(0, Math.max(1, Math.min(RUNS, largest - 1)));
        console.error(`cli: first apply of ${firstHosts.length} fresh hosts, one at a time`);
        const firstApplies: { seconds: number; bytes: number; report: FirstApplyReport }[] = [];
        const firstSshTimes: number[] = [];
        for (const [index, host] of firstHosts.entries()) {
            const stack = new Stacks({ ...state, hosts: [host] }, join(dir, `first-${index}`)).file(1, "lab");
            withOthersStopped(state, [host], () => {
                firstSshTimes.push(timeInWorkstation(state, sshCommands({ ...state, hosts: [host] }, 1, "lab", known)).seconds);
                counter.reset([host]);
                const applied = timeInWorkstation(state, [["node", CLI, "apply", "--config", stack, "--json"]]);
                firstApplies.push({ seconds: applied.seconds, bytes: counter.total(), report: JSON.parse(applied.stdout).hosts[0].report as FirstApplyReport });
            });
        }
        const typical = [...firstApplies].sort((a, b) => a.seconds - b.seconds)[Math.floor((firstApplies.length - 1) / 2)];
        const firstSsh = summarize("ssh true, one host", "s", firstSshTimes);
        const firstFigure = summarize(
            `first apply of one fresh host (${typical.bytes} B)`,
            "s",
            firstApplies.map((applied) => applied.seconds),
        );
        const firstFigures = [
            firstFigure,
            ratio(
                `  first apply / ssh true (${typical.report.roundTrips} round trips over ${typical.report.connections} connections)`,
                firstFigure,
                firstSsh,
                8,
            ),
            // Each concern's transaction as the apply timed it (a confirmation's new login included), over the hosts.
            ...typical.report.concerns.map(({ concern, status }) =>
                summarize(
                    `  first apply's ${concern} transaction (${status})`,
                    "s",
                    firstApplies.map((applied) => applied.report.concerns.find((other) => other.concern === concern)?.seconds ?? 0),
                ),
            ),
            ...hostCommandTimes(first),
            // What a plain reload would have had to stop on a stock Debian host, Debian's own sshd
            // jail (ssh-iptables replaces it), one jail's threads joined after another's, which poll
            // every 0.2-2 s: the switch restarts the jails instead. Timed on a host still fresh.
            ...(state.hosts.length > firstHosts.length
                ? [
                      timedOnHost(
                          state.hosts[firstHosts.length],
                          "  stopping a stock Debian host's sshd jail (fail2ban-client stop sshd)",
                          "fail2ban-client stop sshd",
                      ),
                  ]
                : []),
        ];
        figures.push(...firstFigures);
        onFigures(firstFigures);

        // The other hosts hardened in-process, a few at a time (their first applies are not measured).
        if (largest > firstHosts.length) {
            console.error(`cli: first apply of the other ${largest - firstHosts.length} hosts`);
            const rest = { ...state, hosts: state.hosts.slice(firstHosts.length) };
            const restStacks = new Stacks(rest, join(dir, "rest"));
            runner(rest, "setup", 1, restStacks.file(rest.hosts.length, "lab"));
        }

        for (const link of LINKS) {
            const stopRelay = link === "wan" ? await startRelay(state) : () => undefined;
            try {
                for (const size of SIZES) {
                    const note = (what: string) => console.error(`cli ${link} N=${size}: ${what}`);
                    const file = stacks.file(size, link);
                    const hosts = state.hosts.slice(0, size);
                    const modes = {
                        ssh: { commands: sshCommands(state, size, link, known), ok: [0] },
                        drift: { commands: [["node", CLI, "drift", "--config", file]], ok: [0] },
                        apply: { commands: [["node", CLI, "apply", "--config", file]], ok: [0] },
                    };
                    const samples: Record<string, Timed[]> = { ssh: [], drift: [], apply: [] };
                    const bytes: Record<string, number[]> = { ssh: [], drift: [], apply: [] };
                    const sent: Record<string, number[]> = { ssh: [], drift: [], apply: [] };
                    const onHost: Record<string, number[]> = { ssh: [], drift: [], apply: [] };
                    withOthersStopped(state, hosts, () => {
                        for (let run = 0; run < RUNS; run++) {
                            note(`run ${run + 1}/${RUNS}`);
                            for (const [mode, spec] of Object.entries(modes)) {
                                counter.reset(hosts);
                                const before = size === 1 && link === "lab" ? hostCpu(first) : 0;
                                samples[mode].push(timeInWorkstation(state, spec.commands, spec.ok));
                                if (size === 1 && link === "lab") onHost[mode].push(hostCpu(first) - before);
                                const { toHosts, fromHosts } = counter.directions();
                                bytes[mode].push(perHost(toHosts + fromHosts, size));
                                sent[mode].push(perHost(toHosts, size));
                            }
                        }
                    });
                    note("ssh2 floor");
                    const floor = summarize(
                        `${link}: ssh2 in-process floor, ${size} hosts`,
                        "s",
                        withOthersStopped(state, hosts, () => runner({ ...state, hosts }, "floor", RUNS, file).map((sample) => sample.seconds)),
                    );
                    const median = (values: number[]) => summarize("x", "", values).median;
                    const label = (what: string, mode: string) =>
                        `${link}: ${what}, ${size} hosts (${Math.round(median(bytes[mode]))} B a host, workstation CPU ${(median(samples[mode].map((sample) => sample.cpu)) / size).toFixed(3)} s a host)`;
                    const ssh = summarize(
                        label("ssh true", "ssh"),
                        "s",
                        samples.ssh.map((sample) => sample.seconds),
                    );
                    const drift = summarize(
                        label("mor-harden drift, clean", "drift"),
                        "s",
                        samples.drift.map((sample) => sample.seconds),
                    );
                    const apply = summarize(
                        label("mor-harden no-change apply", "apply"),
                        "s",
                        samples.apply.map((sample) => sample.seconds),
                    );
                    const sizeFigures = [
                        ssh,
                        floor,
                        drift,
                        apply,
                        ratio(`  ${link}: drift / ssh true (${size})`, drift, ssh, 1.3),
                        ratio(`  ${link}: no-change apply / ssh true (${size})`, apply, ssh, 1.5),
                        ratio(`  ${link}: ssh2 floor / ssh true (${size})`, floor, ssh),
                    ];
                    if (size === SIZES[0] && link === LINKS[0]) {
                        sizeFigures.push(
                            summarize("  bytes sent to a host: clean drift", "B", sent.drift, 16 * 1024),
                            summarize("  bytes sent to a host: ssh true", "B", sent.ssh),
                            summarize("  bytes sent to a host: no-change apply", "B", sent.apply),
                            summarize("  bytes to and from a host: clean drift", "B", bytes.drift),
                            summarize("  bytes to and from a host: ssh true", "B", bytes.ssh),
                            summarize("  bytes to and from a host: no-change apply", "B", bytes.apply),
                        );
                    }
                    if (size === 1 && link === "lab") {
                        sizeFigures.push(
                            summarize("  host CPU: ssh true", "s", onHost.ssh),
                            summarize("  host CPU: clean drift", "s", onHost.drift),
                            summarize("  host CPU: no-change apply", "s", onHost.apply),
                        );
                    }
                    figures.push(...sizeFigures);
                    onFigures(sizeFigures);
                }
            } finally {
                stopRelay();
            }
        }

        // Concurrency at the largest N, over the lab's link: drift and no-change apply.
        for (const concurrency of SWEEP.map(Number).filter((value) => value <= largest)) {
            const file = stacks.file(largest, "lab");
            for (const command of ["drift", "apply"]) {
                if (concurrency === DEFAULT_CONCURRENCY[command]) continue; // measured above
                console.error(`cli sweep: ${command} --concurrency ${concurrency}, ${largest} hosts`);
                const seconds = Array.from(
                    { length: Math.max(1, Math.ceil(RUNS / 2)) },
                    () => timeInWorkstation(state, [["node", CLI, command, "--config", file, "--concurrency", String(concurrency)]]).seconds,
                );
                figures.push(
                    summarize(`lab: ${command === "drift" ? "drift" : "no-change apply"} --concurrency ${concurrency}, ${largest} hosts`, "s", seconds),
                );
            }
        }
    });
    return figures;
}
