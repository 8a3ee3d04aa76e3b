#!/usr/bin/env node
// npx mor-harden render|apply|drift|audit|knock: an environment (--stack NAME | --config FILE), narrowed by --host NAME
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import pLimit from "p-limit";
import { dirname, join, resolve } from "node:path";
import { Command, Option } from "commander";
import { isIP } from "node:net";
import { dnsResolver, type Resolver } from "../config/resolve";
import { ConfigError } from "../config/schema";
import { secretsWithoutPulumi } from "../config/secrets";
import { applyHosts } from "../apply/hosts";
import { applyDetails, applyExitCode, applyJson, applyProgressLine, summaryTable } from "../apply/report";
import { selectHosts, type Environment, type HostOfEnvironment } from "../config/environment";
import { fwknoprcStanza, knockSpecOf, sendKnock, spaKeysOf } from "../knocking/client";
import { generateSpaKeys } from "../knocking/spa";
import { banOperation, bansText, checkBanArguments, unbanText } from "../fail2ban/bans";
import { loadEnvironment, STACKS_DIR } from "../config/stack-file";
import { checkHost, unreadableStack } from "../drift/check";
import { auditHost, unreadableStackAudit } from "../audit/check";
import { severities, type Severity } from "../audit/checks";
import { auditHtml } from "../audit/html";
import { auditExitCode, auditJson, auditJunit, auditProgressLine, auditTextReport } from "../audit/report";
import { exitCode, junitReport, progressLine, textReport } from "../drift/report";
import { opensshVersion } from "../config/values";
import { redactSecrets } from "../render/artifact";
import { renderHost } from "../compose/host";
import { prepareRenderInput } from "../render/prepare";
import { renderScriptsCommand } from "../apply/render-scripts";

/** Exit codes shared by every command: 2 is "could not even start" (bad config, bad arguments). */
export const EXIT_BAD_INPUT = 2;

interface TargetOptions {
    stack?: string;
    config?: string;
    host: string[];
}

function target(options: TargetOptions): { stack?: string; file?: string } {
    if (!options.stack === !options.config) throw new ConfigError("arguments", ["give exactly one of --stack NAME or --config FILE"]);
    return { stack: options.stack, file: options.config };
}

/** The environment's hosts the command is about: all, or those `--host` names. */
function targetHosts(options: TargetOptions): HostOfEnvironment[] {
    return selectHosts([loadEnvironment(target(options))], options.host);
}

const repeatable = (value: string, previous: string[]) => [...previous, value];

function concurrencyOf(value: number): number {
    if (!Number.isInteger(value) || value < 1) throw new ConfigError("arguments", ["--concurrency: a whole number of hosts, at least 1"]);
    return value;
}

/** `--resolve support.kolmisoft.com=192.0.2.1,2001:db8::1`, like curl's --resolve. */
function collectResolve(value: string, previous: Record<string, string[]>): Record<string, string[]> {
    const [name, addresses] = value.split("=", 2);
    const list = (addresses ?? "").split(",").filter(Boolean);
    if (!name || list.length === 0 || list.some((address) => isIP(address) === 0)) throw new ConfigError("arguments", [`--resolve ${value}: expected NAME=ADDRESS[,ADDRESS...]`]);
    return { ...previous, [name]: list };
}

function staticResolver(pinned: Record<string, string[]>): Resolver {
    return (name) => (pinned[name] ? Promise.resolve(pinned[name]) : dnsResolver(name));
}

const program = new Command("mor-harden")
    .description("harden Kolmisoft MOR servers: iptables, fail2ban, sshd, Apache, port knocking")
    .showHelpAfterError()
    // A usage error (unknown command or option, a missing value) exits 2 like any bad input, never
    // 1: a CI drift job must not read a mistyped option as drift. Help and --version exit 0.
    .exitOverride((error) => {
        process.exit(error.exitCode === 0 ? 0 : EXIT_BAD_INPUT);
    });

/** A command about one environment (--stack NAME or --config FILE), narrowed by --host NAME. */
function stackCommand(name: string, description: string): Command {
    return program
        .command(name)
        .description(description)
        .addOption(new Option("--stack <name>", "stacks/Pulumi.<name>.yaml"))
        .addOption(new Option("--config <file>", "a stack file by path"))
        .option("--host <name>", "only this host of the environment (repeatable)", repeatable, [] as string[]);
}

