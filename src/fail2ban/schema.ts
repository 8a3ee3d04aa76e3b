import { z } from "zod";
import { absolutePath, duration, logPath, source } from "../config/values";
import type { OsFamily } from "../config/os";
import { scannerLogFile, type FirewallConfig } from "../firewall/schema";

/** The seven jails of Kolmisoft's guide "How to be secure using MOR", by the names MOR uses. */
export const jailNames = ["ssh-iptables", "asterisk-iptables", "ast-cli-attck", "asterisk-manager", "ast-hgc-200", "mor_api", "mor_ddos"] as const;
export type JailName = (typeof jailNames)[number];

export const PERMANENT = "permanent";

/** fail2ban.peers' defaults. */
export const PEERS_DEFAULTS = { asteriskDir: "/etc/asterisk", cacheTime: 120, database: true, staleAfter: 86400 };

/**
 * A failregex line for fail2ban: one line, naming the offender with <HOST> (or <ADDR>), and no
 * `%(` interpolation, which fail2ban would expand from its own config.
 */
const failregex = z.string().superRefine((value, ctx) => {
    const problem = /[\r\n]/.test(value)
        ? "contains a line break"
        : !/<(HOST|ADDR|IP4|IP6)>/.test(value)
          ? "names no offender (<HOST> or <ADDR>)"
          : /%(?!%)/.test(value)
            ? "has a '%' (write '%%' for a literal percent sign)"
            : undefined;
    if (problem) ctx.addIssue({ code: "custom", message: `${JSON.stringify(value)} ${problem}` });
});

const bantime = z.union([z.literal(PERMANENT), duration], {
    error: (iss) => `${JSON.stringify(iss.input)} is not a duration or "permanent"`,
});

const jailSettings = z
    .object({
        enabled: z.boolean().optional(),
        maxretry: z.number().int().min(1).max(10000).optional(),
        findtime: duration.optional(),
        bantime: bantime.optional(),
        logpath: z.array(logPath).min(1).optional(),
        /** How fail2ban reads the log: files (auto, polling) or the journal (systemd, for hosts without rsyslog). */
        backend: z.enum(["auto", "polling", "pyinotify", "systemd"]).optional(),
        /** Added to the trusted sources and fail2ban.ignoreip for this jail only. */
        ignoreip: z.array(source).optional(),
        /** Replaces the jail's own failure patterns (mor_api and ast-hgc-200 depend on MOR's log format). */
        failregex: z.array(failregex).min(1).optional(),
    })
    .strict();
export type JailSettings = z.infer<typeof jailSettings>;

/** User-Agents of the SIP scanners the guide lists for ast-cli-attck ("any SIP packet from ..."). */
export const guideScannerAgents = [
    "sipcli",
    "sipvicious",
    "sip-scan",
    "sipsak",
    "sundayddr",
    "friendly-scanner",
    "iWar",
    "CSipSimple",
    "SIVuS",
    "Gulp",
    "sipv",
    "smap",
    "friendly-request",
    "VaxIPUserAgent",
    "VaxSIPUserAgent",
    "siparmyknife",
    "Test Agent",
];

/**
 * A scanner's name as the start of a User-Agent value: printable ASCII, which both the packet
 * match (hex) and the filter (escaped) can carry, and no leading or trailing blank.
 */
