// The lab: disposable MOR-like Debian hosts on this machine, for the tests and for trying
// mor-harden. Each host is a network, mount, PID and UTS namespace whose root is an overlay
// of `/` with its upper layer on a tmpfs that lives and dies with the namespace; it runs real
// rsyslog, sshd, apache2 (mod_ssl) and fail2ban. Clients (workstation, attacker) are network
// namespaces. All of them hang off a bridge inside a switch namespace, so nothing is added to
// the machine's own network and nothing leaves the lab.
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import { clientAddresses, hostAddress } from "./addresses";
import { hostInit, hostsFile, labFiles } from "./host-files";
import type { VoipProfile } from "./voip-files";
import type { LabProfile } from "./mor-profile";
import { ACME_CA_ADDRESS, addAcmeName, startAcme, type LabAcme } from "./acme";
import { issueCertificate } from "./certificates";

export { issueCertificate };

/** Every namespace of a lab is named with its prefix, so two labs (the operator's, a test run's) never meet. */
export const DEFAULT_PREFIX = "morh-";
const switchName = (prefix: string) => `${prefix}switch`;

export interface LabNode {
    name: string;
    kind: "host" | "client";
    netns: string;
    v4: string;
    v6: string;
}

export interface LabHost extends LabNode {
    kind: "host";
    /** PID (on this machine) of the `unshare` that owns the host's namespaces; killing it ends the host. */
    ownerPid: number;
    /** PID (on this machine) of the host's init (PID 1 inside), the target of nsenter. */
    initPid: number;
    /** As `ssh-keygen -lf` prints it. */
    hostKey: string;
    /** "ssh-ed25519 AAAA...", for known_hosts. */
    publicKey: string;
    startSeconds: number;
    /** The MOR-like Asterisk files and MariaDB the host was given, if any. */
    voip?: VoipProfile;
    /** How the host looked before mor-harden (src/lab/mor-profile.ts). */
    profile: LabProfile;
}

export interface LabState {
    dir: string;
    prefix: string;
    operatorKey: string;
    caCertificate: string;
    hosts: LabHost[];
    clients: LabNode[];
    /** The lab's ACME CA (`up --acme`), when it runs. */
    acme?: LabAcme;
}

export interface ExecResult {
    code: number;
    stdout: string;
    stderr: string;
}

const onLinkRoutes = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"];

export function hostName(index: number): string {
    return `mor-${index}`;
}

