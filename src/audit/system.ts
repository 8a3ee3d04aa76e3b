// Findings about the host around Asterisk: MySQL/MariaDB, the GUI's certificate, services
// exposed through the live firewall, fail2ban and sudoers. Pure.
import { X509Certificate } from "node:crypto";
import { serviceCatalogue, type ServiceDefinition } from "../firewall/services";
import { jailNames } from "../fail2ban/schema";
import { jailsByThread } from "../fail2ban/threads";
import { finding, type AuditFinding } from "./checks";
import { acceptedFromAnywhere, banCounts, banSetMatched, banSets, familiesOf, listensBeyondLoopback, type Listener } from "./firewall";
import type { AuditFacts } from "./script";
import { acmeRenewalMargin } from "../apache/render";

const MYSQL_PROCESSES = /^(mysqld|mariadbd)$/;
const WEB_PROCESSES = /^(apache2|httpd)$/;
const DAY = 86_400;
const EXPIRY_WARNING_DAYS = 30;

const socketLabel = (listener: Listener) =>
    `${listener.protocol} ${listener.address.includes(":") ? `[${listener.address}]` : listener.address}:${listener.port}${listener.process ? ` (${listener.process})` : ""}`;

export function mysqlFindings(facts: AuditFacts, listeners: Listener[]): AuditFinding[] {
    const findings: AuditFinding[] = [];
    const server = listeners.filter((listener) => MYSQL_PROCESSES.test(listener.process));
    for (const listener of server.filter(listensBeyondLoopback)) findings.push(finding("mysql.exposed", `${socketLabel(listener)} listens beyond loopback`));
    if (facts.accounts?.read) {
        for (const { user, host } of facts.accounts.rows) {
            if (host === "%") findings.push(finding("mysql.remote-account", `account '${user}'@'%'`));
            if (user === "") findings.push(finding("mysql.anonymous", `account ''@'${host}'`));
        }
    } else if (server.length > 0) {
        findings.push(
            finding("mysql.not-checked", facts.accounts ? "root could not read mysql.user through the host's client" : "no mysql client on the host"),
        );
    }
    if (facts.rootWithoutPassword) findings.push(finding("mysql.root-no-password", "the local user nobody logged in as root@localhost with an empty password"));
    return findings;
}

/** The leaf (the file's first certificate), or undefined when there is none to read. */
function leafOf(pem: string): X509Certificate | undefined {
    try {
        return new X509Certificate(pem);
    } catch {
        return undefined;
    }
}

/**
 * certbot's lineages: one under acmeRenewalMargin of its end (two thirds of its renewal point:
 * 20 days of a 90-day certificate, 2 of a 6-day one) has failed to renew (a renewed certificate
 * is no finding), and mor-harden's renewal keys differing from what it
 * recorded when it issued were changed by hand.
 */
export function acmeFindings(facts: AuditFacts): AuditFinding[] {
    const findings: AuditFinding[] = [];
    for (const lineage of facts.acme ?? []) {
        const leaf = leafOf(lineage.pem);
        const label = `/etc/letsencrypt/live/${lineage.name}`;
        if (!leaf) findings.push(finding("tls.acme-renewal", `${label}: no readable certificate`));
        else {
            const expires = Date.parse(leaf.validTo) / 1000;
            const days = Math.floor((expires - facts.now) / DAY);
            if (expires - facts.now <= acmeRenewalMargin(new Date(leaf.validFrom), new Date(leaf.validTo)))
                findings.push(
                    finding(
                        "tls.acme-renewal",
                        `${label}: ${expires <= facts.now ? "expired" : `expires in ${days} days`} on ${new Date(expires * 1000).toISOString().slice(0, 10)}`,
                    ),
                );
        }
        if (lineage.recorded !== undefined && lineage.recorded.trim() !== lineage.keys.trim()) {
            const changed = lineage.keys.split("\n").filter((line) => line && !lineage.recorded!.split("\n").includes(line));
            findings.push(
                finding(
                    "tls.acme-config",
                    `/etc/letsencrypt/renewal/${lineage.name}.conf: ${changed.length > 0 ? changed.join("; ") : "a key mor-harden set is gone"}`,
                ),
            );
        }
    }
    return findings;
}

