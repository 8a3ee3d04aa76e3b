// Lab hosts for integration tests: each test file gets its own lab (own namespace prefix and
// directory), stopped in `after` and, should the process die first, on exit.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { labDown, labExec, labUp, type ExecResult, type LabHost, type LabNode, type LabState } from "../../src/lab/lab";
import { fillSecrets, type Artifact } from "../../src/render/artifact";
import { labEnvironmentConfig, labStackConfig } from "../../src/lab/stacks";
import type { VoipProfile } from "../../src/lab/voip-files";
import type { ApplyReport } from "../../src/apply/engine";
import type { HostApplyResult } from "../../src/apply/hosts";
import { labProfiles, type LabProfile } from "../../src/lab/mor-profile";
import { stringify } from "yaml";
import { CLI_FILE as CLI } from "../../src/cli/bin";

export interface TestLab {
    state: LabState;
    host(index?: number): LabHost;
    client(name: "workstation" | "attacker" | "support"): LabNode;
    stop(): void;
}

/**
 * MORH_LAB_PROFILE=mor (or mor-rhel) runs any lab test on hosts as a MOR install leaves them,
 * unless the test asks for a profile itself.
 */
function defaultProfile(): LabProfile {
    const wanted = process.env.MORH_LAB_PROFILE ?? "plain";
    if (!labProfiles.includes(wanted as LabProfile)) throw new Error(`MORH_LAB_PROFILE=${wanted}: one of ${labProfiles.join(", ")}`);
    return wanted as LabProfile;
}

export async function startTestLab(
    hosts = 1,
    options: { profile?: LabProfile | LabProfile[]; voip?: (VoipProfile | undefined)[]; acme?: boolean; ownCaches?: boolean } = {},
): Promise<TestLab> {
    const dir = mkdtempSync(join(tmpdir(), "mor-harden-lab-"));
    const prefix = `mht${process.pid % 100000}-`;
    const removeCaches = options.ownCaches ? ownCaches() : () => {};
    let stopped = false;
    const stop = () => {
        if (stopped) return;
        stopped = true;
        labDown(dir, prefix);
        rmSync(dir, { recursive: true, force: true });
        removeCaches();
    };
    process.once("exit", stop);
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => (stop(), process.exit(130)));
    let state: LabState;
    try {
        state = await labUp(dir, hosts, prefix, { ...options, profile: options.profile ?? defaultProfile() });
    } catch (error) {
        stop();
        throw error;
    }
    return {
        state,
        host: (index = 1) => state.hosts[index - 1],
        client: (name) => state.clients.find((client) => client.name === name)!,
        stop,
    };
}

/** Runs a shell command line inside a lab node. */
export function sh(node: LabNode, script: string, timeoutMs = 60_000): ExecResult {
    return labExec(node, ["sh", "-c", script], { timeoutMs });
}

/** A TCP connection from `from` to `address`: "open", "refused" (a ban's REJECT) or "filtered" (no answer). */
export function tcpConnect(from: LabNode, address: string, port: number, timeoutSeconds = 3): string {
    const result = sh(from, `timeout ${timeoutSeconds} bash -c 'exec 3<>/dev/tcp/${address}/${port}' 2>&1; echo "exit=$?"`, 10_000).stdout;
    if (/exit=0/.test(result)) return "open";
    return /refused/i.test(result) ? "refused" : "filtered";
}

/** Writes artifacts into a lab host as the provider would (secrets filled in), without activating them. */
export function writeArtifacts(host: LabHost, artifacts: Artifact[], secrets: Record<string, string> = {}): void {
    for (const artifact of artifacts) {
        const result = labExec(
            host,
            ["sh", "-c", `mkdir -p "$(dirname '${artifact.path}')" && cat > '${artifact.path}' && chmod ${artifact.mode} '${artifact.path}'`],
            {
                input: fillSecrets(artifact.content, secrets),
            },
        );
        if (result.code !== 0) throw new Error(`writing ${artifact.path} into ${host.name}: ${result.stderr}`);
    }
}

/** A stack file for a lab host (as `lab up` writes it), with some keys changed; returns its path. */
export function labStackFile(lab: TestLab, name: string, change: Record<string, Record<string, unknown> | string> = {}, hostIndex = 1): string {
    const base = labStackConfig(lab.state, lab.host(hostIndex)).config as Record<string, Record<string, unknown>>;
    const config = { ...base };
    for (const [key, value] of Object.entries(change)) {
        const full = `mor-harden:${key}`;
        config[full] = typeof value === "string" ? (value as never) : { ...(base[full] ?? {}), ...value };
    }
    // Every variant is the same stack ("lab"), as when an operator edits one stack file: the
    // stack name is written into each managed file, so it must not change between variants.
    mkdirSync(join(lab.state.dir, "stacks", name), { recursive: true });
    const path = join(lab.state.dir, "stacks", name, "Pulumi.lab.yaml");
    writeFileSync(path, stringify({ config }));
    return path;
}

