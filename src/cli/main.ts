#!/usr/bin/env node
// npx mor-harden render|apply|drift|audit|knock|bans|unban: stacks (--stack NAME | --config FILE,
// more than one for drift, audit and the ban commands), narrowed by --host NAME.
//
// Only the commands' options are defined here: each command's module (./render, ./apply, ...) is
// required by its action, so `--help` and every command load only what they use (issue 23: the
// CLI starts in every CI job).
// First of all, so that every module after it (commander's too) is compiled from V8's cache.
import { enableCompileCache } from "./compile-cache";
enableCompileCache();
import { Command, Option } from "commander";
import { severities } from "../audit/checks";
import { ConfigError } from "../config/config-error";
import { collectResolve, EXIT_BAD_INPUT, repeatable } from "./options";

const program = new Command("mor-harden")
    .description("harden Kolmisoft MOR servers: iptables, fail2ban, sshd, Apache, port knocking")
    .showHelpAfterError()
    // A usage error (unknown command or option, a missing value) exits 2 like any bad input, never
    // 1: a CI drift job must not read a mistyped option as drift. Help and --version exit 0.
    .exitOverride((error) => {
        process.exit(error.exitCode === 0 ? 0 : EXIT_BAD_INPUT);
    });

const resolveOption = (why: string) =>
    ["--resolve <name=addresses>", `use these addresses for a host name instead of DNS (repeatable${why})`, collectResolve, {}] as const;

/** A command about one environment: exactly one of --stack NAME or --config FILE, narrowed by --host NAME. */
function environmentCommand(name: string, description: string): Command {
    return program
        .command(name)
        .description(description)
        .addOption(new Option("--stack <name>", "stacks/Pulumi.<name>.yaml"))
        .addOption(new Option("--config <file>", "a stack file by path"))
        .option("--host <name>", "only this host of the environment (repeatable)", repeatable, [] as string[]);
}

/** A command over many stacks' hosts (drift, audit, bans, unban): --stack, --config (both repeatable) or --all, narrowed by --host. */
function stacksCommand(name: string, description: string, concurrency: { what: string; default: number }): Command {
    return program
        .command(name)
        .description(description)
        .option("--stack <name>", "a stack (repeatable)", repeatable, [] as string[])
        .option("--config <file>", "a stack file by path (repeatable)", repeatable, [] as string[])
        .option("--all", "every stack in stacks/ but the example")
        .option("--host <name>", "only this host of the stacks (repeatable)", repeatable, [] as string[])
        .option("--concurrency <n>", concurrency.what, (value) => Number(value), concurrency.default);
}

/** drift and audit: stacks by name as well, JSON and JUnit reports. */
function fleetCommand(name: string, description: string, concurrency: number): Command {
    return stacksCommand(name, description, { what: "hosts checked at once", default: concurrency })
        .argument("[stacks...]", "stack names (stacks/Pulumi.<name>.yaml)")
        .option("--json", "print the results as JSON")
        .option("--junit <file>", "also write the results as JUnit XML");
}

environmentCommand("render", "render every artifact of an environment's hosts, without touching any host")
    .option("--out <dir>", "write the artifacts under DIR (DIR/<host>/ for each host of an environment), mirroring their host paths")
    .option("--openssh <version>", "assume this OpenSSH version on the hosts (else the stack's host.openssh or the OS default)")
    .option(...resolveOption("; for offline renders"))
    .option("--scripts", "also the scripts a host would run as root (under DIR/scripts/ with --out, else printed)")
    .action((options) => (require("./render") as typeof import("./render")).renderCommand(options));

environmentCommand("apply", "apply an environment's hosts directly, in parallel, with no Pulumi state (the lab, an emergency re-harden, benchmarks)")
    // 10: at 50 hosts the fastest on the lab's link and twice as fast as 5 over a 100 ms round
    // trip (README, Benchmarks: a fleet of 1,000 hosts); more at once is the operator's choice.
    // Logins and reads change nothing: up to 25 hosts are read at once (runHostsChanging).
    .option("--concurrency <n>", "hosts changed at once; up to 25 are logged in and read at once", (value) => Number(value), 10)
    .option(...resolveOption(""))
    .option("--json", "print one JSON document with every host's report")
    .action((options) => (require("./apply") as typeof import("./apply")).applyCommand(options));

// 25: a drift is read-only and waits mostly on the link (0.03 s of the workstation's CPU a host):
// at 50 hosts the fastest on the lab's link, and over a 100 ms round trip a wave costs ~1.3 s.
fleetCommand("drift", "compare hosts with their stacks, read-only; exit 0 no drift, 1 drift, 2 could not check", 25)
    .option(...resolveOption(""))
    .action((names, options) => (require("./drift") as typeof import("./drift")).driftCommand(names, options));

fleetCommand(
    "audit",
    "where each host stands against Kolmisoft's guide, read-only, managed by mor-harden or not; exit 0 nothing at or above --fail-on, 1 findings, 2 a host not checked",
    10,
)
    .option("--html <file>", "also write one self-contained HTML page for the fleet")
    .addOption(
        new Option("--fail-on <severity>", "the lowest severity that makes the exit code 1")
            .choices(severities.filter((severity) => severity !== "info"))
            .default("high"),
    )
    .action((names, options) => (require("./audit") as typeof import("./audit")).auditCommand(names, options));

environmentCommand("knock", "open the knock-guarded services (SSH, the GUI, AMI) of an environment's hosts for this machine, in either knocking mode")
    .option("--key-gen", "print new fwknop keys (KEY_BASE64, HMAC_KEY_BASE64) for knocking.spa.keyFile or the secrets knockKey/knockHmacKey, and exit")
    .option("--client-config", "print the ~/.fwknoprc stanza of each host for fwknop's own client (keys as placeholders) and exit")
    .action((options) => (require("./knock") as typeof import("./knock")).knockCommand(options));

stacksCommand("bans", "list each host's fail2ban bans: address, jail, since, permanent or until when; exit 1 when a host could not be read", {
    what: "hosts at once",
    default: 10,
})
    .option("--jail <name>", "only this jail")
    .option("--json", "print one JSON document")
    .action((options) => (require("./bans") as typeof import("./bans")).bansCommand(options));

stacksCommand("unban", "lift bans through fail2ban (its database agrees) on each host, reporting per host; exit 1 when a host failed", {
    what: "hosts at once",
    default: 10,
})
    .argument("<addresses...>", "IPv4 or IPv6 addresses")
    .option("--jail <name>", "only in this jail (else in every jail that bans it)")
    .option("--json", "print one JSON document")
    .action((addresses, options) => (require("./bans") as typeof import("./bans")).unbanCommand(addresses, options));

program.parseAsync().catch((error: Error) => {
    // A bad stack or argument is named as it is; anything else says who speaks.
    console.error(error instanceof ConfigError ? error.message : `mor-harden: ${error.message}`);
    process.exit(EXIT_BAD_INPUT);
});
