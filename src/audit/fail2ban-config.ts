// What makes a host's existing fail2ban exploitable, judged from its configuration files and its
// cron jobs: filters whose pattern takes an address the sender wrote, DNS lookups of names in log
// lines, actions that report every ban to a third party, cron scripts that add one firewall rule
// per address of a downloaded list. Pure: file texts in, findings out.
//
// Public evidence:
// - fail2ban searches each failregex anywhere in the line (fail2ban 1.0.2,
//   fail2ban/server/failregex.py, Regex.search: `self._regexObj.search(buf)`): a pattern without
//   `^` may begin inside text the sender chose.
// - Upstream removed the asterisk pattern `... @<HOST>` in 2017 (fail2ban commit d5d1fe67, issues
//   1927 and 1999): it banned the host named in an attacker's From header. Old MOR (pionert/mor,
//   test/files/fail2ban/filter.d/asterisk.conf) still ships `Failed to authenticate user .*@<HOST>.*`.
// - Old MOR's action.d/sendmail-banned.conf: `actionban = printf %%b
//   "http://fail2ban.kolmisoft.com/?ip=<ip>" | xargs /usr/bin/curl`, used by four of its jails;
//   its sh_scripts/global_grid_defense.sh, run from /etc/cron.d/global_grid_defense, downloads
//   http://fail2ban.kolmisoft.com/offenders and runs `iptables -A INPUT -s "$ADDRESS_TO_BAN" -j DROP`
//   for each line.
// - fail2ban's jail.conf: `usedns = warn` is the default, and "warn" performs the DNS lookup too
//   (it only logs a warning).
// - Configuration order (fail2ban's jail.conf header and configreader.py): X.conf, then X.local;
//   jail.conf, jail.d/*.conf, jail.local, jail.d/*.local; [INCLUDES] before/after around each
//   file; a section's own key wins over [DEFAULT] whatever the file.
import { basename, dirname } from "node:path";
import { finding, type AuditFinding, type Severity } from "./checks";

export const FAIL2BAN_DIR = "/etc/fail2ban";

interface IniValue {
    value: string;
    file: string;
    line: number;
}
type IniSections = Map<string, Map<string, IniValue>>;

/** fail2ban's INI dialect: `[section]`, `key = value`, indented continuation lines, `#`/`;` comments. */
export function parseIni(text: string, file: string): IniSections {
    const sections: IniSections = new Map();
    let current: Map<string, IniValue> | undefined;
    let last: IniValue | undefined;
    text.split("\n").forEach((raw, index) => {
        const line = raw.replace(/\r$/, "");
        if (/^\s*[#;]/.test(line) || line.trim() === "") {
            // A comment inside a multi-line value does not end it; a blank line does not either in
            // Python's configparser (empty_lines_in_values), but adds nothing.
            return;
        }
        if (/^\s/.test(line) && last) {
            last.value += "\n" + line.trim();
            return;
        }
        const header = /^\[([^\]]+)\]/.exec(line);
        if (header) {
            current = sections.get(header[1]) ?? new Map();
            sections.set(header[1], current);
            last = undefined;
            return;
        }
        const entry = /^([^=:\s][^=:]*?)\s*[=:]\s?(.*)$/.exec(line);
        if (entry && current) {
            last = { value: entry[2].trim(), file, line: index + 1 };
            current.set(entry[1].trim(), last);
        }
    });
    return sections;
}

const INTERPOLATION = /%\(([^)]+)\)s/g;

/** `%(name)s` from the lookup, repeatedly (bounded); unknown names stay as they are. */
function interpolate(value: string, lookup: (name: string) => string | undefined): string {
    let text = value;
    for (let depth = 0; depth < 10 && text.includes("%("); depth++) {
        const next = text.replace(INTERPOLATION, (whole, name: string) => lookup(name) ?? whole);
        if (next === text) break;
        text = next;
    }
    return text;
}

