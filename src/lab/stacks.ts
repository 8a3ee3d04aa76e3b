// `lab up` writes one stack file per lab host, so `pulumi up --stack lab` (where the Pulumi CLI
// exists) and mor-harden's own commands target the lab. They hold this run's host keys and
// paths, so they are not committed.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { PROJECT } from "../config/schema";
import { issueCertificate, type LabHost, type LabState } from "./lab";

export function labStackName(index: number): string {
    return index === 1 ? "lab" : `lab-${index}`;
}

/** The OpenSSH version the lab hosts run (they are copies of this machine). */
function opensshVersion(): string {
    // `ssh -V` prints its banner on stderr.
    return /OpenSSH_(\d+\.\d+)/.exec(execFileSync("sh", ["-c", "ssh -V 2>&1"], { encoding: "utf8" }))![1];
}

export function labStackConfig(state: LabState, host: LabHost): Record<string, unknown> {
    const { certificate, key } = issueCertificate(state.dir, host.name, host.v4);
    const workstation = state.clients.find((client) => client.name === "workstation")!;
    const values: Record<string, unknown> = {
        connection: { address: host.v4, user: "root", hostKey: host.hostKey, privateKeyFile: state.operatorKey, agent: false, connectTimeout: 5, confirmTimeout: 20 },
        os: "debian",
        // The lab reaches no network, so support.kolmisoft.com could not be resolved: removed explicitly.
        // A lab host is a network namespace, whose LOG rules the kernel does not log: NFLOG + ulogd.
        firewall: { trusted: [workstation.v4, workstation.v6], trustKolmisoftSupport: false, scannerLog: "nflog" },
        apache: { enabled: true, serverName: `${host.name}.lab.example`, certificateFile: certificate, keyFile: key },
        host: { openssh: opensshVersion() },
    };
    return { config: Object.fromEntries(Object.entries(values).map(([key_, value]) => [`${PROJECT}:${key_}`, value])) };
}

export function writeLabStacks(state: LabState, stacksDir: string): string[] {
    return state.hosts.map((host, index) => {
        const path = join(stacksDir, `Pulumi.${labStackName(index + 1)}.yaml`);
        const header = `# Written by \`npm run lab -- up\` for lab host ${host.name} (${host.v4}); rewritten at every start.\n`;
        writeFileSync(path, header + stringify(labStackConfig(state, host)));
        return path;
    });
}
