// `lab up` writes one environment, stacks/Pulumi.lab.yaml, with every lab host under
// `mor-harden:hosts`, so `pulumi up --stack lab` (where the Pulumi CLI exists) and mor-harden's
// own commands target the whole lab. It holds this run's host keys and paths, so it is not
// committed. Tests that want one host use the single-host form of the same settings.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { HOSTS_KEY, mergeOverrides } from "../config/environment";
import { PROJECT } from "../config/schema";
import { issueCertificate, type LabHost, type LabState } from "./lab";

export const LAB_STACK = "lab";

/** The OpenSSH version the lab hosts run (they are copies of this machine). */
function opensshVersion(): string {
    // `ssh -V` prints its banner on stderr.
    return /OpenSSH_(\d+\.\d+)/.exec(execFileSync("sh", ["-c", "ssh -V 2>&1"], { encoding: "utf8" }))![1];
}

/** What every lab host shares: how the workstation logs in, the OS, the firewall, Apache on. */
export function labSettings(state: LabState): Record<string, unknown> {
    const workstation = state.clients.find((client) => client.name === "workstation")!;
    return {
        connection: { user: "root", privateKeyFile: state.operatorKey, agent: false, connectTimeout: 5, confirmTimeout: 20 },
        os: "debian",
        // The lab reaches no network, so support.kolmisoft.com could not be resolved: removed explicitly.
        // A lab host is a network namespace, whose LOG rules the kernel does not log: NFLOG + ulogd.
        firewall: { trusted: [workstation.v4, workstation.v6], trustKolmisoftSupport: false, scannerLog: "nflog" },
        // With the lab's ACME CA, each host's certificate comes from it (its directory's TLS is the lab CA's).
        apache: state.acme
            ? { enabled: true, acme: { email: "operator@lab.example", directory: state.acme.directory, caBundle: readFileSync(state.caCertificate, "utf8") } }
            : { enabled: true },
        // The system concern is off in the lab's stacks (test/system/ turns it on). The lab's
        // hosts share this machine's kernel: where it is on, only the network namespace's
        // sysctls are written; kernel-wide ones (kernel.*, fs.*) are rendered and checked, never applied.
        system: { enabled: false, sysctl: { kernelWide: "render-only" } },
        host: { openssh: opensshVersion() },
    };
}

/** What is one lab host's own: its address and host key, its GUI's name and certificate. */
export function labHostEntry(state: LabState, host: LabHost): Record<string, unknown> {
    const connection = { address: host.v4, hostKey: host.hostKey };
    if (state.acme) return { connection, apache: { serverName: `${host.name}.lab.example` } };
    const { certificate, key } = issueCertificate(state.dir, host.name, host.v4);
    return { connection, apache: { serverName: `${host.name}.lab.example`, certificateFile: certificate, keyFile: key } };
}

const stackDocument = (values: Record<string, unknown>) => ({
    config: Object.fromEntries(Object.entries(values).map(([key, value]) => [`${PROJECT}:${key}`, value])),
});

/** One lab host as a single-host stack (the form the tests' stack variants use). */
export function labStackConfig(state: LabState, host: LabHost): Record<string, unknown> {
    return stackDocument(mergeOverrides(labSettings(state), labHostEntry(state, host), []) as Record<string, unknown>);
}

/** Every lab host in one environment. */
export function labEnvironmentConfig(state: LabState): Record<string, unknown> {
    return stackDocument({ ...labSettings(state), [HOSTS_KEY]: Object.fromEntries(state.hosts.map((host) => [host.name, labHostEntry(state, host)])) });
}

/** Writes stacks/Pulumi.lab.yaml and removes the per-host files an older lab wrote (Pulumi.lab-2.yaml, ...). */
export function writeLabStacks(state: LabState, stacksDir: string): string {
    for (const file of readdirSync(stacksDir)) if (/^Pulumi\.lab-\d+\.yaml$/.test(file)) rmSync(join(stacksDir, file));
    const path = join(stacksDir, `Pulumi.${LAB_STACK}.yaml`);
    const header = `# Written by \`npm run lab -- up\` for lab hosts ${state.hosts.map((host) => `${host.name} (${host.v4})`).join(", ")}; rewritten at every start.\n`;
    writeFileSync(path, header + stringify(labEnvironmentConfig(state)));
    return path;
}
