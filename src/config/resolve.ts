// The one effect before rendering: host names among the sources are resolved to addresses, so
// the preview shows exactly which addresses the firewall and fail2ban will trust.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { trustedSources } from "../firewall/schema";
import { jailNames } from "../fail2ban/schema";
import { ConfigError, type HostConfig } from "./schema";

export interface Addresses {
    v4: string[];
    v6: string[];
}

/** Each source named in the config -> the addresses or networks it stands for, by family. */
export type ResolvedSources = Record<string, Addresses>;

export type Resolver = (name: string) => Promise<string[]>;

export const dnsResolver: Resolver = async (name) => (await lookup(name, { all: true, verbatim: true })).map((entry) => entry.address);

/** Every source a config names, with the key it came from (for errors). */
export function namedSources(config: HostConfig): { key: string; source: string }[] {
    const named = trustedSources(config.firewall).map((source, index) => ({
        key: config.firewall.trustKolmisoftSupport && index === 0 ? "firewall.trustKolmisoftSupport" : "firewall.trusted",
        source,
    }));
    config.fail2ban.ignoreip.forEach((source, index) => named.push({ key: `fail2ban.ignoreip[${index}]`, source }));
    for (const jail of jailNames) {
        config.fail2ban.jails[jail]?.ignoreip?.forEach((source, index) => named.push({ key: `fail2ban.jails.${jail}.ignoreip[${index}]`, source }));
    }
    config.firewall.extraRules.forEach((rule, ruleIndex) =>
        rule.sources?.forEach((source, index) => named.push({ key: `firewall.extraRules[${ruleIndex}].sources[${index}]`, source })),
    );
    if (config.sshd.support.mode !== "off")
        config.sshd.support.sources.forEach((source, index) => named.push({ key: `sshd.support.sources[${index}]`, source }));
    return named;
}

export function splitByFamily(entries: string[]): Addresses {
    const family = (entry: string) => isIP(entry.split("/")[0]);
    return { v4: entries.filter((entry) => family(entry) === 4), v6: entries.filter((entry) => family(entry) === 6) };
}

/** Resolves every host name in the config; a name that does not resolve is an error naming its key. */
export async function resolveSources(config: HostConfig, resolver: Resolver = dnsResolver, source = "stack config"): Promise<ResolvedSources> {
    const resolved: ResolvedSources = {};
    const problems: string[] = [];
    await Promise.all(
        namedSources(config).map(async ({ key, source: name }) => {
            if (resolved[name]) return;
            if (isIP(name.split("/")[0])) {
                resolved[name] = splitByFamily([name]);
                return;
            }
            try {
                const addresses = (await resolver(name)).filter((address) => isIP(address) !== 0);
                if (addresses.length === 0) throw new Error("no address");
                resolved[name] = splitByFamily([...new Set(addresses)].sort());
            } catch (error) {
                const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
                problems.push(`${key}: host name "${name}" does not resolve (${reason})`);
            }
        }),
    );
    if (problems.length > 0) throw new ConfigError(source, problems.sort());
    return resolved;
}

/** The addresses of several sources of one family, without duplicates. */
export function addressesOf(sources: string[], resolved: ResolvedSources, family: "v4" | "v6"): string[] {
    return [...new Set(sources.flatMap((source) => resolved[source]?.[family] ?? []))];
}