function run(command: string, args: string[], input?: string): string {
    return execFileSync(command, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

function tryRun(command: string, args: string[]): SpawnSyncReturns<string> {
    return spawnSync(command, args, { encoding: "utf8" });
}

export function requireRootOnLinux(): void {
    if (process.platform !== "linux") throw new Error(`the lab needs Linux namespaces; this is ${process.platform}`);
    if (process.getuid?.() !== 0) throw new Error("the lab needs root (network, mount and PID namespaces, overlayfs): run it as root");
    for (const tool of ["ip", "unshare", "nsenter", "tini", "sshd", "apache2ctl", "fail2ban-client", "rsyslogd", "iptables", "ssh-keygen", "openssl"]) {
        if (tryRun("sh", ["-c", `command -v ${tool}`]).status !== 0)
            throw new Error(`the lab needs ${tool}: run .ci/run (or apt-get install the packages it lists)`);
    }
}

function netnsExists(name: string): boolean {
    return tryRun("ip", ["netns", "list"])
        .stdout.split("\n")
        .some((line) => line.split(" ")[0] === name);
}

function addNode(prefix: string, name: string, v4: string, v6: string): string {
    const netns = `${prefix}${name}`;
    run("ip", ["netns", "add", netns]);
    const peer = `v-${name}`.slice(0, 15);
    run("ip", ["-n", switchName(prefix), "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    run("ip", ["-n", switchName(prefix), "link", "set", peer, "master", "br0", "up"]);
    const inNs = (...args: string[]) => run("ip", ["-n", netns, ...args]);
    inNs("link", "set", "lo", "up");
    inNs("addr", "add", `${v4}/24`, "dev", "eth0");
    inNs("-6", "addr", "add", `${v6}/64`, "dev", "eth0", "nodad");
    inNs("link", "set", "eth0", "up");
    for (const route of onLinkRoutes) if (!route.startsWith(v4.split(".").slice(0, 3).join("."))) inNs("route", "add", route, "dev", "eth0");
    inNs("-6", "route", "add", "2001:db8::/32", "dev", "eth0");
    // `ip netns exec` reads /etc/netns/NAME/hosts as the node's /etc/hosts: lab names resolve in
    // the clients (a trusted source may be a host name) without touching the machine's /etc/hosts.
    mkdirSync(join("/etc/netns", netns), { recursive: true });
    writeFileSync(join("/etc/netns", netns, "hosts"), hostsFile());
    return netns;
}

function ensureSwitch(prefix: string): void {
    const name = switchName(prefix);
    if (netnsExists(name)) return;
    run("ip", ["netns", "add", name]);
    run("ip", ["-n", name, "link", "add", "br0", "type", "bridge"]);
    run("ip", ["-n", name, "link", "set", "br0", "up"]);
}

/** The operator's key and the lab CA, made once per lab directory. */
function ensureOperatorMaterial(dir: string): { operatorKey: string; caCertificate: string } {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const operatorKey = join(dir, "id_ed25519");
    if (!existsSync(operatorKey)) run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mor-harden-lab-operator", "-f", operatorKey]);
    const caCertificate = join(dir, "ca.crt");
    if (!existsSync(caCertificate)) {
        run("openssl", [
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            join(dir, "ca.key"),
            "-out",
            caCertificate,
            "-days",
            "30",
            "-subj",
            "/CN=mor-harden lab CA",
        ]);
    }
    return { operatorKey, caCertificate };
}

function childPid(pid: number): number | undefined {
    try {
        const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
        return children.length > 0 ? Number(children[0]) : undefined;
    } catch {
        return undefined;
    }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts one host; resolves once its services are up (bounded by `timeoutMs`). */
async function startHost(
    dir: string,
    prefix: string,
    index: number,
    operatorKey: string,
    timeoutMs: number,
    profile: LabProfile,
    voip?: VoipProfile,
): Promise<LabHost> {
    const started = process.hrtime.bigint();
    const name = hostName(index);
    const { v4, v6 } = hostAddress(index);
    const hostDir = join(dir, "hosts", name);
    rmSync(hostDir, { recursive: true, force: true });
    const files = join(hostDir, "files");
    mkdirSync(files, { recursive: true });
    const { fingerprint: hostKey, publicKey } = labFiles(files, {
        name,
        operatorPublicKey: readFileSync(`${operatorKey}.pub`, "utf8"),
        profile,
        ...(voip ? { voip: { address: v4, profile: voip } } : {}),
    });
    const netns = addNode(prefix, name, v4, v6);
    const log = openSync(join(hostDir, "console.log"), "w");
    const owner = spawn(
        "ip",
        [
            "netns",
            "exec",
            netns,
            "unshare",
            "--mount",
            "--uts",
            "--ipc",
            "--pid",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "sh",
            "-c",
            hostInit(files),
        ],
        {
            detached: true,
            stdio: ["ignore", log, log],
        },
    );
    owner.unref();
    const ownerPid = owner.pid!;
    const deadline = Date.now() + timeoutMs;
    let initPid: number | undefined;
    while (Date.now() < deadline) {
        initPid ??= childPid(ownerPid);
        if (initPid && tryRun("nsenter", ["-t", String(initPid), "-m", "-p", "-r", "test", "-e", "/run/lab-ready"]).status === 0) break;
        if (tryRun("kill", ["-0", String(ownerPid)]).status !== 0) break;
        await sleep(50);
    }
    const ready = initPid !== undefined && tryRun("nsenter", ["-t", String(initPid), "-m", "-p", "-r", "test", "-e", "/run/lab-ready"]).status === 0;
    if (!ready) {
        const console_ = readFileSync(join(hostDir, "console.log"), "utf8").trim().split("\n").slice(-15).join("\n");
        throw new Error(`lab host ${name} did not start within ${timeoutMs / 1000} s:\n${console_}`);
    }
    return {
        name,
        kind: "host",
        netns,
        v4,
        v6,
        ownerPid,
        initPid: initPid!,
        hostKey,
        publicKey,
        startSeconds: Number(process.hrtime.bigint() - started) / 1e9,
        profile,
        ...(voip ? { voip } : {}),
    };
}

/** known_hosts with every lab host's key, for OpenSSH clients in the lab. */
export function knownHostsPath(dir: string): string {
    return join(dir, "known_hosts");
}

export function statePath(dir: string): string {
    return join(dir, "state.json");
}

export function readState(dir: string): LabState | undefined {
    try {
        return JSON.parse(readFileSync(statePath(dir), "utf8")) as LabState;
    } catch {
        return undefined;
    }
}

function alive(host: LabHost): boolean {
    return tryRun("kill", ["-0", String(host.initPid)]).status === 0 && netnsExists(host.netns);
}

/**
 * Starts the switch, the two clients and `hosts` hosts (those already running are kept, so
 * `up` twice is harmless). A failed start stops everything it started.
 */
export async function labUp(
    dir: string,
    hosts = 1,
    prefix = DEFAULT_PREFIX,
    options: { startTimeoutMs?: number; voip?: (VoipProfile | undefined)[]; profile?: LabProfile | LabProfile[]; acme?: boolean } = {},
): Promise<LabState> {
    /** One profile for every host, or one per host (the last repeats). */
    const profileOf = (index: number): LabProfile => {
        const profiles = [options.profile ?? "plain"].flat();
        return profiles[Math.min(index - 1, profiles.length - 1)];
    };
    requireRootOnLinux();
    hostAddress(hosts); // a count out of range fails before anything is made
    if (!/^[a-z0-9-]{1,12}$/.test(prefix)) throw new Error(`lab prefix "${prefix}": lower-case letters, digits and '-', at most 12`);
    const previous = readState(dir);
    const sameProfiles = (state: LabState) =>
        state.hosts.every(
            (host, index) => JSON.stringify(host.voip) === JSON.stringify(options.voip?.[index]) && (host.profile ?? "plain") === profileOf(index + 1),
        );
    const sameAcme = (state: LabState) =>
        (state.acme ? isRunning(state.acme.pebblePid) && isRunning(state.acme.challtestsrvPid) : false) === Boolean(options.acme);
    if (
        previous &&
        previous.prefix === prefix &&
        previous.hosts.length === hosts &&
        previous.hosts.every(alive) &&
        sameProfiles(previous) &&
        sameAcme(previous)
    )
        return previous;
    if (previous || listLabNamespaces(prefix).length > 0) labDown(dir, prefix);
    const { operatorKey, caCertificate } = ensureOperatorMaterial(dir);
    const state: LabState = { dir, prefix, operatorKey, caCertificate, hosts: [], clients: [] };
    try {
        ensureSwitch(prefix);
        for (const [name, addresses] of Object.entries(clientAddresses)) {
            state.clients.push({ name, kind: "client", netns: addNode(prefix, name, addresses.v4, addresses.v6), ...addresses });
        }
        if (options.acme) {
            state.acme = startAcme(dir, addNode(prefix, "acme", ACME_CA_ADDRESS.v4, ACME_CA_ADDRESS.v6));
            writeFileSync(statePath(dir), JSON.stringify(state, null, 2));
        }
        // Started one after another: each start is mostly waiting on its own daemons, and the
        // machine has two cores.
        for (let index = 1; index <= hosts; index++) {
            state.hosts.push(await startHost(dir, prefix, index, operatorKey, options.startTimeoutMs ?? 30_000, profileOf(index), options.voip?.[index - 1]));
            // The CA resolves the host's GUI name to the host (the name lab stacks give it).
            if (state.acme) addAcmeName(state.acme, `${hostName(index)}.lab.example`, hostAddress(index).v4);
            writeFileSync(statePath(dir), JSON.stringify(state, null, 2));
        }
        writeFileSync(statePath(dir), JSON.stringify(state, null, 2));
        writeFileSync(knownHostsPath(dir), state.hosts.map((host) => `${host.v4},${host.v6},${host.name}.lab.example ${host.publicKey}`).join("\n") + "\n");
        return state;
    } catch (error) {
        writeFileSync(statePath(dir), JSON.stringify(state, null, 2));
        labDown(dir, prefix);
        throw error;
    }
}

export function listLabNamespaces(prefix = DEFAULT_PREFIX): string[] {
    return tryRun("ip", ["netns", "list"])
        .stdout.split("\n")
        .map((line) => line.split(" ")[0])
        .filter((name) => name.startsWith(prefix));
}

/** Running, as opposed to gone or a zombie waiting for its parent to reap it. */
export function isRunning(pid: number): boolean {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return !/^\d+ \(.*\) [ZX] /.test(stat);
    } catch {
        return false;
    }
}

/** Waits (at most 5 s) for killed processes to end. */
function waitUntilGone(pids: number[]): void {
    const deadline = Date.now() + 5_000;
    while (pids.some(isRunning) && Date.now() < deadline) spawnSync("sleep", ["0.05"]);
}

/** Stops every host (by the PIDs it recorded) and removes every namespace the lab made. */
export function labDown(dir: string, prefix = readState(dir)?.prefix ?? DEFAULT_PREFIX): void {
    const state = readState(dir);
    for (const host of state?.hosts ?? []) {
        // SIGKILL to the owner: unshare --kill-child then kills the host's PID 1, and with it every
        // process of the host's PID namespace; its mounts go with its mount namespace.
        tryRun("kill", ["-KILL", String(host.ownerPid)]);
        tryRun("kill", ["-KILL", String(host.initPid)]);
    }
    // Only while they still are the lab's CA (a test may have killed one long ago, and its PID
    // may be another process's by now).
    const isPebble = (pid: number) => {
        try {
            return readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("pebble");
        } catch {
            return false;
        }
    };
    const acmePids = (state?.acme ? [state.acme.pebblePid, state.acme.challtestsrvPid] : []).filter(isPebble);
    for (const pid of acmePids) tryRun("kill", ["-KILL", String(pid)]);
    waitUntilGone([...(state?.hosts.flatMap((host) => [host.ownerPid, host.initPid]) ?? []), ...acmePids]);
    for (const netns of listLabNamespaces(prefix)) {
        // A namespace still holding processes we did not record (a crashed earlier run): kill them by
        // their network namespace, which only lab processes share.
        for (const pid of tryRun("ip", ["netns", "pids", netns]).stdout.split(/\s+/).filter(Boolean)) tryRun("kill", ["-KILL", pid]);
        tryRun("ip", ["netns", "delete", netns]);
        rmSync(join("/etc/netns", netns), { recursive: true, force: true });
    }
    rmSync(statePath(dir), { force: true });
    rmSync(join(dir, "hosts"), { recursive: true, force: true });
}

export function findNode(state: LabState, name: string): LabHost | LabNode {
    const node = [...state.hosts, ...state.clients].find((candidate) => candidate.name === name);
    if (!node) throw new Error(`no lab node "${name}" (have: ${[...state.hosts, ...state.clients].map((n) => n.name).join(", ")})`);
    return node;
}

/** The command line that runs `argv` inside a host (all its namespaces and root) or a client. */
export function execArgv(node: LabHost | LabNode, argv: string[]): string[] {
    return node.kind === "host"
        ? ["nsenter", "-t", String((node as LabHost).initPid), "-n", "-m", "-p", "-u", "-i", "-r", "-w", ...argv]
        : ["ip", "netns", "exec", node.netns, ...argv];
}

/** The exit code of a command a signal ended (as a shell reports it), or 1 when it did not start. */
const signalCode = (signal: NodeJS.Signals | null) => (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1);

/**
 * Runs a command in a lab node, bounded by `timeoutMs`, its output captured whole: spawnSync's
 * default maxBuffer (1 MiB) killed a command past it (`bans --json` of 20,000 bans came back cut,
 * exit 128). A timeout says so on stderr.
 */
export function labExec(node: LabHost | LabNode, argv: string[], options: { input?: string; timeoutMs?: number } = {}): ExecResult {
    const [command, ...args] = execArgv(node, argv);
    const timeout = options.timeoutMs ?? 60_000;
    const result = spawnSync(command, args, { encoding: "utf8", input: options.input, timeout, maxBuffer: Infinity });
    const why = result.error
        ? `\nlab: ${argv[0]}: ${(result.error as NodeJS.ErrnoException).code === "ETIMEDOUT" ? `no end after ${timeout} ms` : result.error.message}`
        : "";
    return { code: result.status ?? signalCode(result.signal), stdout: result.stdout ?? "", stderr: `${result.stderr ?? ""}${why}` };
}

/** Runs a command in a lab node with this process's stdin, stdout and stderr (output of any size, as it comes); its exit code. */
export function labRelay(node: LabHost | LabNode, argv: string[], options: { timeoutMs?: number } = {}): number {
    const [command, ...args] = execArgv(node, argv);
    const result = spawnSync(command, args, { stdio: "inherit", timeout: options.timeoutMs ?? 60_000 });
    if (result.error) process.stderr.write(`lab: ${argv[0]}: ${result.error.message}\n`);
    return result.status ?? signalCode(result.signal);
}

export function readHostFile(host: LabHost, path: string): string {
    const result = labExec(host, ["cat", path]);
    if (result.code !== 0) throw new Error(`${host.name}: cannot read ${path}: ${result.stderr.trim()}`);
    return result.stdout;
}