/** `name[key=value, key="a, b"]` as fail2ban writes a filter or an action with arguments. */
export function splitNameArgs(spec: string): { name: string; args: Map<string, string> } {
    const match = /^\s*([^\[\s]+)\s*(?:\[(.*)\])?\s*$/s.exec(spec);
    const args = new Map<string, string>();
    if (!match) return { name: spec.trim(), args };
    for (const part of (match[2] ?? "").matchAll(/([\w-]+)\s*=\s*("[^"]*"|'[^']*'|[^,]*)/g)) args.set(part[1], part[2].trim().replace(/^(["'])(.*)\1$/, "$2"));
    return { name: match[1], args };
}

/** A filter or action file with its [INCLUDES] before/after, and each file's .local after it. */
function includeChain(files: Record<string, string>, dir: string, name: string, seen = new Set<string>()): string[] {
    const chain: string[] = [];
    const stem = name.replace(/\.(conf|local)$/, "");
    for (const path of [`${dir}/${stem}.conf`, `${dir}/${stem}.local`]) {
        if (seen.has(path) || files[path] === undefined) continue;
        seen.add(path);
        const includes = parseIni(files[path], path).get("INCLUDES");
        const around = (key: string) => (includes?.get(key)?.value ?? "").split(/\s+/).filter(Boolean);
        for (const before of around("before")) chain.push(...includeChain(files, dirname(`${dir}/${before}`), basename(before), seen));
        chain.push(path);
        for (const after of around("after")) chain.push(...includeChain(files, dirname(`${dir}/${after}`), basename(after), seen));
    }
    return chain;
}

interface ResolvedDefinition {
    files: string[];
    /** The [Definition] key with its file and line, `%(...)s` and `<tag>` references expanded. */
    get(key: string): IniValue | undefined;
}

/** A filter's or action's definitions as fail2ban merges them: later files win, arguments win over all. */
export function resolveDefinition(files: Record<string, string>, dir: string, spec: string): ResolvedDefinition {
    const { name, args } = splitNameArgs(spec);
    const chain = includeChain(files, dir, name);
    const merged = new Map<string, IniValue>();
    for (const path of chain) {
        const sections = parseIni(files[path], path);
        for (const section of ["DEFAULT", "Init", "Definition"]) {
            for (const [key, entry] of sections.get(section) ?? []) {
                // %(known/key)s is the value the key had before this file (fail2ban 0.10+).
                const known = merged.get(key)?.value ?? "";
                merged.set(key, { ...entry, value: entry.value.replace(new RegExp(`%\\(known/${key.replace(/[^\w-]/g, "")}\\)s`, "g"), known) });
            }
        }
    }
    for (const [key, value] of args) merged.set(key, { value, file: "jail arguments", line: 0 });
    const lookup = (key: string) => merged.get(key)?.value;
    const expand = (value: string) => {
        let text = interpolate(value, lookup);
        // `<mdre-<mode>>`: the innermost tag first, only tags that name a definition.
        for (let depth = 0; depth < 10; depth++) {
            const next = text.replace(/<([\w-]+)>/g, (whole, tag: string) =>
                merged.has(tag) && !ADDRESS_TAGS.includes(tag) ? interpolate(merged.get(tag)!.value, lookup) : whole,
            );
            if (next === text) break;
            text = next;
        }
        return text;
    };
    return {
        files: chain,
        get: (key) => {
            const entry = merged.get(key);
            return entry && { ...entry, value: expand(entry.value) };
        },
    };
}

const ADDRESS_TAGS = ["HOST", "ADDR", "IP4", "IP6", "CIDR", "SUBNET"];
const ADDRESS_TAG = /<(?:HOST|ADDR|IP4|IP6|CIDR|SUBNET)>/;

/**
 * Why a failregex lets the sender choose the address it bans, or none. Three ways, each seen in
 * MOR's filters:
 * - `@<HOST>`: the address after `@` is a SIP URI's host, which the sender writes (upstream's 2017 removal);
 * - a greedy `.*`/`.+` before the address, with none of the daemon's words between them and no
 *   `$` right after the address: the last address on the line wins, and text the sender wrote
 *   may follow the real one;
 * - no `^`: the match may begin inside text the sender wrote (fail2ban searches the whole line).
 * A lazy `.*?` after an anchored prefix is not reported: it takes the first address after text
 * the daemon writes, which the sender cannot put before it. This is a judge of the pattern alone:
 * where a daemon writes the sender's text before its own words, an anchored lazy pattern can still
 * be fooled; fail2ban-regex on forged lines is the proof either way.
 */
export function injectableReasons(regex: string): string[] {
    const reasons: string[] = [];
    const tag = ADDRESS_TAG.exec(regex);
    if (!tag) return reasons;
    if (/@(?:\\\[|\(\?:|\[)?<(?:HOST|ADDR|IP4|IP6)>/.test(regex)) reasons.push("takes the address after '@' (a SIP URI's host: the sender writes it)");
    const before = regex.slice(0, tag.index);
    // The part after the last address tag up to the end: bounded tokens then `$`.
    const lastTag = [...regex.matchAll(/<(?:HOST|ADDR|IP4|IP6|CIDR|SUBNET)>/g)].at(-1)!;
    const after = regex.slice(lastTag.index! + lastTag[0].length);
    const endAnchored = /\$\)*\s*$/.test(after) && !/(?<!\\)\.[*+](?!\?)|(?<!\\)\.\{\d+,\}/.test(after.replace(/\$\)*\s*$/, ""));
    // The daemon's own words between the wildcard and the address (`'.*' from <HOST>`) fence it:
    // the sender would have to write them again after the real address.
    const greedy = [...before.matchAll(/(?<!\\)\.(?:[*+]|\{\d+,\})(?!\?)/g)].at(-1);
    const fenced = greedy !== undefined && /(?<!\\)[A-Za-z]{3,}/.test(before.slice(greedy.index! + greedy[0].length));
    if (greedy && !fenced && !endAnchored)
        reasons.push("a greedy wildcard right before the address takes the last address on the line, which may be text the sender wrote");
    if (!/^\s*(?:\(\?[a-zA-Z]+\))?\^/.test(regex)) reasons.push("not anchored with '^': the match may begin inside text the sender wrote");
    return reasons;
}

/** fail2ban's jail files in the order it reads them. */
export function jailFileOrder(files: Record<string, string>): string[] {
    const inDir = (extension: string) =>
        Object.keys(files)
            .filter((path) => dirname(path) === `${FAIL2BAN_DIR}/jail.d` && path.endsWith(extension))
            .sort();
    return [`${FAIL2BAN_DIR}/jail.conf`, ...inDir(".conf"), `${FAIL2BAN_DIR}/jail.local`, ...inDir(".local")].filter((path) => files[path] !== undefined);
}

export interface JailConfig {
    name: string;
    /** The jail's own key, else [DEFAULT]'s, across all jail files; `%(...)s` expanded. */
    get(key: string): IniValue | undefined;
}

/** The jails fail2ban enables from jail.conf, jail.d and jail.local. */
export function enabledJails(files: Record<string, string>): JailConfig[] {
    const merged: IniSections = new Map();
    for (const path of jailFileOrder(files)) {
        for (const [section, values] of parseIni(files[path], path)) {
            const target = merged.get(section) ?? new Map<string, IniValue>();
            for (const [key, value] of values) target.set(key, value);
            merged.set(section, target);
        }
    }
    const defaults = merged.get("DEFAULT") ?? new Map<string, IniValue>();
    const jails: JailConfig[] = [];
    for (const [name, values] of merged) {
        if (name === "DEFAULT" || name === "INCLUDES" || name === "Definition") continue;
        const raw = (key: string) => (key === "__name__" ? { value: name, file: "", line: 0 } : (values.get(key) ?? defaults.get(key)));
        const get = (key: string) => {
            const entry = raw(key);
            return entry && { ...entry, value: interpolate(entry.value, (inner) => raw(inner)?.value) };
        };
        if (/^(true|yes|1|on)$/i.test(get("enabled")?.value ?? "false")) jails.push({ name, get });
    }
    return jails;
}

const where = (entry: IniValue) => (entry.line > 0 ? `${entry.file}:${entry.line}` : entry.file);

/** Each enabled jail's filter patterns that let the sender choose the address. */
export function injectableFilterFindings(files: Record<string, string>): AuditFinding[] {
    const findings: AuditFinding[] = [];
    for (const jail of enabledJails(files)) {
        const spec = jail.get("filter")?.value ?? jail.name;
        const definition = resolveDefinition(files, `${FAIL2BAN_DIR}/filter.d`, spec);
        const failregex = definition.get("failregex");
        if (!failregex) continue;
        const reported = new Set<string>();
        for (const regex of failregex.value
            .split("\n")
            .map((line) => line.trim())
            .filter(Boolean)) {
            const reasons = injectableReasons(regex);
            if (reasons.length === 0 || reported.has(regex)) continue;
            reported.add(regex);
            // The pattern's own line where the file holds it as written (not built by interpolation).
            const own = (files[failregex.file] ?? "").split("\n").findIndex((line) => line.replace(/^\s*failregex\s*=\s*/, "").trim() === regex);
            const at = own >= 0 ? `${failregex.file}:${own + 1}` : where(failregex);
            findings.push(
                finding("fail2ban.filter-injectable", `jail ${jail.name}, filter ${splitNameArgs(spec).name} (${at}): ${regex}: ${reasons.join("; ")}`),
            );
        }
    }
    return findings;
}

/**
 * Jails that resolve names found in log lines. `warn` is fail2ban's default and resolves as `yes`
 * does (it only logs a warning): reported too, as low, since it is what every stock install does
 * until usedns = no; `yes` is medium.
 */
export function usednsFindings(files: Record<string, string>): AuditFinding[] {
    const resolving = new Map<string, string[]>();
    for (const jail of enabledJails(files)) {
        const entry = jail.get("usedns");
        const value = (entry?.value ?? "warn").toLowerCase();
        if (value !== "yes" && value !== "warn") continue;
        const key = `${value} ${entry ? where(entry) : "fail2ban's default"}`;
        resolving.set(key, [...(resolving.get(key) ?? []), jail.name]);
    }
    return [...resolving].map(([key, jails]) => {
        const [value, ...source] = key.split(" ");
        return finding(
            "fail2ban.usedns",
            `usedns = ${value} (${source.join(" ")}) for jail${jails.length === 1 ? "" : "s"} ${jails.join(", ")}`,
            (value === "yes" ? "medium" : "low") as Severity,
        );
    });
}

const LOOPBACK_URL = /^(?:localhost|127\.[\d.]+|\[::1\])(?::\d+)?$/i;

/** The URL an action's ban line requests with the banned address, when it leaves the host. */
export function reportedUrl(actionban: string): string | undefined {
    if (!/<ip>|<F-[A-Z]+>|<fid>/.test(actionban)) return undefined;
    for (const match of actionban.matchAll(/\b(?:https?|ftp):\/\/([^/\s"'?]+)[^\s"']*/gi)) if (!LOOPBACK_URL.test(match[1])) return match[0];
    return undefined;
}

/** Enabled jails whose actions send each banned address to a URL beyond the host. */
export function reportingActionFindings(files: Record<string, string>): AuditFinding[] {
    const findings: AuditFinding[] = [];
    for (const jail of enabledJails(files)) {
        const action = jail.get("action");
        if (!action) continue;
        for (const spec of action.value
            .split("\n")
            .map((line) => line.trim())
            .filter(Boolean)) {
            const definition = resolveDefinition(files, `${FAIL2BAN_DIR}/action.d`, spec);
            const actionban = definition.get("actionban");
            const url = actionban && reportedUrl(actionban.value);
            if (!actionban || !url) continue;
            findings.push(
                finding(
                    "fail2ban.action-reports-bans",
                    `jail ${jail.name} (${where(action)}): action ${splitNameArgs(spec).name} requests ${url} on every ban (${where(actionban)})`,
                ),
            );
        }
    }
    return findings;
}

/** `iptables -A|-I CHAIN ... -s "$VAR" ... -j DROP|REJECT`: one rule per address held in a variable. */
const RULE_PER_ADDRESS = /\bip6?tables(?:-legacy|-nft)?\b[^|;&#\n]*\s-[AI]\s+\S+[^|;&#\n]*\s(?:-s|--source)\s+["']?\$\{?\w+[^|;&#\n]*\s-j\s+(?:DROP|REJECT)\b/;
const LOOP = /\bwhile\s+read\b|\bfor\s+\w+\s+in\b|\bxargs\b/;

/**
 * Cron jobs (the files the audit read from cron's directories and the scripts their lines name)
 * that add one iptables rule per address inside a loop: each rule is one more comparison for every
 * packet, rules never expire, and the list's source decides what the host drops.
 */
export function cronRuleFindings(files: Record<string, string>): AuditFinding[] {
    const findings: AuditFinding[] = [];
    const cronFiles = Object.entries(files).filter(([path]) => !path.startsWith(`${FAIL2BAN_DIR}/`));
    const crontabs = cronFiles.filter(([path]) => /^\/etc\/crontab$|^\/etc\/cron\.d\/|^\/var\/spool\/cron\//.test(path));
    for (const [path, text] of cronFiles) {
        if (!LOOP.test(text)) continue;
        const lines = text.split("\n");
        const index = lines.findIndex((line) => !/^\s*#/.test(line) && RULE_PER_ADDRESS.test(line));
        if (index < 0) continue;
        const fetches = /\b(?:curl|wget|fetch)\b/.test(text) ? ", for each line of a downloaded list" : "";
        const runBy = crontabs.flatMap(([crontab, content]) =>
            content
                .split("\n")
                .map((line, at) => ({ line, at }))
                .filter(({ line }) => !/^\s*#/.test(line) && crontab !== path && line.includes(path))
                .map(({ at }) => `${crontab}:${at + 1}`),
        );
        const runs = runBy.length > 0 ? ` (run by ${runBy.join(", ")})` : "";
        findings.push(finding("fail2ban.cron-iptables-per-address", `${path}:${index + 1}${runs}: ${lines[index].trim()}${fetches}`));
    }
    return findings;
}

/** Everything above, for the files the audit read under /etc/fail2ban and cron's directories. */
export function fail2banExposureFindings(files: Record<string, string>): AuditFinding[] {
    return [...injectableFilterFindings(files), ...usednsFindings(files), ...reportingActionFindings(files), ...cronRuleFindings(files)];
}
