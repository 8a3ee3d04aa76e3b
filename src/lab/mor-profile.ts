// Lab hosts as a MOR install leaves them, before mor-harden: MOR's own fail2ban jails in jail.conf
// (each with its own action and a mail), its filters under its own names, Asterisk's messages log
// with MOR-format lines, MOR's GUI under /billing and its log directory; the rhel-like variant also
// boots with iptables-services' stock firewall, as CentOS/Rocky MOR servers do.
//
// Modelled on public evidence only (README, "The MOR lab profile", has the table of sources):
// - magnussolution/magnusbilling7 script/install.sh at 6616ee28869b401b551d2a64f144d9e6b112196c
//   (2017): a billing installer that copies MOR's fail2ban set: jail names ast-cli-attck,
//   asterisk-manager, ast-hgc-200, asterisk-iptables with one action each
//   (`iptables-allports[name=..., port=5060, protocol=all]`), filters asterisk_cli,
//   asterisk_manager, asterisk_hgc_200 reading "Useragent: sipcli... [ADDRESS]", "ADDRESS tried to
//   authenticate with nonexistent user" and "hangupcause to DB: 200, [ADDRESS]" NOTICE lines,
//   Asterisk's logger writing ISO dates (`dateformat=%F %T`) to /var/log/asterisk/messages.
// - fail2ban 0.8's stock config/jail.conf (fail2ban/fail2ban, the 0.8 branch CentOS shipped): the
//   [ssh-iptables] jail, `iptables[name=SSH, port=ssh, protocol=tcp]` plus `sendmail-whois[...]`.
// - Kolmisoft's wiki (../shared facts): MOR enables its jails in jail.conf; the asterisk jail bans
//   after 5 failures for 600 s; MOR's ignoreip holds Kolmisoft's support office.
// What no public source shows is an ASSUMPTION, marked so below and in morJails (mor_api's and
// mor_ddos' actions and filters, the exact text around MOR's Asterisk lines).
import { iptablesServicesStock } from "./stock-rulesets";

export const labProfiles = ["plain", "mor", "mor-rhel"] as const;
/** plain: a Debian host with the services MOR runs; mor: as a MOR install leaves it; mor-rhel: mor with CentOS's firewall and log names. */
export type LabProfile = (typeof labProfiles)[number];

export const isMorProfile = (profile: LabProfile) => profile !== "plain";

/** Where MOR's jails mail: the lab's sendmail stand-in appends each message here. */
export const LAB_MAILBOX = "/var/mail/root";

export interface MorJail {
    name: string;
    filter: string;
    /** The jail's action lines as the installer writes them (the first is the ban, the rest mail). */
    actions: string[];
    logpath: (profile: LabProfile) => string;
    maxretry: number;
    bantime: number;
    source: string;
}

const mail = (name: string) => `sendmail-whois[name=${name}, dest=root, sender=fail2ban@mor.lab.example]`;
const MAGNUS = "magnussolution/magnusbilling7 script/install.sh@6616ee28";
const asteriskMessages = () => "/var/log/asterisk/messages";
const apacheAccess = () => "/var/log/apache2/access.log";