export interface CliRun {
    code: number;
    report?: ApplyReport;
    stdout: string;
    stderr: string;
}

/**
 * The workstation's caches in a directory of the test's own: the contents it sent (kept for
 * sending changes only, MOR_HARDEN_CACHE) and the parsed lists and compiled country sets
 * (XDG_CACHE_HOME), never the user's. Returns their removal.
 */
function ownCaches(): () => void {
    const dir = mkdtempSync(join(tmpdir(), "morh-cache-"));
    process.env.MOR_HARDEN_CACHE = join(dir, "contents");
    process.env.XDG_CACHE_HOME = dir;
    return () => rmSync(dir, { recursive: true, force: true });
}

/** Runs the mor-harden CLI from the workstation, as an operator would. */
export function cliFromWorkstation(lab: TestLab, args: string[], timeoutMs = 170_000): ExecResult {
    return labExec(lab.client("workstation"), ["node", CLI, ...args], { timeoutMs });
}

/** The lab's environment (every host, as `lab up` writes it) in a stack file of its own; returns its path. */
export function labEnvironmentFile(lab: TestLab, variant: string, change: (document: { config: Record<string, unknown> }) => void = () => {}): string {
    const document = labEnvironmentConfig(lab.state) as { config: Record<string, unknown> };
    change(document);
    // Every variant is the same stack, "lab" (its name is in each managed file's header).
    mkdirSync(join(lab.state.dir, "stacks", variant), { recursive: true });
    const path = join(lab.state.dir, "stacks", variant, "Pulumi.lab.yaml");
    writeFileSync(path, stringify(document));
    return path;
}

/** Runs `mor-harden apply --json` from the workstation, as an operator would. */
export function applyFromWorkstation(lab: TestLab, stackFile: string, timeoutMs = 120_000): CliRun {
    const result = cliFromWorkstation(lab, ["apply", "--config", stackFile, "--json"], timeoutMs);
    return { ...result, report: singleHostReport(result.stdout) };
}

/** The report of the one host `apply --json` printed (its last line), if it got as far as one. */
export function singleHostReport(stdout: string): ApplyReport | undefined {
    try {
        return (JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as { hosts: HostApplyResult[] }).hosts[0].report;
    } catch {
        return undefined;
    }
}

export function statuses(report: ApplyReport | undefined): Record<string, string> {
    return Object.fromEntries((report?.concerns ?? []).map((concern) => [concern.concern, concern.status]));
}

/** OpenSSH options for the operator's real logins from a lab client: the lab key, host keys pinned. */
export function operatorSshOptions(lab: TestLab): string {
    return `-i ${lab.state.operatorKey} -o UserKnownHostsFile=${lab.state.dir}/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=4`;
}

/** Whether a real ssh login from the workstation to `address` (IPv4 or IPv6) succeeds. */
export function sshLoginWorks(lab: TestLab, address: string, port = 22): boolean {
    return sh(lab.client("workstation"), `ssh ${operatorSshOptions(lab)} -p ${port} root@${address} true`, 15_000).code === 0;
}

/** Ports and their state as nmap, from a lab client, reports them (open, closed, filtered). */
export function scanPorts(lab: TestLab, from: "workstation" | "attacker", address: string, ports: string, ipv6 = false): Record<string, string> {
    const result = sh(lab.client(from), `nmap ${ipv6 ? "-6 " : ""}-Pn -n -sT --max-retries 1 --host-timeout 60s -p ${ports} ${address} -oG -`, 90_000);
    const line = result.stdout.split("\n").find((l) => l.includes("Ports:")) ?? "";
    return Object.fromEntries([...line.matchAll(/(\d+)\/(open|closed|filtered)\//g)].map((match) => [match[1], match[2]]));
}

/** Runs `mor-harden drift` for a stack file from the workstation (exit 0 clean, 1 drift, 2 not checked). */
export function driftFromWorkstation(lab: TestLab, stackFile: string, timeoutMs = 60_000): ExecResult {
    return labExec(lab.client("workstation"), ["node", CLI, "drift", "--config", stackFile], { timeoutMs });
}
