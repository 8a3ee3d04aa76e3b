// The guide's seven jails as fail2ban overrides.
//
// MOR enables its filters in jail.conf, which its update scripts overwrite, so only
// jail.d/*.local and filter.d/*.local files are written. Each jail reads its own
// mor-harden-<jail> filter, so MOR's updates to its filter .conf files cannot break a jail.
import { shellQuote } from "../render/shell";
import { jailsByThread } from "./threads";
import { addressesOf } from "../config/resolve";
import { trustedSources } from "../firewall/schema";
import { file, type Artifact, type ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";
import { renderTemplate } from "../render/templates";
import { BAN_ACTION_FILE, BAN_JOURNAL_DIR, banActionFile, banActionLine, banSets } from "./ban-action";
import { fail2banPython, withFail2banPython } from "./client";
import { OPTION_FILE_AWK, SIPPEERS_SED } from "../config/asterisk-database";
import { banSeconds, jailBantime, jailDefaults, jailNames, configuredScannerAgents, type Fail2banConfig, type JailName, type NotifyConfig } from "./schema";

export const JAIL_FILE = "/etc/fail2ban/jail.d/mor-harden.local";
/** fail2ban.notify: the action every jail adds, and the script it starts. */
export const NOTIFY_ACTION = "mor-harden-notify";
const NOTIFY_ACTION_FILE = `/etc/fail2ban/action.d/${NOTIFY_ACTION}.conf`;
const NOTIFY_SCRIPT = "/usr/local/lib/mor-harden/fail2ban-notify";
/** fail2ban.ignorePeers: the command every jail asks whether an address is a static peer, and where it keeps its lists. */
export const IGNORE_PEERS_SCRIPT = "/usr/local/lib/mor-harden/fail2ban-ignore-peer";
export const PEERS_STATE_DIR = "/var/lib/mor-harden/peers";
/** Answers fail2ban keeps per jail: a flood of new addresses pushes the oldest out (FIFO). */
const IGNORE_CACHE_ENTRIES = 10000;
/**
 * Each jail names its ban action itself, so a MOR jail.conf's per-jail `action` (port lists,
 * sendmail-whois) cannot win over it; the all-ports action of [DEFAULT], on both families.
 */
const filterPath = (jail: JailName) => `/etc/fail2ban/filter.d/${filterName(jail)}.local`;
export const filterName = (jail: JailName) => `mor-harden-${jail.replace(/_/g, "-")}`;

export interface EffectiveJail {
    name: JailName;
    description: string;
    enabled: boolean;
    maxretry: number;
    findtime: number;
    /** Seconds; -1 is permanent. */
    bantime: number;
    logpath: string[];
    backend: string;
    ignoreip: string[];
    /** Set only when the stack replaces the filter's own patterns. */
    failregex?: string[];
}

/** The jails with the stack's overrides applied to the guide's defaults. Pure, tested directly. */
export function effectiveJails(input: RenderInput): EffectiveJail[] {
    const { fail2ban, firewall, os } = input.config;
    const ignored = [...(fail2ban.ignoreTrusted ? trustedSources(firewall) : []), ...fail2ban.ignoreip];
    const addresses = (sources: string[]) => [...addressesOf(sources, input.sources, "v4"), ...addressesOf(sources, input.sources, "v6")];
    return jailNames.map((name) => {
        const defaults = jailDefaults[name];
        const settings = fail2ban.jails[name] ?? {};
        return {
            name,
            description: defaults.description,
            enabled: settings.enabled ?? true,
            maxretry: settings.maxretry ?? defaults.maxretry,
            findtime: settings.findtime ?? defaults.findtime,
            bantime: jailBantime(name, fail2ban),
            logpath: settings.logpath ?? defaults.logpath(os, firewall),
            backend: settings.backend ?? "auto",
            ignoreip: ["127.0.0.1/8", "::1", ...addresses([...ignored, ...(settings.ignoreip ?? [])])],
            failregex: settings.failregex,
        };
    });
}

/** The scanners' names as one case-insensitive alternation for a failregex ('%' doubled for fail2ban's interpolation). */
function scannerAgentsPattern(agents: string[]): string {
    return `(?i:${agents.map((agent) => agent.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/%/g, "%%")).join("|")})`;
}

function missingLogs(jails: EffectiveJail[]): string[] {
    const files = [...new Set(jails.filter((jail) => jail.enabled && jail.backend !== "systemd").flatMap((jail) => jail.logpath))].filter(
        (path) => !path.includes("*"),
    );
    return files.length === 0
        ? []
        : [`for log in ${files.join(" ")}; do [ -e "$log" ] || { mkdir -p "\${log%/*}" && touch "$log" && chmod 0640 "$log"; }; done`];
}

/**
 * Every enabled jail has its filter thread in fail2ban-server, named "f2b/f.<jail>" (cut to the
 * kernel's 15 characters). Reading the thread names costs nothing, where `fail2ban-client status`
 * costs a Python start-up; drift checks run this on every host of a fleet.
 */
function jailThreadsCheck(jails: string[]): string {
    const needed = jailsByThread(jails);
    return withServerState("fail2ban/check-jails.sh.hbs", {
        threads: [...needed].map(([thread, names]) => ({ thread, count: names.length, jails: names.join(", ") })),
    });
}

/** A fail2ban template after the shell functions that read the server from /proc (templates/fail2ban/server-state.sh.hbs). */
function withServerState(template: string, data: object): string {
    return `${renderTemplate("fail2ban/server-state.sh.hbs", {}).trim()}\n${renderTemplate(template, data).trim()}`;
}

/** The notifier's action file and script, when fail2ban.notify is set. */
function notifyArtifacts(input: RenderInput, notify: NotifyConfig): Artifact[] {
    const { webhook, mail } = notify;
    const script = renderTemplate("fail2ban/notify/notify.sh.hbs", {
        stack: input.stack,
        // curl's own limits, and a harder one around it should curl itself hang.
        webhook: webhook && { url: shellQuote(webhook.url), timeout: webhook.timeout, hardLimit: webhook.timeout * 2 + 5 },
        mail: mail && { to: shellQuote(mail.to), from: shellQuote(mail.from ?? "fail2ban@localhost") },
    });
    return [
        // 0700: the webhook's URL may carry a token.
        file(NOTIFY_SCRIPT, script, { mode: "0700" }),
        file(NOTIFY_ACTION_FILE, renderTemplate("fail2ban/notify/action.conf.hbs", { stack: input.stack, script: NOTIFY_SCRIPT })),
    ];
}

/** The ignore command's script (`stateDir`: tests keep theirs apart). */
export function ignorePeersScript(stack: string, peers: Fail2banConfig["peers"], stateDir = PEERS_STATE_DIR): string {
    return renderTemplate("fail2ban/ignore-peers.sh.hbs", {
        stack,
        asteriskDir: shellQuote(peers.asteriskDir),
        stateDir: shellQuote(stateDir),
        refresh: peers.cacheTime,
        readDatabase: peers.database ? "yes" : "no",
        staleAfter: peers.staleAfter,
        optionFileAwk: shellQuote(OPTION_FILE_AWK),
        sippeersSed: shellQuote(SIPPEERS_SED),
        addressesPy: shellQuote(renderTemplate("fail2ban/ignore-peers.py.hbs", {})),
    });
}

/** The jail lines that ask the ignore command, its answers cached for fail2ban.peers.cacheTime. */
function ignoreLines(fail2ban: Fail2banConfig): { command: string; cache: string } | undefined {
    if (!fail2ban.ignorePeers) return undefined;
    return { command: `${IGNORE_PEERS_SCRIPT} <ip>`, cache: `key="<ip>", max-count=${IGNORE_CACHE_ENTRIES}, max-time=${fail2ban.peers.cacheTime}` };
}

/** The activation step that carries bans made before the switch to the ipset action into the journals (`journalDir`: tests keep theirs apart). */
export function carryOverBans(jails: { name: string; bantime: number }[], journalDir = BAN_JOURNAL_DIR): string {
    const fail2ban = fail2banPython(renderTemplate("fail2ban/carry-over-bans.py.hbs", {}));
    return renderTemplate("fail2ban/carry-over-bans.sh.hbs", {
        journalDir,
        fail2ban,
        jails: jails.map((jail) => `${jail.name}=${jail.bantime}`).join(" "),
    }).trim();
}

/** The ipsets mor-harden's ban action makes for these jails, both families. */
const banSetNames = (jails: { name: string; bantime: number }[]) =>
    jails.flatMap((jail) => ["4", "6"].map((family) => `${banSets(jail.name, jail.bantime).set}-${family}`));

/**
 * How fail2ban takes the files at activation (templates/fail2ban/reload.sh.hbs): its jails are
 * restarted at the switch (none of mor-harden's ban sets, of either ban-time kind, exists yet and
 * no jail but `known` runs), else reloaded.
 */
function reloadFail2ban(banning: { name: string; bantime: number }[], known: string[]): string {
    const sets = banning.flatMap((jail) => {
        const { set, otherSet } = banSets(jail.name, jail.bantime);
        return [set, otherSet].flatMap((name) => [`${name}-4`, `${name}-6`]);
    });
    return withServerState("fail2ban/reload.sh.hbs", { sets, threads: [...jailsByThread(known).keys()] });
}

/** Shell functions: ban_sets_ok (every enabled jail's ipsets exist and are matched in INPUT) and wait_ban_sets. */
function banSetsFunctions(jails: { name: string; bantime: number }[]): string {
    return renderTemplate("fail2ban/check-ban-sets.sh.hbs", { sets: banSetNames(jails) }).trim();
}

export function renderFail2ban(input: RenderInput): ConcernPlan {
    const jails = effectiveJails(input);
    const { recidive, notify, ignorePeers, peers } = input.config.fail2ban;
    const ignore = ignoreLines(input.config.fail2ban);
    const extraActions = notify ? [`${NOTIFY_ACTION}[jail="%(__name__)s"]`] : [];
    const jailFile = renderTemplate("fail2ban/jail.local.hbs", {
        stack: input.stack,
        // extraActions: more action lines per jail (ban notifications), one continuation line each.
        jails: jails.map((jail) => ({
            ...jail,
            filter: filterName(jail.name),
            logpath: jail.logpath.join("\n          "),
            action: banActionLine(jail.name, jail.bantime),
            extraActions,
            ignore,
        })),
        recidive: {
            ...recidive,
            bantime: banSeconds(recidive.bantime),
            logpath: "/var/log/fail2ban.log",
            action: banActionLine("recidive", banSeconds(recidive.bantime)),
            extraActions: [],
            ignore,
        },
    });
    const filters = jails.map((jail) =>
        file(
            filterPath(jail.name),
            renderTemplate(`fail2ban/filter.d/${jail.name}.local.hbs`, {
                stack: input.stack,
                failregex: jail.failregex?.join("\n            "),
                scannerAgents: scannerAgentsPattern(configuredScannerAgents(input.config.fail2ban)),
            }),
        ),
    );
    const enabled: string[] = jails.filter((jail) => jail.enabled).map((jail) => jail.name);
    const banning = [...jails.filter((jail) => jail.enabled), ...(recidive.enabled ? [{ name: "recidive", bantime: banSeconds(recidive.bantime) }] : [])];
    if (recidive.enabled) enabled.push("recidive");
    return {
        concern: "fail2ban",
        summary: jails.map(
            (jail) =>
                `${jail.name}: ${jail.enabled ? `${jail.maxretry} in ${jail.findtime}s -> ${jail.bantime < 0 ? "permanent" : `${jail.bantime}s`}` : "disabled"}`,
        ),
        packages: ["fail2ban", "ipset", ...(notify?.webhook ? ["curl"] : [])],
        artifacts: [
            file(JAIL_FILE, jailFile),
            banActionFile(),
            ...filters,
            ...(notify ? notifyArtifacts(input, notify) : []),
            ...(ignorePeers ? [file(IGNORE_PEERS_SCRIPT, ignorePeersScript(input.stack, peers), { mode: "0700" })] : []),
        ],
        // fail2ban 1.0 refuses to start when a jail's log file is missing (a host without
        // Asterisk yet, an API log not written so far): create them empty.
        prepare: missingLogs(jails),
        // fail2ban-client -t does not read Python actions: the ban action is loaded apart.
        validate: [
            "fail2ban-client -t",
            renderTemplate("fail2ban/check-pidfile.sh.hbs", {}).trim(),
            `${withFail2banPython(renderTemplate("fail2ban/check-action.py.hbs", {}))} ${BAN_ACTION_FILE}`,
            ...(ignorePeers ? [`sh -n ${IGNORE_PEERS_SCRIPT}`] : []),
        ],
        activate: [
            carryOverBans(banning),
            // Every jail mor-harden writes (turned off too) and Debian's sshd, which it turns off.
            reloadFail2ban(banning, ["sshd", ...jails.map((jail) => jail.name), "recidive"]),
            // Should the reload still not have started the ipset action in a jail (a jail running
            // without it although a set of another exists), restarting the jails starts it, loading
            // its sets from the journal.
            `${banSetsFunctions(banning)}\nwait_ban_sets 30 || { echo 'MORH-NOTE fail2ban: restarted its jails to start the ipset ban action'; fail2ban-client reload --restart >/dev/null && wait_ban_sets 300; }`,
        ],
        verify: [jailThreadsCheck(enabled), `${banSetsFunctions(banning)}\nban_sets_ok`],
        // The rollback is not the activation again: the files restored need not make mor-harden's
        // sets (a stock host's, MOR's), and a later change undone must keep every jail and its bans.
        snapshot: [withServerState("fail2ban/snapshot.sh.hbs", {})],
        rollback: [renderTemplate("fail2ban/restore.sh.hbs", {}).trim()],
        rollbackCheck: [withServerState("fail2ban/restored.sh.hbs", {})],
        deactivate: [renderTemplate("fail2ban/deactivate.sh.hbs", {}).trim()],
        liveViews: [],
        needsConfirm: false,
    };
}