/** MOR's jails as jail.conf declares them on a MOR host. */
export const morJails: MorJail[] = [
    {
        name: "ssh-iptables",
        filter: "sshd",
        actions: ["iptables[name=SSH, port=ssh, protocol=tcp]", mail("SSH")],
        logpath: (profile) => (profile === "mor-rhel" ? "/var/log/secure" : "/var/log/auth.log"),
        maxretry: 5,
        bantime: 600,
        source: "fail2ban 0.8 config/jail.conf [ssh-iptables]",
    },
    {
        name: "asterisk-iptables",
        filter: "asterisk",
        actions: ['iptables-multiport[name=ASTERISK, port="5060,5061", protocol=udp]', mail("ASTERISK")],
        logpath: asteriskMessages,
        maxretry: 5,
        bantime: 600,
        source: `${MAGNUS} (name, log, 5 in 600 s); Kolmisoft wiki 2010; port list and mail ASSUMED`,
    },
    {
        name: "ast-cli-attck",
        filter: "asterisk_cli",
        actions: ["iptables-allports[name=AST_CLI_Attack, port=5060, protocol=all]"],
        logpath: asteriskMessages,
        maxretry: 1,
        bantime: -1,
        source: MAGNUS,
    },
    {
        name: "asterisk-manager",
        filter: "asterisk_manager",
        actions: ["iptables-multiport[name=AST_MANAGER, port=5038, protocol=tcp]", mail("AST_MANAGER")],
        logpath: asteriskMessages,
        maxretry: 1,
        bantime: -1,
        source: `${MAGNUS} (name, filter, 1, permanent); multiport and mail ASSUMED`,
    },
    {
        name: "ast-hgc-200",
        filter: "asterisk_hgc_200",
        actions: ["iptables-allports[name=AST_HGC_200, port=5060, protocol=all]"],
        logpath: asteriskMessages,
        maxretry: 20,
        bantime: -1,
        source: MAGNUS,
    },
    {
        name: "mor_api",
        filter: "mor_api",
        actions: ["iptables-multiport[name=MOR_API, port=http, protocol=tcp]", mail("MOR_API")],
        logpath: apacheAccess,
        maxretry: 5,
        bantime: -1,
        source: "ASSUMED (the guide names the jail; no public source shows its section)",
    },
    {
        name: "mor_ddos",
        filter: "mor_ddos",
        actions: ['iptables-multiport[name=MOR_DDOS, port="http,https", protocol=tcp]'],
        logpath: apacheAccess,
        maxretry: 20,
        bantime: 3600,
        source: "ASSUMED (the guide names the jail; magnusbilling7 has a similar mbilling_ddos on Apache's error log)",
    },
];

/**
 * MOR's filters under MOR's names, written for this lab (not copied): they read what the
 * installer's filters read. mor_api and mor_ddos are ASSUMED: the API's failures as answered
 * in Apache's access log, and floods of requests for missing pages.
 */
export const morFilters: Record<string, string> = {
    asterisk_cli: String.raw`NOTICE.* Useragent: (?:sipcli|sipvicious|friendly-scanner|sundayddr|iWar|sipsak|VaxSIPUserAgent).*\[<HOST>\]`,
    asterisk_manager: String.raw`NOTICE.* <HOST> tried to authenticate with nonexistent user`,
    asterisk_hgc_200: String.raw`NOTICE.* hangupcause to DB: 200, \[<HOST>\]`,
    mor_api: String.raw`^<HOST> \S+ \S+ \[[^\]]+\] "(?:GET|POST) /billing/api/\S+ [^"]*" (?:401|403) `,
    mor_ddos: String.raw`^<HOST> \S+ \S+ \[[^\]]+\] "[^"]*" 404 `,
};

/** MOR's part of jail.conf, appended to the distribution's (as Kolmisoft's wiki says MOR does). */
export function morJailConf(profile: LabProfile): string {
    const lines = [
        "",
        "# ---- MOR's fail2ban jails (as a MOR install writes them; the lab's model, see src/lab/mor-profile.ts)",
        "# MOR's ignoreip also holds Kolmisoft's support office (Kolmisoft wiki); the lab reaches no",
        "# outside network, so a documentation address stands for it.",
        "[DEFAULT]",
        "ignoreip = 127.0.0.1/8 192.0.2.250",
    ];
    for (const jail of morJails) {
        lines.push(
            "",
            `# ${jail.source}`,
            `[${jail.name}]`,
            "enabled  = true",
            `filter   = ${jail.filter}`,
            `action   = ${jail.actions.join("\n           ")}`,
            `logpath  = ${jail.logpath(profile)}`,
            `maxretry = ${jail.maxretry}`,
            `bantime  = ${jail.bantime}`,
        );
    }
    return lines.join("\n") + "\n";
}

const STAMP = "2025-06-02 09:14";
/**
 * /var/log/asterisk/messages as MOR writes it (ISO dates: the installer's logger.conf). Old lines,
 * so no jail counts them at start. The text around "hangupcause to DB: 200, [ADDRESS]" and
 * "Useragent: ... [ADDRESS]" is ASSUMED; only those parts are public.
 */
