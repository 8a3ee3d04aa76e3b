// Whether the live firewall (iptables-save's filter table) accepts a new connection to a port
// from any source, and what listens (ss). Pure. A rule that only some sources can match (-s,
// ipsets, knocks' recent lists, payload strings, the loopback interface) never counts as "any
// source"; a rule whose match is unknown counts for an ACCEPT and not for a DROP, so an
// exposure is never hidden.

export interface Listener {
    protocol: "tcp" | "udp";
    address: string;
    port: number;
    process: string;
}

/** `ss -H -lntup` lines: `tcp LISTEN 0 80 0.0.0.0:3306 0.0.0.0:* users:(("mariadbd",pid=9,fd=20))`. */
export function parseListeners(text: string): Listener[] {
    return text
        .split("\n")
        .map((line) => line.trim().split(/\s+/))
        .filter((fields) => fields.length >= 5 && (fields[0] === "tcp" || fields[0] === "udp"))
        .map((fields) => {
            const local = fields[4];
            const colon = local.lastIndexOf(":");
            const address = local
                .slice(0, colon)
                .replace(/^\[|\]$/g, "")
                .replace(/%.*$/, "");
            const process = /users:\(\("([^"]+)"/.exec(fields.slice(6).join(" "))?.[1] ?? "";
            return { protocol: fields[0] as "tcp" | "udp", address, port: Number(local.slice(colon + 1)), process };
        })
        .filter((listener) => Number.isInteger(listener.port));
}

export const listensBeyondLoopback = (listener: Listener) => !/^(127\.|::1$|localhost$)/.test(listener.address);
/** Which firewall family sees a listener's connections (`::` takes IPv4 too where v6only is off). */
export const familiesOf = (listener: Listener): (4 | 6)[] =>
    listener.address === "*" || listener.address === "::" ? [4, 6] : listener.address.includes(":") ? [6] : [4];

interface Rule {
    text: string;
    tokens: string[];
}

interface Ruleset {
    policies: Record<string, string>;
    chains: Record<string, Rule[]>;
}

export function parseRuleset(text: string): Ruleset {
    const ruleset: Ruleset = { policies: {}, chains: {} };
    let inFilter = false;
    for (const line of text.split("\n")) {
        if (line.startsWith("*")) inFilter = line.trim() === "*filter";
        else if (!inFilter) continue;
        else if (line.startsWith(":")) {
            const [chain, policy] = line.slice(1).split(" ");
            ruleset.policies[chain] = policy;
            ruleset.chains[chain] ??= [];
        } else if (line.startsWith("-A ")) {
            const tokens = tokenize(line);
            (ruleset.chains[tokens[1]] ??= []).push({ text: line, tokens: tokens.slice(2) });
        }
    }
    return ruleset;
}

/** Words of a rule as iptables-save quotes them ("..." with \" inside). */
function tokenize(line: string): string[] {
    return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((match) => match[1] ?? match[2]);
}

const inPorts = (spec: string, port: number) =>
    spec.split(",").some((part) => {
        const [from, to = from] = part.split(":").map(Number);
        return port >= from && port <= (to || 65535);
    });

type Match = "yes" | "no" | "unknown";

/** Whether a rule matches a new packet to `protocol`/`port` from an arbitrary source. */
function matches(rule: Rule, protocol: string, port: number): Match {
    const t = rule.tokens;
    let result: Match = "yes";
    for (let i = 0; i < t.length; i++) {
        const negated = t[i] === "!";
        const option = negated ? t[++i] : t[i];
        const value = t[i + 1];
        switch (option) {
            case "-p":
                if ((value === protocol || value === "all") === negated) return "no";
                i++;
                break;
            case "--dport":
            case "--dports":
            case "--destination-port":
                if (inPorts(value, port) === negated) return "no";
                i++;
                break;
            case "-s":
            case "--src-range":
            case "--match-set":
                if (!negated) return "no";
                i += option === "--match-set" ? 2 : 1;
                break;
            case "-i":
                if ((value === "lo") !== negated) return "no";
                i++;
                break;
            case "--ctstate":
            case "--state":
                if (value.split(",").includes("NEW") === negated) return "no";
                i++;
                break;
            case "--rcheck":
            case "--update":
            case "--string":
            case "--hex-string":
                return "no";
            case "-m":
            case "-j":
            case "-g":
            case "-d":
            case "-o":
            case "--comment":
            case "--limit":
            case "--limit-burst":
            case "--hashlimit-upto":
            case "--hashlimit-above":
            case "--hashlimit-burst":
            case "--hashlimit-mode":
            case "--hashlimit-name":
            case "--hashlimit-htable-expire":
            case "--dst-type":
            case "--reject-with":
            case "--log-prefix":
            case "--nflog-prefix":
            case "--nflog-group":
            case "--icmp-type":
            case "--icmpv6-type":
            case "--tcp-flags":
                i += option === "--tcp-flags" ? 2 : 1;
                break;
            case "--syn":
            case "--log-uid":
                break;
            default:
                result = "unknown";
                if (value !== undefined && !value.startsWith("-")) i++;
        }
    }
    return result;
}

const TERMINAL = new Set(["ACCEPT", "DROP", "REJECT"]);