stackCommand("render", "render every artifact of an environment's hosts, without touching any host")
    .option("--out <dir>", "write the artifacts under DIR (DIR/<host>/ for each host of an environment), mirroring their host paths")
    .option("--openssh <version>", "assume this OpenSSH version on the hosts (else the stack's host.openssh or the OS default)")
    .option("--resolve <name=addresses>", "use these addresses for a host name instead of DNS (repeatable; for offline renders)", collectResolve, {})
    .option("--scripts", "also the scripts a host would run as root (under DIR/scripts/ with --out, else printed)")
    .action(async (options: TargetOptions & { out?: string; openssh?: string; resolve: Record<string, string[]>; scripts?: boolean }) => {
        const facts = options.openssh ? { openssh: opensshVersion.parse(options.openssh) } : {};
        const resolver = staticResolver(options.resolve);
        for (const { environment, host } of targetHosts(options)) {
            const plans = renderHost(await prepareRenderInput(host.label, host.config, { facts, resolver, source: host.source }));
            const out = options.out && resolve(options.out, environment.form === "hosts" ? host.name : ".");
            if (environment.form === "hosts") console.log(`== ${host.name} (${host.config.connection.address})`);
            for (const plan of plans) {
                console.log(`${plan.concern}:`);
                for (const line of plan.summary) console.log(`  ${line}`);
                for (const artifact of plan.artifacts) {
                    console.log(`  ${artifact.path} (${artifact.mode} ${artifact.owner}:${artifact.group}${artifact.secret ? ", secret" : ""})`);
                    if (out) {
                        const path = join(out, artifact.path);
                        mkdirSync(dirname(path), { recursive: true });
                        writeFileSync(path, redactSecrets(artifact.content), { mode: 0o600 });
                    }
                }
            }
            if (options.scripts) renderScriptsCommand(plans, host.config, out);
            if (out) console.log(`written under ${out}`);
        }
    });

stackCommand("apply", "apply an environment's hosts directly, in parallel, with no Pulumi state (the lab, an emergency re-harden, benchmarks)")
    .option("--concurrency <n>", "hosts applied at once", (value) => Number(value), 5)
    .option("--resolve <name=addresses>", "use these addresses for a host name instead of DNS (repeatable)", collectResolve, {})
    .option("--json", "print one JSON document with every host's report")
    .action(async (options: TargetOptions & { concurrency: number; resolve: Record<string, string[]>; json?: boolean }) => {
        const hosts = targetHosts(options);
        let done = 0;
        const results = await applyHosts(hosts, {
            concurrency: concurrencyOf(options.concurrency),
            resolver: staticResolver(options.resolve),
            onResult: (result) => console.error(applyProgressLine(result, ++done, hosts.length)),
        });
        process.stdout.write(options.json ? applyJson(results) + "\n" : `${applyDetails(results)}\n${summaryTable(results)}`);
        process.exitCode = applyExitCode(results);
    });

interface FleetOptions {
    stack: string[];
    config: string[];
    all?: boolean;
    host: string[];
    concurrency: number;
    json?: boolean;
    junit?: string;
}

/** A read-only command over many stacks' hosts (drift, audit): stacks by name, --stack, --config or --all, narrowed by --host. */
function fleetCommand(name: string, description: string): Command {
    return program
        .command(name)
        .description(description)
        .argument("[stacks...]", "stack names (stacks/Pulumi.<name>.yaml)")
        .option("--stack <name>", "a stack (repeatable)", repeatable, [] as string[])
        .option("--config <file>", "a stack file by path (repeatable)", repeatable, [] as string[])
        .option("--all", "every stack in stacks/ but the example")
        .option("--host <name>", "only this host of the stacks (repeatable)", repeatable, [] as string[])
        .option("--concurrency <n>", "hosts checked at once", (value) => Number(value), 10)
        .option("--json", "print the results as JSON")
        .option("--junit <file>", "also write the results as JUnit XML");
}

/**
 * Checks every host of the named stacks, at most --concurrency at once, with a progress line on
 * stderr as each ends; a stack that cannot be read is one result (a host not checked) among them.
 */
