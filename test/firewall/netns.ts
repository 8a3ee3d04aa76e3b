// A scratch network namespace (with its own mount namespace) for running rendered firewall
// commands against the real iptables: nothing outside it is touched, and it dies with its process.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type Backend = "nft" | "legacy";

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

export interface Netns {
    /** Runs `script` with sh inside the namespace; `env` is added to the environment. */
    run(script: string, env?: Record<string, string>): RunResult;
    /** Like run, but throws with the output when the script fails. */
    ok(script: string, env?: Record<string, string>): string;
    stop(): void;
}

let legacyBin: string | undefined;

/**
 * A directory whose iptables* names are iptables-legacy, put first in PATH: the rendered commands
 * call the plain names, which are whichever backend the host uses.
 */
function legacyPath(): string {
    if (!legacyBin) {
        legacyBin = mkdtempSync(join(tmpdir(), "morh-legacy-"));
        for (const name of ["iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"]) {
            symlinkSync("/usr/sbin/xtables-legacy-multi", join(legacyBin, name));
        }
    }
    return legacyBin;
}

/**
 * Starts a namespace where `mounts` (host directory -> temp directory) are bind-mounted, so the
 * rendered paths (/etc/iptables/rules.v4) are the test's own files.
 */
export async function startNetns(backend: Backend, mounts: Record<string, string> = {}): Promise<Netns> {
    const binds = Object.entries(mounts)
        .map(([target, source]) => `mount --bind '${source}' '${target}' &&`)
        .join(" ");
    // The sleep is bounded: a test that dies without stopping it leaves nothing running for long.
    const child: ChildProcess = spawn("unshare", ["--net", "--mount", "--propagation", "private", "sh", "-c", `${binds} echo ready && exec sleep 600`], {
        stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
        child.once("error", reject);
        child.once("exit", (code) => reject(new Error(`unshare exited ${code}`)));
        child.stdout!.once("data", () => resolve());
    });
    const pid = child.pid!;
    const path = backend === "legacy" ? `${legacyPath()}:${process.env.PATH}` : process.env.PATH!;
    const run = (script: string, env: Record<string, string> = {}): RunResult => {
        const result = spawnSync("nsenter", ["--target", String(pid), "--net", "--mount", "sh", "-c", script], {
            encoding: "utf8",
            env: { ...process.env, PATH: path, ...env },
        });
        return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
    };
    return {
        run,
        ok(script, env) {
            const result = run(script, env);
            if (result.code !== 0) throw new Error(`exit ${result.code}: ${script.slice(0, 200)}\n${result.stdout}${result.stderr}`);
            return result.stdout;
        },
        stop() {
            child.removeAllListeners("exit");
            child.kill("SIGKILL");
        },
    };
}

/** Whether this machine can run the namespace tests (root, unshare, both iptables backends). */
export function netnsAvailable(): boolean {
    try {
        execFileSync("unshare", ["--net", "sh", "-c", "iptables-nft -S >/dev/null && iptables-legacy -S >/dev/null"], { stdio: "ignore" });
        return true;
    } catch {
        return false;
    }
}