const userAgent = z
    .string()
    .regex(/^[!-~](?:[ -~]*[!-~])?$/, { error: (iss) => `${JSON.stringify(iss.input)} is not a User-Agent start (printable ASCII, no blank at either end)` })
    .max(64)
    .refine((value) => !/["\\]/.test(value), { error: (iss) => `${JSON.stringify(iss.input)}: no '"' or '\\' (the firewall rule's comment carries the name)` });

/** ast-cli-attck also takes the scanners' names: what the packet rule and the Asterisk lines match. */
const scannerJailSettings = jailSettings
    .extend({
        /** Replaces the guide's list; matched case-insensitively at the start of the User-Agent value. */
        userAgents: z.array(userAgent).min(1).optional(),
    })
    .strict();

/** Where bans are announced (fail2ban.notify), opt-in: nothing is sent unless set. */
const notifySchema = z
    .object({
        /** POSTed a JSON document per ban: host, jail, address, time (ISO 8601), failures. */
        webhook: z
            .object({
                url: z.url({ protocol: /^https?$/, error: (iss) => `${JSON.stringify(iss.input)} is not an http(s) URL` }),
                /** Seconds before the host gives up on the receiver (the ban never waits for it). */
                timeout: z.number().int().min(1).max(60).default(5),
            })
            .strict()
            .optional(),
        /** Mailed a line per ban through the host's sendmail. */
        mail: z
            .object({ to: z.email({ error: (iss) => `${JSON.stringify(iss.input)} is not a mail address` }), from: z.email().optional() })
            .strict()
            .optional(),
    })
    .strict()
    .refine((value) => value.webhook || value.mail, { error: "fail2ban.notify needs a webhook, a mail, or both" });
export type NotifyConfig = z.infer<typeof notifySchema>;

export const fail2banSchema = z
    .object({
        notify: notifySchema.optional(),
        /** Sources never banned by any jail, in addition to the firewall's trusted sources. */
        ignoreip: z.array(source).default([]),
        /** Keep the trusted sources in ignoreip (the guide's support host and the operator's workstations). */
        ignoreTrusted: z.boolean().default(true),
        /**
         * Never ban the switch's own static peers (carriers, customers' PBXs): every jail asks the
         * host's ignore command, which reads them live from sip.conf and MOR's database.
         */
        ignorePeers: z.boolean().default(true),
        /** Where ignorePeers finds the peers, and how long an answer is kept. */
        peers: z
            .object({
                /**
                 * Asterisk's configuration: sip.conf, extconfig.conf and res_config_mysql.conf. An
                 * assumption: MOR keeps Asterisk's default directory (a public copy of MOR's
                 * installer scripts checks /etc/asterisk/extconfig.conf for
                 * `sippeers => mysql,general,devices`).
                 */
                asteriskDir: absolutePath.default(PEERS_DEFAULTS.asteriskDir),
                /** fail2ban keeps each answer, and the host its lists, this long: a device added is ignored within twice it. */
                cacheTime: duration.default(PEERS_DEFAULTS.cacheTime),
                /**
                 * Read the realtime table's `host` column too (chan_sip never writes it on REGISTER:
                 * see templates/fail2ban/ignore-peers.sh.hbs). Whoever can set a device's host makes
                 * that address unbannable: MOR writes it from a device's "IP Authentication" address
                 * (Kolmisoft wiki, MOR API device_update's `host`), so any account that may edit a
                 * device (which roles may is not public: check per installation); false keeps
                 * sip.conf's peers only.
                 */
                database: z.boolean().default(PEERS_DEFAULTS.database),
                /**
                 * With the database down, the last list read from it stays ignored this long after
                 * that read, then only sip.conf's peers: a device deleted meanwhile (a fraudster's)
                 * must not stay unbannable while the outage lasts.
                 */
                staleAfter: duration.default(PEERS_DEFAULTS.staleAfter),
            })
            .strict()
            .default(PEERS_DEFAULTS),
        jails: z
            .object({
                ...(Object.fromEntries(jailNames.map((name) => [name, jailSettings.optional()])) as Record<
                    Exclude<JailName, "ast-cli-attck">,
                    z.ZodOptional<typeof jailSettings>
                >),
                "ast-cli-attck": scannerJailSettings.optional(),
            })
            .strict()
            .default({}),
        /**
         * The longest ban a jail gives on evidence a forged source can produce (one UDP datagram
         * needs no answer: ast-cli-attck, ast-hgc-200, asterisk-iptables). The guide bans those
         * permanently; "permanent" restores it. A jail's own bantime still wins.
         */
        forgeableBantime: bantime.default(3600),
        /** fail2ban's own recidive jail: repeat offenders banned for longer. */
        recidive: z
            .object({
                enabled: z.boolean().default(true),
                maxretry: z.number().int().min(1).max(1000).default(5),
                findtime: duration.default(86400),
                bantime: bantime.default(604800),
            })
            .strict()
            .default({ enabled: true, maxretry: 5, findtime: 86400, bantime: 604800 }),
    })
    .strict()
    .superRefine((value, ctx) => {
        // Recidive counts every jail's bans, the forgeable ones too: a permanent recidive would
        // turn a forged source's bounded bans into a permanent one.
        if (value.recidive.enabled && value.recidive.bantime === PERMANENT && value.forgeableBantime !== PERMANENT) {
            ctx.addIssue({
                code: "custom",
                path: ["recidive", "bantime"],
                message: `"permanent" would ban forged sources permanently (recidive counts the bans of jails a forged UDP source can trigger): give recidive a duration, or set fail2ban.forgeableBantime: permanent to accept that`,
            });
        }
    });

export type Fail2banConfig = z.infer<typeof fail2banSchema>;

export interface JailDefaults {
    description: string;
    maxretry: number;
    findtime: number;
    /** The guide's ban time. */
    bantime: number | typeof PERMANENT;
    /** Whether a forged source can produce the evidence (no round trip needed): then banned for at most fail2ban.forgeableBantime. */
    forgeable: boolean;
    logpath: (os: OsFamily, firewall: FirewallConfig) => string[];
}

const asteriskLog = () => ["/var/log/asterisk/messages"];
/** The access log mor_api and mor_ddos read by default, which the hardened GUI vhosts write (src/apache/render.ts). */
export const apacheAccessLogFile = (os: OsFamily) => (os === "debian" ? "/var/log/apache2/access.log" : "/var/log/httpd/access_log");
const apacheAccessLog = (os: OsFamily) => [apacheAccessLogFile(os)];

/** The guide's thresholds and ban times; where the guide is silent the choice is documented in the README. */
export const jailDefaults: Record<JailName, JailDefaults> = {
    "ssh-iptables": {
        description: "3 wrong SSH logins in 10 minutes: banned for 10 minutes",
        maxretry: 3,
        findtime: 600,
        bantime: 600,
        forgeable: false,
        logpath: (os) => [os === "debian" ? "/var/log/auth.log" : "/var/log/secure"],
    },
    "asterisk-iptables": {
        description: "5 failed SIP/IAX2 registrations in 10 minutes: banned for 10 minutes",
        maxretry: 5,
        findtime: 600,
        bantime: 600,
        // Asterisk logs some failures at the first request, before any challenge (no matching
        // peer or endpoint, ACL): a forged UDP request produces them.
        forgeable: true,
        logpath: asteriskLog,
    },
    "ast-cli-attck": {
        description: "any SIP packet from a known scanner: banned for fail2ban.forgeableBantime (the guide: permanently)",
        maxretry: 1,
        findtime: 600,
        bantime: PERMANENT,
        // One UDP datagram with a scanner's User-Agent, the firewall's or Asterisk's line alike.
        forgeable: true,
        // The firewall logs scanner packets it sees on the SIP ports (see firewall/render.ts);
        // Asterisk (MOR) logs the User-Agents it sees, also over TLS, where the firewall is blind.
        logpath: (os, firewall) => [scannerLogFile(firewall.scannerLog, os), ...asteriskLog()],
    },
    "asterisk-manager": {
        description: "any unauthorized Asterisk Manager login: banned permanently",
        maxretry: 1,
        findtime: 600,
        bantime: PERMANENT,
        // A login over TCP: the handshake needs the host's answer.
        forgeable: false,
        logpath: asteriskLog,
    },
    "ast-hgc-200": {
        description: "20 unauthorized calls (hangup cause 200) in 10 minutes: banned for fail2ban.forgeableBantime (the guide: permanently)",
        maxretry: 20,
        findtime: 600,
        bantime: PERMANENT,
        // An INVITE over UDP from a source with no peer is refused at once: no answer needed.
        forgeable: true,
        logpath: asteriskLog,
    },
    mor_api: {
        description: "wrong MOR API authentication: banned permanently",
        maxretry: 5,
        findtime: 600,
        bantime: PERMANENT,
        // An HTTP request over TCP.
        forgeable: false,
        logpath: apacheAccessLog,
    },
    mor_ddos: {
        description: "20 incorrect or suspicious URLs in 10 minutes: banned for 1 hour",
        maxretry: 20,
        findtime: 600,
        bantime: 3600,
        forgeable: false,
        logpath: apacheAccessLog,
    },
};

/**
 * A jail's ban time, -1 permanent: its own setting, else the guide's, at most
 * fail2ban.forgeableBantime when a forged source can produce its evidence.
 */
export function jailBantime(name: JailName, fail2ban: Fail2banConfig): number {
    const own = fail2ban.jails[name]?.bantime;
    if (own !== undefined) return banSeconds(own);
    const guide = banSeconds(jailDefaults[name].bantime);
    if (!jailDefaults[name].forgeable || fail2ban.forgeableBantime === PERMANENT) return guide;
    return guide < 0 ? fail2ban.forgeableBantime : Math.min(guide, fail2ban.forgeableBantime);
}

/** A ban time in seconds, -1 for permanent (fail2ban's notation). */
export const banSeconds = (bantime: number | typeof PERMANENT): number => (bantime === PERMANENT ? -1 : bantime);

/** The scanners ast-cli-attck reads: the stack's list, or the guide's. */
export const configuredScannerAgents = (fail2ban: Fail2banConfig): string[] => fail2ban.jails["ast-cli-attck"]?.userAgents ?? guideScannerAgents;

/** The scanners the firewall drops: none when the jail is disabled (nothing would ban them, and a drop with no jail is a silent rule). */
export const scannerAgents = (fail2ban: Fail2banConfig): string[] =>
    fail2ban.jails["ast-cli-attck"]?.enabled === false ? [] : configuredScannerAgents(fail2ban);