async function checkFleet<Result>(
    names: string[],
    options: FleetOptions,
    check: (host: HostOfEnvironment) => Promise<Result>,
    unreadable: (target: { stack?: string; file?: string }, error: unknown) => Result,
    progress: (result: Result, index: number, total: number) => string,
): Promise<Result[]> {
    const targets = [
        ...[...names, ...options.stack, ...(options.all ? allStacks() : [])].map((stack) => ({ stack })),
        ...options.config.map((file) => ({ file })),
    ];
    if (targets.length === 0) throw new ConfigError("arguments", ["name at least one stack (or --all)"]);
    const limit = pLimit(concurrencyOf(options.concurrency));
    const environments: Environment[] = [];
    const unreadableResults: Result[] = [];
    for (const stackTarget of targets) {
        try {
            environments.push(loadEnvironment(stackTarget));
        } catch (error) {
            unreadableResults.push(unreadable(stackTarget, error));
        }
    }
    const hosts = selectHosts(environments, options.host);
    const total = hosts.length + unreadableResults.length;
    let done = 0;
    const report = (result: Result) => (console.error(progress(result, ++done, total)), result);
    unreadableResults.forEach(report);
    const checked = await Promise.all(hosts.map((host) => limit(async () => report(await check(host)))));
    return [...unreadableResults, ...checked];
}

fleetCommand("drift", "compare hosts with their stacks, read-only; exit 0 no drift, 1 drift, 2 could not check")
    .option("--resolve <name=addresses>", "use these addresses for a host name instead of DNS (repeatable)", collectResolve, {})
    .action(async (names: string[], options: FleetOptions & { resolve: Record<string, string[]> }) => {
        const results = await checkFleet(names, options, (host) => checkHost(host, { resolver: staticResolver(options.resolve) }), unreadableStack, progressLine);
        if (options.junit) writeFileSync(options.junit, junitReport(results));
        process.stdout.write(options.json ? JSON.stringify(results, null, 2) + "\n" : textReport(results));
        process.exitCode = exitCode(results);
    });

fleetCommand("audit", "where each host stands against Kolmisoft's guide, read-only, managed by mor-harden or not; exit 0 nothing at or above --fail-on, 1 findings, 2 a host not checked")
    .option("--html <file>", "also write one self-contained HTML page for the fleet")
    .addOption(new Option("--fail-on <severity>", "the lowest severity that makes the exit code 1").choices(severities.filter((severity) => severity !== "info")).default("high"))
    .action(async (names: string[], options: FleetOptions & { html?: string; failOn: Severity }) => {
        const results = await checkFleet(names, options, auditHost, unreadableStackAudit, auditProgressLine);
        if (options.junit) writeFileSync(options.junit, auditJunit(results, options.failOn));
        if (options.html) writeFileSync(options.html, auditHtml(results, new Date()));
        process.stdout.write(options.json ? auditJson(results, options.failOn) : auditTextReport(results));
        process.exitCode = auditExitCode(results, options.failOn);
    });

stackCommand("knock", "open the knock-guarded services (SSH, the GUI, AMI) of an environment's hosts for this machine, in either knocking mode")
    .option("--key-gen", "print new fwknop keys (KEY_BASE64, HMAC_KEY_BASE64) for knocking.spa.keyFile or the secrets knockKey/knockHmacKey, and exit")
    .option("--client-config", "print the ~/.fwknoprc stanza of each host for fwknop's own client (keys as placeholders) and exit")
    .action(async (options: TargetOptions & { keyGen?: boolean; clientConfig?: boolean }) => {
        if (options.keyGen) {
            const keys = generateSpaKeys();
            process.stdout.write(`KEY_BASE64: ${keys.key}\nHMAC_KEY_BASE64: ${keys.hmacKey}\n`);
            return;
        }
        for (const { host } of targetHosts(options)) {
            const spec = knockSpecOf(host.config);
            if (!spec) throw new ConfigError(host.source, ["knocking.mode: is off: there is nothing to knock"]);
            const address = host.config.connection.address;
            if (options.clientConfig) {
                process.stdout.write(fwknoprcStanza(host.name, address, spec));
                continue;
            }
            const keys = spaKeysOf(secretsWithoutPulumi(host.config, host.source, process.env, host.name));
            if (spec.mode === "spa" && !keys) throw new ConfigError(host.source, ["knockKey: no SPA keys (knocking.spa.keyFile, or MOR_HARDEN_KNOCK_KEY and MOR_HARDEN_KNOCK_HMAC_KEY)"]);
            await sendKnock(spec, address, keys);
            const { openWindow, guards } = host.config.knocking;
            console.log(`knocked on ${address} (${spec.mode}): ${guards.join(", ")} open for this machine for ${openWindow} s`);
        }
    });

