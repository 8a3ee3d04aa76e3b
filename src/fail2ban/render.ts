// The guide's seven jails as fail2ban overrides.
//
// MOR enables its filters in jail.conf, which its update scripts overwrite, so only
// jail.d/*.local and filter.d/*.local files are written. Each jail reads its own
// mor-harden-<jail> filter, so MOR's updates to its filter .conf files cannot break a jail.
import { addressesOf } from "../config/resolve";
import { trustedSources } from "../firewall/schema";
import { file, type Artifact, type ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";
import { renderTemplate } from "../render/templates";
import { jailDefaults, jailNames, PERMANENT, configuredScannerAgents, type JailName, type NotifyConfig } from "./schema";

export const JAIL_FILE = "/etc/fail2ban/jail.d/mor-harden.local";
/** fail2ban.notify: the action every jail adds, and the script it starts. */
export const NOTIFY_ACTION = "mor-harden-notify";
const NOTIFY_ACTION_FILE = `/etc/fail2ban/action.d/${NOTIFY_ACTION}.conf`;
const NOTIFY_SCRIPT = "/usr/local/lib/mor-harden/fail2ban-notify";
/**
 * Each jail names its ban action itself, so a MOR jail.conf's per-jail `action` (port lists,
 * sendmail-whois) cannot win over it; the all-ports action of [DEFAULT], on both families.
 */
const BAN_ACTION = '%(banaction_allports)s[protocol="%(protocol)s", chain="%(chain)s"]';
/** The name fail2ban gives BAN_ACTION at run time (banaction_allports in jail.local.hbs). */
const BAN_ACTION_NAME = "iptables-allports";
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

const seconds = (bantime: number | typeof PERMANENT) => (bantime === PERMANENT ? -1 : bantime);

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
            bantime: seconds(settings.bantime ?? defaults.bantime),
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
    const files = [...new Set(jails.filter((jail) => jail.enabled && jail.backend !== "systemd").flatMap((jail) => jail.logpath))].filter((path) => !path.includes("*"));
    return files.length === 0 ? [] : [`for log in ${files.join(" ")}; do [ -e "$log" ] || { mkdir -p "\${log%/*}" && touch "$log" && chmod 0640 "$log"; }; done`];
}

/**
 * Every enabled jail has its filter thread in fail2ban-server, named "f2b/f.<jail>" (cut to the
 * kernel's 15 characters). Reading the thread names costs nothing, where `fail2ban-client status`
 * costs a Python start-up; drift checks run this on every host of a fleet.
 */
function jailThreadsCheck(jails: string[]): string {
    const needed = new Map<string, string[]>();
    for (const jail of jails) {
        const thread = `f2b/f.${jail}`.slice(0, 15);
        needed.set(thread, [...(needed.get(thread) ?? []), jail]);
    }
    return renderTemplate("fail2ban/check-jails.sh.hbs", { threads: [...needed].map(([thread, names]) => ({ thread, count: names.length, jails: names.join(", ") })) }).trim();
}

/** A value for a single-quoted shell word. */
const shellWord = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

/** The notifier's action file and script, when fail2ban.notify is set. */
function notifyArtifacts(input: RenderInput, notify: NotifyConfig): Artifact[] {
    const { webhook, mail } = notify;
    const script = renderTemplate("fail2ban/notify/notify.sh.hbs", {
        stack: input.stack,
        // curl's own limits, and a harder one around it should curl itself hang.
        webhook: webhook && { url: shellWord(webhook.url), timeout: webhook.timeout, hardLimit: webhook.timeout * 2 + 5 },
        mail: mail && { to: shellWord(mail.to), from: shellWord(mail.from ?? "fail2ban@localhost") },
    });
    return [
        // 0700: the webhook's URL may carry a token.
        file(NOTIFY_SCRIPT, script, { mode: "0700" }),
        file(NOTIFY_ACTION_FILE, renderTemplate("fail2ban/notify/action.conf.hbs", { stack: input.stack, script: NOTIFY_SCRIPT })),
    ];
}

export function renderFail2ban(input: RenderInput): ConcernPlan {
    const jails = effectiveJails(input);
    const { recidive, notify } = input.config.fail2ban;
    const extraActions = notify ? [`${NOTIFY_ACTION}[jail="%(__name__)s"]`] : [];
    const jailFile = renderTemplate("fail2ban/jail.local.hbs", {
        stack: input.stack,
        banActionName: BAN_ACTION_NAME,
        jails: jails.map((jail) => ({ ...jail, filter: filterName(jail.name), logpath: jail.logpath.join("\n          "), banAction: BAN_ACTION, extraActions })),
        recidive: { ...recidive, bantime: seconds(recidive.bantime), logpath: "/var/log/fail2ban.log" },
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
    if (recidive.enabled) enabled.push("recidive");
    return {
        concern: "fail2ban",
        summary: jails.map((jail) => `${jail.name}: ${jail.enabled ? `${jail.maxretry} in ${jail.findtime}s -> ${jail.bantime < 0 ? "permanent" : `${jail.bantime}s`}` : "disabled"}`),
        packages: ["fail2ban", ...(notify?.webhook ? ["curl"] : [])],
        artifacts: [file(JAIL_FILE, jailFile), ...filters, ...(notify ? notifyArtifacts(input, notify) : [])],
        // fail2ban 1.0 refuses to start when a jail's log file is missing (a host without
        // Asterisk yet, an API log not written so far): create them empty.
        prepare: missingLogs(jails),
        validate: ["fail2ban-client -t"],
        activate: [renderTemplate("fail2ban/activate.sh.hbs", { jails: enabled.join(" "), banAction: BAN_ACTION_NAME }).trim()],
        verify: [jailThreadsCheck(enabled)],
        snapshot: [],
        rollback: [],
        rollbackCheck: [],
        deactivate: [],
        liveViews: [],
        needsConfirm: false,
    };
}
