// The audit's checks as data: what each finding id means, how bad it is, the line of Kolmisoft's
// guide ("How to be secure using MOR") it serves and the fix. Evaluators only add evidence.

export const severities = ["critical", "high", "medium", "low", "info"] as const;
export type Severity = (typeof severities)[number];

/** Higher is worse; `info` never fails an audit. */
export const severityRank: Record<Severity, number> = { critical: 4, high: 3, medium: 2, low: 1, info: 0 };

/** The guide's sections, in its order: the HTML report groups findings by them. */
export const guideSections = ["Passwords", "Devices", "Fail2Ban", "Iptables", "Services"] as const;
export type GuideSection = (typeof guideSections)[number];

export interface CheckDefinition {
    severity: Severity;
    title: string;
    section: GuideSection;
    /** Line numbers in the guide's copy (`shared/seeds`) and what they say, shortened. */
    guide: string;
    fix: string;
}

const PASSWORD_RULES = "6-10: at least 12 characters with letters, digits and special characters";
const ASTERISK_SECURE = "61: Asterisk: ensure connected systems ARE SECURE";

export const checks = {
    "sip.allowguest": {
        severity: "high",
        title: "chan_sip accepts calls from unauthenticated guests",
        section: "Devices",
        guide: ASTERISK_SECURE,
        fix: "allowguest = no in sip.conf [general] (chan_sip's default is yes). Not managed by mor-harden.",
    },
    "sip.alwaysauthreject": {
        severity: "medium",
        title: "chan_sip tells scanners which device names exist",
        section: "Devices",
        guide: ASTERISK_SECURE,
        fix: "alwaysauthreject = yes in sip.conf [general]. Not managed by mor-harden.",
    },
    "sip.insecure-invite": {
        severity: "high",
        title: "a SIP peer takes calls without authentication (insecure includes invite)",
        section: "Devices",
        guide: "21: do not enable Insecure port + Invite",
        fix: "remove invite from the device's insecure setting (MOR GUI: device settings); if a trunk needs it, give it a fixed host and permit/deny. Not managed by mor-harden.",
    },
    "sip.weak-secret": {
        severity: "high",
        title: "a SIP device's secret breaks the guide's password rules",
        section: "Passwords",
        guide: `${PASSWORD_RULES}; 23: secure device passwords`,
        fix: "set a new secret of 12+ characters with letters, digits and special characters (MOR GUI: device settings). Not managed by mor-harden.",
    },
    "sip.no-acl": {
        severity: "medium",
        title: "a dynamic SIP peer registers from anywhere (no permit/deny)",
        section: "Devices",
        guide: "20-21: understand each device setting",
        fix: "set deny=0.0.0.0/0.0.0.0 and permit=<the device's networks> for the device (MOR GUI: device settings). Not managed by mor-harden.",
    },
    "iax.guest": {
        severity: "high",
        title: "IAX2 accepts calls from unauthenticated guests",
        section: "Devices",
        guide: ASTERISK_SECURE,
        fix: "remove the guest user (a type=user without secret) from iax.conf, or noload => chan_iax2.so if IAX2 is not used. Not managed by mor-harden.",
    },
    "iax.weak-secret": {
        severity: "high",
        title: "an IAX2 user's secret breaks the guide's password rules",
        section: "Passwords",
        guide: PASSWORD_RULES,
        fix: "set a new secret of 12+ characters with letters, digits and special characters in iax.conf. Not managed by mor-harden.",
    },
    "ami.exposed": {
        severity: "critical",
        title: "the Asterisk Manager Interface is reachable beyond loopback from sources wider than the trusted ones",
        section: "Services",
        guide: "52: accept only the ports MOR needs",
        fix: "bindaddr = 127.0.0.1 in manager.conf [general], or deny=0.0.0.0/0.0.0.0 and permit only the trusted sources per user. mor-harden keeps 5038 closed in the firewall (firewall.services.ami: closed or trusted, never public).",
    },
    "ami.weak-secret": {
        severity: "high",
        title: "an AMI user's secret breaks the guide's password rules",
        section: "Passwords",
        guide: PASSWORD_RULES,
        fix: "set a new secret of 12+ characters with letters, digits and special characters in manager.conf. Not managed by mor-harden.",
    },
    "ami.write-all": {
        severity: "medium",
        title: "an AMI user may run system commands (write includes all, system or command)",
        section: "Services",
        guide: ASTERISK_SECURE,
        fix: "give the user only the write classes it needs (call, originate, ...) in manager.conf. Not managed by mor-harden.",
    },
    "mysql.exposed": {
        severity: "high",
        title: "MySQL/MariaDB listens beyond loopback",
        section: "Services",
        guide: "63: MySQL (not for the public); 52: only the ports MOR needs",
        fix: "bind-address = 127.0.0.1 unless other MOR servers use this database; mor-harden keeps 3306 closed or trusted (firewall.services.mysql).",
    },
    "mysql.remote-account": {
        severity: "medium",
        title: "a MySQL account may log in from any host ('%')",
        section: "Services",
        guide: "63: MySQL",
        fix: "limit the account to the hosts that use it (RENAME USER 'u'@'%' TO 'u'@'10.0.0.5'). Not managed by mor-harden.",
    },
    "mysql.anonymous": {
        severity: "high",
        title: "MySQL has an anonymous account (empty user name)",
        section: "Services",
        guide: "63: MySQL; 17: change all defaults",
        fix: "DROP USER ''@'host' (mariadb-secure-installation). Not managed by mor-harden.",
    },
    "mysql.root-no-password": {
        severity: "critical",
        title: "MySQL's root logs in with no password from any local user",
        section: "Passwords",
        guide: "6-10: secure passwords; 17: change all defaults",
        fix: "ALTER USER root@localhost IDENTIFIED VIA unix_socket (or a strong password). Not managed by mor-harden.",
    },
    "mysql.not-checked": {
        severity: "info",
        title: "MySQL runs but its accounts could not be read",
        section: "Services",
        guide: "63: MySQL",
        fix: "let root read mysql.user through the socket (unix_socket or /root/.my.cnf) for the audit.",
    },
    "sip.database-not-read": {
        severity: "info",
        title: "the realtime SIP peers table could not be read",
        section: "Devices",
        guide: "21-23: device settings and passwords",
        fix: "check res_config_mysql.conf's credentials and extconfig.conf's sippeers line.",
    },
    "tls.missing": {
        severity: "high",
        title: "the web GUI is served without TLS",
        section: "Services",
        guide: "60: Apache must use SSL",
        fix: "apache.enabled with certificateFile and tlsKey in the stack (mor-harden renders the SSL virtual host and the redirect).",
    },
    "tls.expiry": {
        severity: "high",
        title: "the GUI's certificate expires within 30 days (critical once expired)",
        section: "Services",
        guide: "60: Apache must use SSL",
        fix: "renew the certificate and set apache.certificateFile to it; apply.",
    },
    "tls.chain": {
        severity: "medium",
        title: "the GUI's certificate chain does not verify against the host's CA store",
        section: "Services",
        guide: "60: Apache must use SSL",
        fix: "put the intermediate certificates after the leaf in apache.certificateFile (leaf first); apply.",
    },
    "tls.acme-renewal": {
        severity: "high",
        title: "certbot has failed to renew an ACME certificate (under two thirds of its renewal point left: 20 days of 90, 2 of 6)",
        section: "Services",
        guide: "60: Apache must use SSL",
        fix: "read /var/log/letsencrypt/letsencrypt.log (port 80 reachable from the CA? the names resolving to the host?), then certbot renew; apply re-issues when drift sees it.",
    },
    "tls.acme-config": {
        severity: "medium",
        title: "mor-harden's ACME renewal configuration was changed by hand",
        section: "Services",
        guide: "60: Apache must use SSL",
        fix: "change apache.acme in the stack instead and apply (the renewal configuration's server, authenticator and webroot are mor-harden's).",
    },
    "net.exposed": {
        severity: "critical",
        title: "a service that must never be public is listening and the live firewall accepts it from any source",
        section: "Iptables",
        guide: "51-52: iptables accepts only the ports MOR needs",
        fix: "apply mor-harden's firewall (these services are closed by default and can never be public: firewall.services.<name>).",
    },
    "fail2ban.not-running": {
        severity: "high",
        title: "fail2ban is not running",
        section: "Fail2Ban",
        guide: "40: fail2ban protects against brute force",
        fix: "apply mor-harden's fail2ban concern (it installs, configures and starts it).",
    },
    "fail2ban.jail-missing": {
        severity: "medium",
        title: "a jail of the guide is not running",
        section: "Fail2Ban",
        guide: "41-47: the guide's seven jails",
        fix: "fail2ban.jails.<jail>.enabled (default true); apply.",
    },
    "fail2ban.bans": {
        severity: "info",
        title: "addresses banned by fail2ban now",
        section: "Fail2Ban",
        guide: "40-47: fail2ban",
        fix: "nothing to do: a count of the live bans in fail2ban's f2b-* chains and in the ban sets (mor-harden's morh-ban-*, fail2ban's f2b-*).",
    },
    "fail2ban.ban-set-unmatched": {
        severity: "high",
        title: "a ban set holds addresses but no firewall rule matches it: those bans enforce nothing",
        section: "Fail2Ban",
        guide: "40: fail2ban protects against brute force",
        fix: "apply mor-harden's firewall and fail2ban concerns (the firewall keeps a rule for each of mor-harden's morh-ban-* sets first in INPUT), and remove an ACCEPT of every packet that comes before the ban rules; for fail2ban's own f2b-* sets, restart fail2ban (its action adds the rule at start).",
    },
    "fail2ban.sudo-root": {
        severity: "critical",
        title: "sudoers grants fail2ban-client to a non-root user: a known route to root",
        section: "Fail2Ban",
        guide: "40: fail2ban; 5: never give access to people you do not trust",
        fix: "remove the sudoers rule (fail2ban-client can set an action that runs any command as root); MOR does not need it.",
    },
    "fail2ban.filter-injectable": {
        severity: "high",
        title: "an enabled jail's filter takes an address the sender can write: forged log text bans any address",
        section: "Fail2Ban",
        guide: "40: fail2ban protects against brute force",
        fix: "anchor the pattern at the daemon's prefix (^), match the sender's fields as '[^']*', take the address only from the field the daemon fills in (never after '@'), end it with $; test it with fail2ban-regex. mor-harden's jails read their own filters (filter.d/mor-harden-<jail>.local); a stack's failregex must follow the same rules.",
    },
    "fail2ban.usedns": {
        severity: "medium",
        title: "fail2ban resolves host names found in log lines (usedns yes or warn): a name's owner picks the address banned",
        section: "Fail2Ban",
        guide: "40: fail2ban protects against brute force",
        fix: "usedns = no in [DEFAULT] of a .local file (mor-harden writes it in jail.d/mor-harden.local) and in any jail that sets it; warn is fail2ban's default and resolves like yes.",
    },
    "fail2ban.action-reports-bans": {
        severity: "high",
        title: "an enabled jail's action sends every banned address to a third party's URL",
        section: "Fail2Ban",
        guide: "40: fail2ban protects against brute force",
        fix: "remove the action from the jail (old MOR's sendmail-banned requests Kolmisoft's URL; with a forgeable filter anyone can make the host report any address). mor-harden's jails name their own actions; fail2ban.notify sends bans to a receiver you choose.",
    },
    "fail2ban.cron-iptables-per-address": {
        severity: "high",
        title: "a cron job adds one iptables rule per address of a list (every packet walks all of them, none expires)",
        section: "Iptables",
        guide: "51-52: iptables",
        fix: "remove the cron entry (old MOR's global_grid_defense fetches its list over plain HTTP every 3 hours) and flush the rules it added; load such lists into an ipset instead: firewall.blocklists in the stack.",
    },
    "asterisk.pjproject-verbatim": {
        severity: "high",
        title: "Asterisk's pjproject writes malformed SIP packets into the log verbatim: one forged packet can carry whole log lines",
        section: "Fail2Ban",
        guide: "40: fail2ban; 61: Asterisk: ensure connected systems ARE SECURE",
        fix: "upgrade to an Asterisk that bundles pjproject 2.14 or later (Asterisk pull request 577, 2024-02). Until then, pjproject.conf [log_mappings] (type = log_mappings, asterisk_error = 0, asterisk_debug = 1,3,4,5,6) keeps pjproject's level-1 messages, these among them, out of the log files that do not take debug. Not managed by mor-harden.",
    },
    "asterisk.pjproject-unknown": {
        severity: "info",
        title: "the pjproject version of Asterisk's PJSIP could not be learned",
        section: "Fail2Ban",
        guide: "40: fail2ban; 61: Asterisk",
        fix: "run `asterisk -rx 'pjproject show buildopts'` on the host: PJ_VERSION 2.13.1 or older writes malformed packets into the log verbatim.",
    },
} as const satisfies Record<string, CheckDefinition>;

export type CheckId = keyof typeof checks;
export const checkIds = Object.keys(checks) as CheckId[];

export interface AuditFinding {
    id: CheckId;
    severity: Severity;
    title: string;
    /** Where and what: a file and line, a device or account name. Never a secret's value. */
    evidence: string;
    section: GuideSection;
    guide: string;
    fix: string;
}

/** A finding of a check, with its catalogue fields; `severity` only where the check grades (tls.expiry). */
export function finding(id: CheckId, evidence: string, severity?: Severity): AuditFinding {
    const check: CheckDefinition = checks[id];
    return { id, severity: severity ?? check.severity, title: check.title, evidence, section: check.section, guide: check.guide, fix: check.fix };
}