/** The hosts of several stacks (names, --stack, --config, --all), narrowed by --host: for drift and the ban commands. */
interface StacksOptions {
    stack: string[];
    config: string[];
    all?: boolean;
    host: string[];
}

function stacksCommand(name: string, description: string): Command {
    return program
        .command(name)
        .description(description)
        .option("--stack <name>", "a stack (repeatable)", repeatable, [] as string[])
        .option("--config <file>", "a stack file by path (repeatable)", repeatable, [] as string[])
        .option("--all", "every stack in stacks/ but the example")
        .option("--host <name>", "only this host of the stacks (repeatable)", repeatable, [] as string[])
        .option("--concurrency <n>", "hosts at once", (value) => Number(value), 10);
}

/** The stacks named by positional names and --stack, --all and --config. */
function stackTargets(options: Omit<StacksOptions, "host">): { stack?: string; file?: string }[] {
    const targets = [...[...options.stack, ...(options.all ? allStacks() : [])].map((stack) => ({ stack })), ...options.config.map((file) => ({ file }))];
    if (targets.length === 0) throw new ConfigError("arguments", ["name at least one stack (--stack NAME, --config FILE or --all)"]);
    return targets;
}

/** Every stack must load: a command that changes or lists bans goes nowhere on a bad stack. */
function stacksHosts(options: StacksOptions): HostOfEnvironment[] {
    return selectHosts(stackTargets(options).map((stackTarget) => loadEnvironment(stackTarget)), options.host);
}

stacksCommand("bans", "list each host's fail2ban bans: address, jail, since, permanent or until when; exit 1 when a host could not be read")
    .option("--jail <name>", "only this jail")
    .option("--json", "print one JSON document")
    .action(async (options: StacksOptions & { jail?: string; json?: boolean; concurrency: number }) => {
        checkBanArguments([], options.jail);
        const hosts = stacksHosts(options);
        const limit = pLimit(concurrencyOf(options.concurrency));
        const results = await Promise.all(hosts.map((host) => limit(() => banOperation(host, "list", options.jail))));
        process.stdout.write(options.json ? JSON.stringify(results, null, 2) + "\n" : bansText(results));
        process.exitCode = results.some((result) => result.error) ? 1 : 0;
    });

stacksCommand("unban", "lift bans through fail2ban (its database agrees) on each host, reporting per host; exit 1 when a host failed")
    .argument("<addresses...>", "IPv4 or IPv6 addresses")
    .option("--jail <name>", "only in this jail (else in every jail that bans it)")
    .option("--json", "print one JSON document")
    .action(async (addresses: string[], options: StacksOptions & { jail?: string; json?: boolean; concurrency: number }) => {
        // A bad address stops everything before any host is touched.
        checkBanArguments(addresses, options.jail);
        const hosts = stacksHosts(options);
        const limit = pLimit(concurrencyOf(options.concurrency));
        const results = await Promise.all(hosts.map((host) => limit(() => banOperation(host, "unban", options.jail, addresses))));
        process.stdout.write(options.json ? JSON.stringify(results, null, 2) + "\n" : unbanText(results));
        process.exitCode = results.some((result) => result.error) ? 1 : 0;
    });

/** Every stack file in stacks/ but the documented example. */
function allStacks(): string[] {
    return readdirSync(STACKS_DIR)
        .map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1])
        .filter((name): name is string => name !== undefined && name !== "example")
        .sort();
}

program.parseAsync().catch((error: Error) => {
    if (error instanceof ConfigError) {
        console.error(error.message);
    } else {
        console.error(`mor-harden: ${error.message}`);
    }
    process.exit(EXIT_BAD_INPUT);
});