export function tlsFindings(facts: AuditFacts, listeners: Listener[]): AuditFinding[] {
    const findings: AuditFinding[] = [];
    const web = listeners.filter((listener) => WEB_PROCESSES.test(listener.process));
    if (web.length > 0 && facts.certificates.length === 0)
        findings.push(finding("tls.missing", `${web.map(socketLabel).join(", ")}: no SSLCertificateFile in the enabled sites`));
    for (const certificate of facts.certificates) {
        const leaf = leafOf(certificate.pem);
        if (!leaf) {
            findings.push(finding("tls.expiry", `${certificate.path}: not a readable certificate`, "high"));
            continue;
        }
        const subject = leaf.subject.replace(/\n/g, ", ");
        const expires = Date.parse(leaf.validTo) / 1000;
        const days = Math.floor((expires - facts.now) / DAY);
        const date = new Date(expires * 1000).toISOString().slice(0, 10);
        if (expires <= facts.now) findings.push(finding("tls.expiry", `${certificate.path} (${subject}): expired on ${date}`, "critical"));
        else if (days < EXPIRY_WARNING_DAYS)
            findings.push(finding("tls.expiry", `${certificate.path} (${subject}): expires on ${date}, in ${days} days`, "high"));
        if (!/: OK\s*$/m.test(certificate.verify)) {
            const reason =
                /error \d+ at \d+ depth lookup: (.+)/.exec(certificate.verify)?.[1] ?? certificate.verify.trim().split("\n").at(-1) ?? "does not verify";
            findings.push(finding("tls.chain", `${certificate.path} (${subject}): ${reason}`));
        }
    }
    return findings;
}

/** The catalogue's services that may never be public (MySQL, AMI, Radius, Elasticsearch). */
const neverPublic = Object.entries(serviceCatalogue as Record<string, ServiceDefinition>).filter(([, service]) => service.never?.includes("public"));

export function exposureFindings(facts: AuditFacts, listeners: Listener[]): AuditFinding[] {
    const findings: AuditFinding[] = [];
    const seen = new Set<string>();
    for (const listener of listeners.filter(listensBeyondLoopback)) {
        const service = neverPublic.find(
            ([, definition]) => definition.protocol === listener.protocol && listener.port >= definition.ports.from && listener.port <= definition.ports.to,
        );
        if (!service) continue;
        for (const family of familiesOf(listener)) {
            const by = acceptedFromAnywhere(family === 4 ? facts.rules.v4 : facts.rules.v6, listener.protocol, listener.port);
            const key = `${family} ${listener.protocol} ${listener.port}`;
            if (by === undefined || seen.has(key)) continue;
            seen.add(key);
            findings.push(finding("net.exposed", `${service[0]}: ${socketLabel(listener)}, IPv${family}: accepted from any source by ${by}`));
        }
    }
    return findings;
}

