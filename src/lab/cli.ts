#!/usr/bin/env node
// npm run lab -- up [--hosts N] | status | exec NAME -- COMMAND... | down
import { join } from "node:path";
import { Command } from "commander";
import { findNode, labDown, labExec, labRelay, labUp, readState, requireRootOnLinux } from "./lab";
import { writeLabStacks } from "./stacks";
import type { VoipProfile } from "./voip-files";

/** `weak:exposed,,strong:loopback`: a profile per host in order (empty: none). */
function parseVoipProfiles(value: string): (VoipProfile | undefined)[] {
    return value.split(",").map((item) => {
        if (item === "") return undefined;
        const [secrets, database = "loopback"] = item.split(":");
        if ((secrets !== "weak" && secrets !== "strong") || (database !== "exposed" && database !== "loopback"))
            throw new Error(`--voip ${item}: expected weak or strong, then :exposed or :loopback`);
        return { secrets, database };
    });
}
import { labProfiles, type LabProfile } from "./mor-profile";

export const LAB_DIR = join(__dirname, "..", "..", "..", ".lab");

const program = new Command("lab").description("disposable MOR-like Debian hosts in namespaces");

program
    .command("up")
    .description("start the lab (harmless when it already runs) and write its environment, stacks/Pulumi.lab.yaml")
    .option("--hosts <n>", "number of hosts", (value) => Number(value), 1)
    .option(
        "--voip <profiles>",
        "give hosts MOR-like Asterisk files and MariaDB, one profile per host in order: weak or strong, :exposed or :loopback (weak:exposed,strong:loopback)",
        parseVoipProfiles,
    )
    .option("--profile <profile>", `how hosts look before mor-harden: ${labProfiles.join(", ")} (mor: as a MOR install leaves them)`, "plain")
    .option("--acme", "start an ACME CA (Debian's pebble, names by pebble-challtestsrv) on 198.51.100.30 and give the hosts apache.acme pointing at it")
    .action(async (options: { hosts: number; voip?: (VoipProfile | undefined)[]; profile: LabProfile; acme?: boolean }) => {
        if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > 20) throw new Error("--hosts: a number from 1 to 20");
        if (!labProfiles.includes(options.profile)) throw new Error(`--profile: one of ${labProfiles.join(", ")}`);
        const state = await labUp(LAB_DIR, options.hosts, undefined, { voip: options.voip, profile: options.profile, acme: options.acme });
        const stack = writeLabStacks(state, join(LAB_DIR, "..", "stacks"));
        for (const host of state.hosts)
            console.log(
                `${host.name}  ${host.v4}  ${host.v6}  ${host.hostKey}  ${host.profile}  started in ${host.startSeconds.toFixed(2)}s${host.voip ? `  voip ${host.voip.secrets}:${host.voip.database}` : ""}`,
            );
        for (const client of state.clients) console.log(`${client.name}  ${client.v4}  ${client.v6}`);
        if (state.acme) console.log(`acme CA  ${state.acme.directory}  (pebble, its TLS signed by ${state.caCertificate})`);
        console.log(`stack file: ${stack} (hosts ${state.hosts.map((host) => host.name).join(", ")})`);
    });

program
    .command("status")
    .description("what runs now")
    .action(() => {
        const state = readState(LAB_DIR);
        if (!state) return console.log("the lab is down");
        for (const host of state.hosts) {
            const services = labExec(
                host,
                ["sh", "-c", "for p in sshd apache2 fail2ban-server rsyslogd; do pgrep -x $p >/dev/null && printf '%s up  ' $p || printf '%s DOWN  ' $p; done"],
                { timeoutMs: 10_000 },
            );
            console.log(`${host.name}  ${host.v4}  ${services.code === 0 ? services.stdout : "unreachable"}`);
        }
        for (const client of state.clients) console.log(`${client.name}  ${client.v4}`);
    });

program
    .command("exec <name> <command...>")
    .description("run a command inside a host, workstation or attacker; exits with its code")
    .action((name: string, command: string[]) => {
        const state = readState(LAB_DIR);
        if (!state) throw new Error("the lab is down: npm run lab -- up");
        // Relayed as it comes, of any size (captured, a 1 MiB buffer cut `bans --json` of 20,000 bans).
        process.exitCode = labRelay(findNode(state, name), command, { timeoutMs: 600_000 });
    });

program
    .command("down")
    .description("stop everything the lab started")
    .action(() => {
        requireRootOnLinux();
        labDown(LAB_DIR);
        console.log("the lab is down");
    });

program.parseAsync().catch((error: Error) => {
    console.error(`lab: ${error.message}`);
    process.exit(2);
});
