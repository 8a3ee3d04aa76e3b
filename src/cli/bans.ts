// `mor-harden bans` and `mor-harden unban`: fail2ban's bans listed or lifted on every host of the
// stacks; every stack must load, and bad arguments stop everything before any host is touched.
import { banOperations, bansExitCode } from "../apply/bans";
import { bansText, checkBanArguments, unbanText } from "../fail2ban/bans";
import { concurrencyOf } from "./options";
import { stackTargets, targetHosts, type TargetOptions } from "./targets";

export interface BansOptions extends TargetOptions {
    stack: string[];
    config: string[];
    concurrency: number;
    jail?: string;
    json?: boolean;
}

export async function bansCommand(options: BansOptions): Promise<void> {
    checkBanArguments([], options.jail);
    const hosts = targetHosts(stackTargets(options), options.host);
    const results = await banOperations(hosts, concurrencyOf(options.concurrency), "list", options.jail);
    process.stdout.write(options.json ? JSON.stringify(results, null, 2) + "\n" : bansText(results));
    process.exitCode = bansExitCode(results);
}

export async function unbanCommand(addresses: string[], options: BansOptions): Promise<void> {
    checkBanArguments(addresses, options.jail);
    const hosts = targetHosts(stackTargets(options), options.host);
    const results = await banOperations(hosts, concurrencyOf(options.concurrency), "unban", options.jail, addresses);
    process.stdout.write(options.json ? JSON.stringify(results, null, 2) + "\n" : unbanText(results));
    process.exitCode = bansExitCode(results);
}