export function fail2banFindings(facts: AuditFacts): AuditFinding[] {
    const findings: AuditFinding[] = [];
    if (!facts.fail2banThreads) {
        findings.push(finding("fail2ban.not-running", "no fail2ban-server process (/run/fail2ban/fail2ban.pid)"));
    } else {
        // Jails that share a cut thread name are counted together.
        const wanted = jailsByThread(jailNames);
        for (const [thread, jails] of wanted) {
            const running = facts.fail2banThreads.filter((name) => name === thread).length;
            if (running < jails.length)
                findings.push(
                    finding(
                        "fail2ban.jail-missing",
                        jails.length === 1 ? `jail ${jails[0]} is not running` : `of jails ${jails.join(", ")}, ${running} of ${jails.length} run`,
                    ),
                );
        }
    }
    for (const [family, text] of [
        ["IPv4", facts.rules.v4],
        ["IPv6", facts.rules.v6],
    ] as const) {
        for (const [chain, count] of Object.entries(banCounts(text)))
            findings.push(finding("fail2ban.bans", `${family} ${chain}: ${count} address${count === 1 ? "" : "es"} banned`));
    }
    const rules = { 4: facts.rules.v4, 6: facts.rules.v6 };
    for (const set of banSets(facts.sets).filter((set) => set.entries > 0)) {
        const addresses = `${set.entries} address${set.entries === 1 ? "" : "es"}`;
        findings.push(finding("fail2ban.bans", `set ${set.name}: ${addresses} banned`));
        // A set is matched only by rules of its own family; one whose family ipset did not print
        // counts as matched by a rule of either.
        const families = set.family ? [set.family] : ([4, 6] as const);
        const matches = families.map((family) => banSetMatched(rules[family], set.name));
        if (!matches.some((match) => match.matched)) {
            const acceptedBy = matches.find((match) => match.acceptedBy)?.acceptedBy;
            const where = `INPUT${set.family ? ` (IPv${set.family})` : ""}`;
            const why = acceptedBy
                ? `every packet is accepted (${acceptedBy}) before a rule of ${where} matches the set`
                : `no rule of ${where} matches the set`;
            findings.push(finding("fail2ban.ban-set-unmatched", `set ${set.name}: ${addresses} banned, but ${why}`));
        }
    }
    findings.push(...sudoersFindings(facts.files));
    return findings;
}

/** sudoers rules (with their Cmnd_Alias expanded) that let a user other than root run fail2ban-client. */
export function sudoersFindings(files: Record<string, string>): AuditFinding[] {
    const findings: AuditFinding[] = [];
    const sudoers = Object.entries(files).filter(([path]) => path === "/etc/sudoers" || path.startsWith("/etc/sudoers.d/"));
    const aliases = new Map<string, string>();
    const rules: { file: string; line: number; text: string }[] = [];
    for (const [file, content] of sudoers) {
        const lines = content.split("\n");
        for (let index = 0; index < lines.length; index++) {
            const start = index;
            let text = lines[index];
            while (text.endsWith("\\") && index + 1 < lines.length) text = text.slice(0, -1) + " " + lines[++index];
            text = text.replace(/(^|\s)#(?!include).*$/, "").trim();
            if (!text || text.startsWith("Defaults") || text.startsWith("@include") || text.startsWith("#include")) continue;
            const alias = /^Cmnd_Alias\s+(.+)$/.exec(text);
            if (alias) {
                for (const definition of alias[1].split(":")) {
                    const [name, commands] = definition.split("=", 2);
                    if (commands !== undefined) aliases.set(name.trim(), commands);
                }
                continue;
            }
            if (/^(User|Runas|Host)_Alias\s/.test(text)) continue;
            rules.push({ file, line: start + 1, text });
        }
    }
    for (const rule of rules) {
        const equals = rule.text.indexOf("=");
        if (equals < 0) continue;
        const who = rule.text.slice(0, equals).trim().split(/\s+/)[0];
        if (who === "root") continue;
        const commands = rule.text
            .slice(equals + 1)
            .split(",")
            .map((command) =>
                command
                    .replace(/\([^)]*\)/g, "")
                    .replace(/\b[A-Z_]+:/g, "")
                    .trim(),
            );
        const expanded = commands.flatMap((command) => (aliases.has(command) ? aliases.get(command)!.split(",") : [command]));
        if (expanded.some((command) => /(^|\/)fail2ban-client(\s|$)/.test(command.trim())))
            findings.push(finding("fail2ban.sudo-root", `${rule.file}:${rule.line}: ${who} may run fail2ban-client as root`));
    }
    return findings;
}
