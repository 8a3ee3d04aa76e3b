#!/usr/bin/env node
// npx mor-harden render --stack NAME | --config FILE [--out DIR]
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import pLimit from "p-limit";
import { dirname, join, resolve } from "node:path";
import { Command, Option } from "commander";
import { isIP } from "node:net";
import { dnsResolver, type Resolver } from "../config/resolve";
import { ConfigError } from "../config/schema";
import { secretsWithoutPulumi } from "../config/secrets";
import { applyHost, ApplyError, type ApplyReport } from "../apply/engine";
import { hostTarget } from "../apply/target";
import { fwknoprcStanza, knockSpecOf, sendKnock, spaKeysOf } from "../knocking/client";
import { generateSpaKeys } from "../knocking/spa";
import { loadStackConfig, STACKS_DIR } from "../config/stack-file";
import { checkStack } from "../drift/check";
import { exitCode, junitReport, progressLine, textReport } from "../drift/report";
import { opensshVersion } from "../config/values";
import { redactSecrets } from "../render/artifact";
import { renderHost } from "../render/host";
import { prepareRenderInput } from "../render/prepare";

/** Exit codes shared by every command: 2 is "could not even start" (bad config, bad arguments). */
export const EXIT_BAD_INPUT = 2;

interface TargetOptions {
    stack?: string;
    config?: string;
}

