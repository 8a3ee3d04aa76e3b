// Ansible beside mor-harden: bench/ansible/playbook.yml over the same lab hosts, with the files
// mor-harden renders for them (secrets filled in, in a private temporary directory), forks
// raised to the number of hosts, run from the lab's workstation like the tool itself.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { prepareHost } from "../src/apply/hosts";
import { loadEnvironment } from "../src/config/stack-file";
import { execArgv, knownHostsPath, type LabState } from "../src/lab/lab";
import { fillSecrets, type Concern } from "../src/render/artifact";

const PLAYBOOK = join(__dirname, "..", "..", "bench", "ansible", "playbook.yml");

/** The playbook's handler for each concern: the reload mor-harden runs for it. */
const handlers: Partial<Record<Concern, string>> = { firewall: "reload firewall", sshd: "reload sshd", fail2ban: "reload fail2ban", apache: "reload apache" };

/** Writes the inventory, host_vars (the rendered files, listed) and ansible.cfg for these hosts. */
export async function prepareAnsible(state: LabState, stackFile: string, dir: string): Promise<void> {
    mkdirSync(join(dir, "host_vars"), { recursive: true });
    const environment = loadEnvironment({ file: stackFile });
    const hosts = state.hosts.map((host) => ({ host, of: environment.hosts.find((entry) => entry.name === host.name)! }));
    for (const { host, of } of hosts) {
        const { secrets, plans } = await prepareHost(of);
        const managed = plans.flatMap((plan) =>
            plan.artifacts.map((artifact) => {
                const src = join(dir, "files", host.name, artifact.path);
                mkdirSync(dirname(src), { recursive: true });
                writeFileSync(src, fillSecrets(artifact.content, secrets), { mode: 0o600 });
                const family = artifact.path.endsWith(".v6") ? "ip6tables" : "iptables";
                return {
                    src,
                    dest: artifact.path,
                    mode: artifact.mode,
                    handler: handlers[plan.concern],
                    ...(plan.concern === "firewall" ? { validate: `${family}-restore --test %s` } : {}),
                };
            }),
        );
        writeFileSync(join(dir, "host_vars", `${host.name}.yml`), stringify({ ansible_host: host.v4, managed_files: managed }));
    }
    writeFileSync(
        join(dir, "inventory.ini"),
        `[mor]\n${hosts.map(({ host }) => host.name).join("\n")}\n\n[mor:vars]\nansible_user=root\nansible_ssh_private_key_file=${state.operatorKey}\nansible_python_interpreter=/usr/bin/python3\n`,
    );
    writeFileSync(
        join(dir, "ansible.cfg"),
        [
            "[defaults]",
            `inventory = ${join(dir, "inventory.ini")}`,
            `forks = ${hosts.length}`,
            "host_key_checking = True",
            "retry_files_enabled = False",
            `local_tmp = ${join(dir, "tmp")}`,
            "",
            "[ssh_connection]",
            "pipelining = True",
            `control_path_dir = ${join(dir, "cp")}`,
            `ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=${knownHostsPath(state.dir)} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes`,
            "",
        ].join("\n"),
    );
    chmodSync(dir, 0o700);
}

export interface AnsibleRun {
    seconds: number;
    changedHosts: number;
    failedHosts: number;
    /** SSH commands Ansible ran per host (one per module run, pipelined): its round trips. */
    roundTrips?: number;
}

/** One ansible-playbook run from the workstation; `check` is `--check --diff`. */
export function runAnsible(state: LabState, dir: string, options: { check: boolean; count?: boolean }): AnsibleRun {
    const workstation = state.clients.find((client) => client.name === "workstation")!;
    const args = ["ansible-playbook", PLAYBOOK, ...(options.check ? ["--check", "--diff"] : []), ...(options.count ? ["-vvv"] : [])];
    const [command, ...rest] = execArgv(workstation, ["env", `ANSIBLE_CONFIG=${join(dir, "ansible.cfg")}`, "ANSIBLE_NOCOLOR=1", ...args]);
    const started = process.hrtime.bigint();
    const result = spawnSync(command, rest, { encoding: "utf8", timeout: 1_800_000, maxBuffer: 512 * 1024 * 1024 });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const recap = [...result.stdout.matchAll(/^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)];
    if (recap.length === 0) throw new Error(`ansible-playbook printed no recap (exit ${result.status}): ${result.stderr}\n${result.stdout.slice(-2000)}`);
    const run: AnsibleRun = {
        seconds,
        changedHosts: recap.filter((match) => Number(match[2]) > 0).length,
        failedHosts: recap.filter((match) => Number(match[3]) > 0 || Number(match[4]) > 0).length,
    };
    if (options.count) {
        const commands = [...result.stdout.matchAll(/^<(\S+)> SSH: EXEC ssh /gm)].length;
        run.roundTrips = commands / recap.length;
    }
    return run;
}
