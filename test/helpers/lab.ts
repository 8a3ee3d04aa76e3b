// Lab hosts for integration tests: each test file gets its own lab (own namespace prefix and
// directory), stopped in `after` and, should the process die first, on exit.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { labDown, labExec, labUp, type ExecResult, type LabHost, type LabNode, type LabState } from "../../src/lab/lab";
import { fillSecrets, type Artifact } from "../../src/render/artifact";

export interface TestLab {
    state: LabState;
    host(index?: number): LabHost;
    client(name: "workstation" | "attacker"): LabNode;
    stop(): void;
}

export async function startTestLab(hosts = 1): Promise<TestLab> {
    const dir = mkdtempSync(join(tmpdir(), "mor-harden-lab-"));
    const prefix = `mht${process.pid % 100000}-`;
    let stopped = false;
    const stop = () => {
        if (stopped) return;
        stopped = true;
        labDown(dir, prefix);
        rmSync(dir, { recursive: true, force: true });
    };
    process.once("exit", stop);
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => (stop(), process.exit(130)));
    let state: LabState;
    try {
        state = await labUp(dir, hosts, prefix);
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

/** Writes artifacts into a lab host as the provider would (secrets filled in), without activating them. */
export function writeArtifacts(host: LabHost, artifacts: Artifact[], secrets: Record<string, string> = {}): void {
    for (const artifact of artifacts) {
        const result = labExec(host, ["sh", "-c", `mkdir -p "$(dirname '${artifact.path}')" && cat > '${artifact.path}' && chmod ${artifact.mode} '${artifact.path}'`], {
            input: fillSecrets(artifact.content, secrets),
        });
        if (result.code !== 0) throw new Error(`writing ${artifact.path} into ${host.name}: ${result.stderr}`);
    }
}