function target(options: TargetOptions): { stack?: string; file?: string } {
    if (!options.stack === !options.config) throw new ConfigError("arguments", ["give exactly one of --stack NAME or --config FILE"]);
    return { stack: options.stack, file: options.config };
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

/** A command about one stack: --stack NAME or --config FILE. */
function stackCommand(name: string, description: string): Command {
    return program
        .command(name)
        .description(description)
        .addOption(new Option("--stack <name>", "stacks/Pulumi.<name>.yaml"))
        .addOption(new Option("--config <file>", "a stack file by path"));
}

stackCommand("render", "render every artifact of a stack, without touching any host")
    .option("--out <dir>", "write the artifacts under DIR, mirroring their host paths")
    .option("--openssh <version>", "assume this OpenSSH version on the host (else the stack's host.openssh or the OS default)")
    .option("--resolve <name=addresses>", "use these addresses for a host name instead of DNS (repeatable; for offline renders)", collectResolve, {})
    .action(async (options: TargetOptions & { out?: string; openssh?: string; resolve: Record<string, string[]> }) => {
        const loaded = loadStackConfig(target(options));
        const facts = options.openssh ? { openssh: opensshVersion.parse(options.openssh) } : {};
        const resolver = staticResolver(options.resolve);
        const plans = renderHost(await prepareRenderInput(loaded.name, loaded.config, { facts, resolver, source: loaded.source }));
        for (const plan of plans) {
            console.log(`${plan.concern}:`);
            for (const line of plan.summary) console.log(`  ${line}`);
            for (const artifact of plan.artifacts) {
                console.log(`  ${artifact.path} (${artifact.mode} ${artifact.owner}:${artifact.group}${artifact.secret ? ", secret" : ""})`);
                if (options.out) {
                    const path = join(resolve(options.out), artifact.path);
                    mkdirSync(dirname(path), { recursive: true });
                    writeFileSync(path, redactSecrets(artifact.content), { mode: 0o600 });
                }
            }
        }
        if (options.out) console.log(`written under ${resolve(options.out)}`);
    });

stackCommand("apply", "apply one stack directly, with no Pulumi state (the lab, an emergency re-harden, benchmarks)")
    .option("--resolve <name=addresses>", "use these addresses for a host name instead of DNS (repeatable)", collectResolve, {})
    .option("--json", "print the report as JSON")
    .action(async (options: TargetOptions & { resolve: Record<string, string[]>; json?: boolean }) => {
        const loaded = loadStackConfig(target(options));
        const secrets = secretsWithoutPulumi(loaded.config, loaded.source);
        const input = await prepareRenderInput(loaded.name, loaded.config, { resolver: staticResolver(options.resolve), source: loaded.source });
        const plans = renderHost(input);
        let report: ApplyReport;
        try {
            report = await applyHost(hostTarget(loaded.config, secrets), plans, secrets, { renderedForOpenssh: input.facts.openssh.join(".") });
        } catch (error) {
            if (!(error instanceof ApplyError)) throw error;
            printReport(error.report, options.json);
            process.exitCode = 1;
            return;
        }
        printReport(report, options.json);
    });

program
    .command("drift")
    .description("compare hosts with their stacks, read-only; exit 0 no drift, 1 drift, 2 could not check")
    .argument("[stacks...]", "stack names (stacks/Pulumi.<name>.yaml)")
    .option("--stack <name>", "a stack (repeatable)", (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option("--config <file>", "a stack file by path (repeatable)", (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option("--all", "every stack in stacks/ but the example")
    .option("--concurrency <n>", "hosts checked at once", (value) => Number(value), 10)
    .option("--json", "print the results as JSON")
    .option("--junit <file>", "also write the results as JUnit XML")
    .option("--resolve <name=addresses>", "use these addresses for a host name instead of DNS (repeatable)", collectResolve, {})
    .action(async (names: string[], options: { stack: string[]; config: string[]; all?: boolean; concurrency: number; json?: boolean; junit?: string; resolve: Record<string, string[]> }) => {
        const targets = [
            ...[...names, ...options.stack, ...(options.all ? allStacks() : [])].map((stack) => ({ stack })),
            ...options.config.map((file) => ({ file })),
        ];
        if (targets.length === 0) throw new ConfigError("arguments", ["name at least one stack (or --all)"]);
        if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new ConfigError("arguments", ["--concurrency: a whole number of hosts, at least 1"]);
        const limit = pLimit(options.concurrency);
        let done = 0;
        const results = await Promise.all(
            targets.map((target) =>
                limit(async () => {
                    const result = await checkStack(target, { resolver: staticResolver(options.resolve) });
                    console.error(progressLine(result, ++done, targets.length));
                    return result;
                }),
            ),
        );
        if (options.junit) writeFileSync(options.junit, junitReport(results));
        process.stdout.write(options.json ? JSON.stringify(results, null, 2) + "\n" : textReport(results));
        process.exitCode = exitCode(results);
    });

stackCommand("knock", "open the stack's knock-guarded services (SSH, the GUI, AMI) for this machine, in either knocking mode")
    .option("--key-gen", "print new fwknop keys (KEY_BASE64, HMAC_KEY_BASE64) for knocking.spa.keyFile or the secrets knockKey/knockHmacKey, and exit")
    .option("--client-config", "print the ~/.fwknoprc stanza for fwknop's own client (keys as placeholders) and exit")
    .action(async (options: TargetOptions & { keyGen?: boolean; clientConfig?: boolean }) => {
        if (options.keyGen) {
            const keys = generateSpaKeys();
            process.stdout.write(`KEY_BASE64: ${keys.key}\nHMAC_KEY_BASE64: ${keys.hmacKey}\n`);
            return;
        }
        const loaded = loadStackConfig(target(options));
        const spec = knockSpecOf(loaded.config);
        if (!spec) throw new ConfigError(loaded.source, ["knocking.mode: is off: there is nothing to knock"]);
        const address = loaded.config.connection.address;
        if (options.clientConfig) {
            process.stdout.write(fwknoprcStanza(loaded.name, address, spec));
            return;
        }
        const secrets = secretsWithoutPulumi(loaded.config, loaded.source);
        const keys = spaKeysOf(secrets);
        if (spec.mode === "spa" && !keys) throw new ConfigError(loaded.source, ["knockKey: no SPA keys (knocking.spa.keyFile, or MOR_HARDEN_KNOCK_KEY and MOR_HARDEN_KNOCK_HMAC_KEY)"]);
        await sendKnock(spec, address, keys);
        const { openWindow, guards } = loaded.config.knocking;
        console.log(`knocked on ${address} (${spec.mode}): ${guards.join(", ")} open for this machine for ${openWindow} s`);
    });

/** Every stack file in stacks/ but the documented example. */
function allStacks(): string[] {
    return readdirSync(STACKS_DIR)
        .map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1])
        .filter((name): name is string => name !== undefined && name !== "example")
        .sort();
}

function printReport(report: ApplyReport, json = false): void {
    if (json) return void console.log(JSON.stringify(report));
    for (const concern of report.concerns) {
        console.log(`${report.address} ${concern.concern}: ${concern.status}${concern.message ? ` (${concern.message})` : ""}`);
        for (const note of concern.notes ?? []) console.log(`  ${note}`);
    }
    console.log(`${report.address}: ${report.roundTrips} round trips over ${report.connections} connection(s), ${report.bytes} bytes`);
}

program.parseAsync().catch((error: Error) => {
    if (error instanceof ConfigError) {
        console.error(error.message);
    } else {
        console.error(`mor-harden: ${error.message}`);
    }
    process.exit(EXIT_BAD_INPUT);
});