export const morAsteriskMessages = [
    `[${STAMP}:01] NOTICE[2231] chan_sip.c: Registration from '"101" <sip:101@192.0.2.11>' failed for '203.0.113.9:5060' - Wrong password`,
    `[${STAMP}:02] NOTICE[2240][C-00000003] mor.c: Useragent: sipcli/v1.8 [203.0.113.9]`,
    `[${STAMP}:03] NOTICE[2244][C-00000004] mor.c: SIP/203.0.113.9-00000004 hangupcause to DB: 200, [203.0.113.9]`,
    `[${STAMP}:04] NOTICE[2250] manager.c: 203.0.113.9 tried to authenticate with nonexistent user 'admin'`,
    `[${STAMP}:05] NOTICE[2251][C-00000005] mor.c: SIP/101-00000005 hangupcause to DB: 16, [198.51.100.30]`,
].join("\n");

/** MOR's GUI log (Rails' production.log format; the content is ASSUMED). */
const morGuiLog = `Started GET "/billing/callc/login" for 198.51.100.10 at ${STAMP}:00 +0000\nCompleted 200 OK in 12ms`;

/** MOR's GUI: a Rails application in /home/mor, served by Apache under /billing (ASSUMED layout beyond the paths). */
const guiFiles: Record<string, string> = {
    "home/mor/public/index.html": "<html><head><title>MOR</title></head><body>MOR billing</body></html>\n",
    "home/mor/public/callc/login/index.html":
        '<html><head><title>MOR login</title></head><body><form action="/billing/callc/try_to_login"></form></body></html>\n',
    "home/mor/public/api/index.html": "<error>Incorrect hash</error>\n",
    "etc/apache2/conf-enabled/mor.conf": [
        "# MOR's GUI under /billing (the lab's stand-in for MOR's Passenger application).",
        "Alias /billing /home/mor/public",
        "<Directory /home/mor/public>",
        "    Require all granted",
        "    Options -Indexes",
        "</Directory>",
        "",
    ].join("\n"),
};

/**
 * A sendmail stand-in: MOR hosts have an MTA and the jails mail root; the lab has none, so each
 * message is appended to LAB_MAILBOX, where tests read who was mailed about what.
 */
const SENDMAIL = ["#!/bin/sh", `{ echo "From fail2ban $(date)"; cat; echo; } >> ${LAB_MAILBOX}`, ""].join("\n");

/** Files of a MOR profile host, relative to its root, with their modes. */
export function morProfileFiles(profile: LabProfile, stockJailConf: string): { path: string; content: string; mode: number }[] {
    const files = [
        { path: "etc/fail2ban/jail.conf", content: stockJailConf + morJailConf(profile), mode: 0o644 },
        ...Object.entries(morFilters).map(([name, failregex]) => ({
            path: `etc/fail2ban/filter.d/${name}.conf`,
            content: `# MOR's ${name} filter (lab model, see src/lab/mor-profile.ts)\n[Definition]\nfailregex = ${failregex}\nignoreregex =\n`,
            mode: 0o644,
        })),
        { path: "usr/sbin/sendmail", content: SENDMAIL, mode: 0o755 },
        ...Object.entries(guiFiles).map(([path, content]) => ({ path, content, mode: 0o644 })),
    ];
    if (profile === "mor-rhel") {
        files.push(
            { path: "etc/sysconfig/iptables", content: iptablesServicesStock.v4, mode: 0o600 },
            { path: "etc/sysconfig/ip6tables", content: iptablesServicesStock.v6, mode: 0o600 },
        );
    }
    return files;
}

/** Lines the host's init runs before its services: the logs MOR left, and on rhel the iptables service's start. */
export function morProfileBoot(profile: LabProfile): string[] {
    const append = (lines: string, log: string) =>
        `printf '%s\\n' ${lines
            .split("\n")
            .map((line) => `'${line.replace(/'/g, `'\\''`)}'`)
            .join(" ")} >> ${log}`;
    const lines = [append(morAsteriskMessages, "/var/log/asterisk/messages"), append(morGuiLog, "/home/mor/log/production.log")];
    if (profile === "mor-rhel") lines.push("iptables-restore < /etc/sysconfig/iptables && ip6tables-restore < /etc/sysconfig/ip6tables");
    return lines;
}

/** Log files a profile adds: CentOS writes SSH's log to /var/log/secure (mor-harden's Debian stack still reads auth.log). */
export const profileLogs = (profile: LabProfile) => (profile === "mor-rhel" ? ["/var/log/secure"] : []);
