// Fleet ban operations, their pure part: `mor-harden bans` lists each host's fail2ban bans,
// `mor-harden unban` lifts bans through fail2ban (so its database and the ban action's sets
// agree). The host script, its output read back, the reports; src/apply/bans.ts runs them on hosts.
import { isIP } from "node:net";
import { ConfigError } from "../config/schema";
import { fail2banPython } from "./client";
import { hostLabel } from "../render/report";
import { renderTemplate } from "../render/templates";

export interface Ban {
    jail: string;
    address: string;
    /** ISO time the ban began. */
    since: string;
    permanent: boolean;
    /** ISO time the ban ends; null when permanent. */
    until: string | null;
}

export interface HostBans {
    stack: string;
    host?: string;
    address: string;
    /** list: the bans; unban: what was lifted, by jail, and the addresses banned in no jail asked. */
    bans?: Ban[];
    unbanned?: { jail: string; address: string }[];
    notBanned?: string[];
    error?: string;
}

const JAIL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Arguments checked before any host is touched: addresses (IPv4 or IPv6) and a jail name. */
export function checkBanArguments(addresses: string[], jail: string | undefined): void {
    const problems = [
        ...addresses.filter((address) => isIP(address) === 0).map((address) => `${JSON.stringify(address)} is not an IPv4 or IPv6 address`),
        ...(jail !== undefined && !JAIL_NAME.test(jail) ? [`--jail ${JSON.stringify(jail)} is not a jail name`] : []),
    ];
    if (problems.length > 0) throw new ConfigError("arguments", problems);
}

/** The host script: fail2ban's own Python (the interpreter of fail2ban-client) running bans.py. */
export function bansScript(mode: "list" | "unban", jail: string | undefined, addresses: string[]): string {
    const program = renderTemplate("fail2ban/bans.py.hbs", { mode, jail: jail ?? "", addresses: addresses.join(" ") });
    return [`command -v fail2ban-client >/dev/null || { echo 'E fail2ban-client is not installed'; exit 0; }`, fail2banPython(program)].join("\n");
}

const iso = (epoch: number) => new Date(epoch * 1000).toISOString();

export function parseBansOutput(output: string): Pick<HostBans, "bans" | "unbanned" | "notBanned" | "error"> {
    const bans: Ban[] = [];
    const unbanned: { jail: string; address: string }[] = [];
    const notBanned: string[] = [];
    const errors: string[] = [];
    for (const line of output.split("\n")) {
        const words = line.split(" ");
        if (words[0] === "B" && words.length === 5) {
            const until = Number(words[4]);
            bans.push({ jail: words[1], address: words[2], since: iso(Number(words[3])), permanent: until < 0, until: until < 0 ? null : iso(until) });
        } else if (words[0] === "U") unbanned.push({ jail: words[1], address: words[2] });
        else if (words[0] === "N") notBanned.push(words[1]);
        else if (words[0] === "E") errors.push(line.slice(2));
    }
    return { bans, unbanned, notBanned, ...(errors.length > 0 ? { error: errors.join("; ") } : {}) };
}

export function bansText(results: HostBans[]): string {
    const lines: string[] = [];
    for (const result of results) {
        const bans = result.bans ?? [];
        lines.push(`== ${hostLabel(result)} (${result.address}): ${result.error ? `ERROR: ${result.error}` : `${bans.length} ban(s)`}`);
        for (const ban of bans)
            lines.push(`  ${ban.jail.padEnd(18)} ${ban.address.padEnd(40)} since ${ban.since}  ${ban.permanent ? "permanent" : `until ${ban.until}`}`);
    }
    return `${lines.join("\n")}\n`;
}

export function unbanText(results: HostBans[]): string {
    const lines: string[] = [];
    for (const result of results) {
        if (result.error && !result.unbanned?.length) {
            lines.push(`${hostLabel(result)} (${result.address}): ERROR: ${result.error}`);
            continue;
        }
        const lifted = (result.unbanned ?? []).map((ban) => `${ban.address} in ${ban.jail}`);
        const parts = [
            lifted.length > 0 ? `unbanned ${lifted.join(", ")}` : "",
            (result.notBanned ?? []).length > 0 ? `not banned: ${result.notBanned!.join(", ")}` : "",
            result.error ? `ERROR: ${result.error}` : "",
        ].filter(Boolean);
        lines.push(`${hostLabel(result)} (${result.address}): ${parts.join("; ")}`);
    }
    return `${lines.join("\n")}\n`;
}
