// Fleet ban operations on hosts (`mor-harden bans`, `mor-harden unban`): the fail2ban concern's
// script (src/fail2ban/bans.ts) run in one SSH round trip a host, one Python start on it.
import type { HostOfEnvironment } from "../config/environment";
import { bansScript, parseBansOutput, type HostBans } from "../fail2ban/bans";
import { hostIdentity } from "../render/report";
import { EXIT, hostSecrets, reasonOf, runHosts, withSession, worstExit } from "./run-hosts";

/** Runs the list or unban script on one host. */
export async function banOperation(target: HostOfEnvironment, mode: "list" | "unban", jail: string | undefined, addresses: string[] = []): Promise<HostBans> {
    const result: HostBans = { ...hostIdentity(target), address: target.host.config.connection.address };
    let secrets = {};
    try {
        secrets = hostSecrets(target.host);
        const output = await withSession(target, secrets, (session) => session.run(bansScript(mode, jail, addresses), 300));
        if (output.code !== 0) throw new Error(`the script failed on the host (exit ${output.code}): ${output.stderr.trim().split("\n").slice(-3).join(" ")}`);
        const parsed = parseBansOutput(output.stdout);
        if (mode === "list") Object.assign(result, { bans: parsed.bans }, parsed.error ? { error: parsed.error } : {});
        else Object.assign(result, { unbanned: parsed.unbanned, notBanned: parsed.notBanned }, parsed.error ? { error: parsed.error } : {});
    } catch (error) {
        result.error = reasonOf(error, secrets);
    }
    return result;
}

/** Every host's bans listed or lifted, at most `concurrency` at once, in the hosts' order. */
export function banOperations(
    targets: HostOfEnvironment[],
    concurrency: number,
    mode: "list" | "unban",
    jail: string | undefined,
    addresses: string[] = [],
): Promise<HostBans[]> {
    return runHosts(targets, concurrency, (target) => banOperation(target, mode, jail, addresses));
}

/** 1 when a host could not be read or a ban not lifted, else 0 (bad arguments exit 2 before any host). */
export const bansExitCode = (results: HostBans[]) => worstExit(results.map((result) => (result.error ? EXIT.found : EXIT.ok)));