/** The rule that accepts such a packet from any source, or "policy ACCEPT", or undefined (not accepted). */
export function acceptedFromAnywhere(rulesetText: string, protocol: string, port: number): string | undefined {
    if (rulesetText.trim() === "") return "no firewall rules loaded";
    const ruleset = parseRuleset(rulesetText);
    const walk = (chain: string, depth: number): { verdict: "accept" | "deny" | "return"; by?: string } => {
        for (const rule of ruleset.chains[chain] ?? []) {
            const at = rule.tokens.findIndex((token) => token === "-j" || token === "-g");
            const jump = at >= 0 ? rule.tokens[at + 1] : undefined;
            if (!jump) continue;
            const match = matches(rule, protocol, port);
            if (match === "no") continue;
            if (jump === "ACCEPT") return { verdict: "accept", by: rule.text };
            if (jump === "DROP" || jump === "REJECT") {
                if (match === "yes") return { verdict: "deny" };
                continue;
            }
            if (jump === "RETURN") {
                if (match === "yes") return { verdict: "return" };
                continue;
            }
            if (ruleset.chains[jump] && depth < 20 && !TERMINAL.has(jump)) {
                const inner = walk(jump, depth + 1);
                if (inner.verdict !== "return") return inner;
            }
        }
        return { verdict: "return" };
    };
    const result = walk("INPUT", 0);
    if (result.verdict === "accept") return result.by;
    if (result.verdict === "deny") return undefined;
    return (ruleset.policies.INPUT ?? "ACCEPT") === "ACCEPT" ? "INPUT's policy ACCEPT" : undefined;
}

export interface BanSet {
    name: string;
    /** From the set's header (`family inet`/`inet6`); undefined when ipset printed none. */
    family?: 4 | 6;
    entries: number;
}

/** Ban sets (`ipset list -t`): mor-harden's `morh-ban-*` sets and fail2ban's own `f2b-*` sets. */
export function banSets(setHeaders: string): BanSet[] {
    const sets: BanSet[] = [];
    let set: BanSet | undefined;
    for (const line of setHeaders.split("\n")) {
        const named = /^Name: (\S+)$/.exec(line);
        if (named) {
            set = /^(morh-ban-|f2b-)/.test(named[1]) ? { name: named[1], entries: 0 } : undefined;
            if (set) sets.push(set);
        }
        const family = /^Header: family (inet6?)\b/.exec(line);
        if (family && set) set.family = family[1] === "inet6" ? 6 : 4;
        const entries = /^Number of entries: (\d+)$/.exec(line);
        if (entries && set) set.entries = Number(entries[1]);
    }
    return sets;
}

/** Whether a rule matches every packet: nothing but a comment before its target. */
function unconditional(rule: Rule): boolean {
    const at = rule.tokens.findIndex((token) => token === "-j" || token === "-g");
    const matches = rule.tokens.slice(0, at < 0 ? rule.tokens.length : at);
    for (let i = 0; i < matches.length; i++) {
        if ((matches[i] === "-m" && matches[i + 1] === "comment") || matches[i] === "--comment") i++;
        else return false;
    }
    return true;
}

/** How a ban set fares in INPUT: matched, or not (`acceptedBy`: the ACCEPT of every packet that comes first). */
export interface BanSetMatch {
    matched: boolean;
    acceptedBy?: string;
}

/**
 * Whether a rule of INPUT (or of a chain INPUT leads to) takes the set's addresses as sources for
 * anything but ACCEPT or RETURN before INPUT accepts every packet: without such a rule the set's
 * bans enforce nothing. Rules are taken in order: an ACCEPT without a match (in INPUT, or in a
 * chain INPUT always jumps to) ends every packet's path, and a ban rule after it is never reached;
 * an ACCEPT of some packets (established connections, one interface) does not.
 */
export function banSetMatched(rulesetText: string, set: string): BanSetMatch {
    const ruleset = parseRuleset(rulesetText);
    type Walk = { verdict: "matched" } | { verdict: "accepted"; by: string } | { verdict: "return" };
    // A chain's outcome does not depend on who jumps to it: walked once (a loop returns).
    const walked = new Map<string, Walk>();
    const walk = (chain: string): Walk => {
        const known = walked.get(chain);
        if (known) return known;
        walked.set(chain, { verdict: "return" });
        let result: Walk = { verdict: "return" };
        for (const rule of ruleset.chains[chain] ?? []) {
            const at = rule.tokens.findIndex((token) => token === "-j" || token === "-g");
            const jump = at >= 0 ? rule.tokens[at + 1] : undefined;
            if (jump === undefined) continue;
            if (jump === "ACCEPT" || jump === "RETURN") {
                if (!unconditional(rule)) continue;
                if (jump === "ACCEPT") result = { verdict: "accepted", by: rule.text };
                break;
            }
            const uses = rule.tokens.some(
                (token, i) =>
                    token === "--match-set" && rule.tokens[i - 1] !== "!" && rule.tokens[i + 1] === set && rule.tokens[i + 2]?.split(",")[0] === "src",
            );
            if (uses) {
                result = { verdict: "matched" };
                break;
            }
            if (ruleset.chains[jump] === undefined) continue;
            const inner = walk(jump);
            if (inner.verdict === "matched" || (inner.verdict === "accepted" && unconditional(rule))) {
                result = inner;
                break;
            }
        }
        walked.set(chain, result);
        return result;
    };
    const result = walk("INPUT");
    return result.verdict === "accepted" ? { matched: false, acceptedBy: result.by } : { matched: result.verdict === "matched" };
}

/** Live bans per fail2ban chain: DROP/REJECT rules of one source in each `f2b-*` chain. */
export function banCounts(rulesetText: string): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [chain, rules] of Object.entries(parseRuleset(rulesetText).chains)) {
        if (!chain.startsWith("f2b-")) continue;
        counts[chain] = rules.filter((rule) => rule.tokens.includes("-s") && /-j (REJECT|DROP)\b/.test(rule.text)).length;
    }
    return counts;
}
