// The GUI's SSL virtual host (Mozilla "intermediate": TLS 1.2 and 1.3, ECDHE with AEAD only,
// HSTS) and a plain-HTTP virtual host that redirects to it. Named 00-* so it is Apache's
// default virtual host on both ports (it sorts before Debian's 000-default).
import { X509Certificate } from "node:crypto";
import { posix } from "node:path";
import { file, HOST_LOCK_FILE, PLAN_MARKER, secretPlaceholder, type ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";
import { renderTemplate } from "../render/templates";
import { waitUntil } from "../render/shell";
import { acmeDomains, splitPemChain, type ApacheConfig } from "./schema";
import { apacheAccessLogFile } from "../fail2ban/schema";
import { effectiveJails } from "../fail2ban/render";

/** Mozilla server-side TLS guidelines 6.0, "intermediate". */
export const INTERMEDIATE_CIPHERS = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];

const layout = {
    debian: {
        vhost: "/etc/apache2/sites-available/00-mor-harden.conf",
        ctl: "apache2ctl",
        process: "apache2",
        staplingCache: "/var/run/apache2/ssl_stapling",
        errorLog: "/var/log/apache2/error.log",
        packages: ["apache2"],
        /** Read before the sites (apache2.conf includes conf-enabled/ first): its vhost is the first on port 80. */
        challengeConf: "/etc/apache2/conf-enabled/00-mor-harden-acme-challenge.conf",
        /** certbot's renewal timer (Debian's package enables it; its cron job runs only without systemd). */
        certbotTimer: "certbot.timer",
        /** The service its timer starts (the private CA's drop-in goes there). */
        certbotService: "certbot.service",
        prepare: ["a2enmod -q ssl headers >/dev/null && a2ensite -q 00-mor-harden >/dev/null"],
        disable: (vhost: string) => `[ -e ${vhost} ] || a2dissite -q 00-mor-harden >/dev/null 2>&1; true`,
    },
    rhel: {
        vhost: "/etc/httpd/conf.d/00-mor-harden.conf",
        ctl: "apachectl",
        process: "httpd",
        staplingCache: "/run/httpd/ssl_stapling",
        errorLog: "/var/log/httpd/error_log",
        packages: ["httpd", "mod_ssl"],
        /** conf.d/ is read in name order: "00-mor-harden-" sorts before "00-mor-harden.conf". */
        challengeConf: "/etc/httpd/conf.d/00-mor-harden-acme-challenge.conf",
        /** EPEL's certbot ships its timer disabled. */
        certbotTimer: "certbot-renew.timer",
        certbotService: "certbot-renew.service",
        prepare: [],
        disable: (_vhost: string) => "true",
    },
};

/**
 * Apache's Combined Log Format (httpd's log documentation, "Combined Log Format"), written out
 * rather than named: a host whose apache2.conf or httpd.conf lost the `combined` nickname would
 * log the word itself. %a (the client's address), not %h, which HostnameLookups On turns into a
 * name the jails cannot ban. The filters of mor_api and mor_ddos parse this format.
 */
export const ACCESS_LOG_FORMAT = String.raw`%a %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"`;

/** The GUI jails whose logpath does not hold the log the vhosts write: they would never see a request to them. */
function blindJails(input: RenderInput, accessLog: string): string[] {
    return effectiveJails(input)
        .filter((jail) => (jail.name === "mor_api" || jail.name === "mor_ddos") && jail.enabled && !jail.logpath.includes(accessLog))
        .map((jail) => jail.name);
}

export const CERT_PATH = "/etc/ssl/mor-harden/server.crt";
export const KEY_PATH = "/etc/ssl/mor-harden/server.key";

/**
 * Why an issuance failed, as the stage reports it (`MORH-REASON <kind> <why>`): a name that does
 * not resolve to the host for the CA, port 80 not reachable from it, its rate limit, its refusal,
 * the directory unreachable; certbot missing, the host or Apache unable to serve the challenge;
 * certbot failing otherwise.
 */
export const ACME_FAILURES = ["dns", "port-80", "rate-limit", "refused", "ca-unreachable", "package", "host", "apache", "certbot"] as const;
export type AcmeFailure = (typeof ACME_FAILURES)[number];

/** certbot's certificate name for the GUI (--cert-name): /etc/letsencrypt/live/<name>/. */
export const ACME_NAME = "mor-harden";
export const ACME_LIVE = `/etc/letsencrypt/live/${ACME_NAME}`;
const ACME_ARCHIVE = `/etc/letsencrypt/archive/${ACME_NAME}`;
export const ACME_RENEWAL_CONF = `/etc/letsencrypt/renewal/${ACME_NAME}.conf`;
/** Where certbot writes the HTTP-01 challenge files and the port-80 vhost serves them from. */
export const ACME_WEBROOT = "/var/www/mor-harden-acme";
/** Where the deploy hook keeps a renewed certificate it rejected (the certificate only: its key is removed). */
const ACME_REJECTED = "/var/lib/mor-harden/acme/rejected";
/** certbot runs every executable here after each renewal it makes. */
export const ACME_DEPLOY_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/mor-harden-apache";
/** The private ACME CA's certificates (apache.acme.caBundle) and the drop-in that gives them to certbot's timer. */
export const ACME_CA_BUNDLE = "/etc/ssl/mor-harden/acme-ca.pem";
export const acmeTimerDropIn = (os: keyof typeof layout) => `/etc/systemd/system/${layout[os].certbotService}.d/mor-harden-ca.conf`;
/** Debian's (the lab's). */
export const ACME_TIMER_DROP_IN = acmeTimerDropIn("debian");
/** What the renewal configuration said when mor-harden issued (the audit's tls.acme-config compares). */
export const ACME_RECORD = "/var/lib/mor-harden/acme/renewal-keys";
/** The renewal configuration's keys mor-harden chose; a hand change to them is drift. */
export const ACME_RENEWAL_KEYS = ["authenticator", "server", "webroot_path"];
/** Under this lifetime certbot (4.0 on) renews at half of it left, not a third (templates/apache/acme-renewal-state.sh.hbs). */
const ACME_SHORT_LIVED_SECONDS = 10 * 86400;

/** Seconds before a certificate's end at which certbot renews it: a third of its lifetime, half under 10 days (the renewal configuration says so: acme_set_renew_before). */
export function acmeRenewPoint(validFrom: Date, validTo: Date): number {
    const lifetime = Math.floor((validTo.getTime() - validFrom.getTime()) / 1000);
    return Math.floor(lifetime / (lifetime < ACME_SHORT_LIVED_SECONDS ? 2 : 3));
}

/** Seconds before a certificate's end under which certbot has failed to renew it: two thirds of its renewal point (90 days: 20; 6 days: 2). */
export function acmeRenewalMargin(validFrom: Date, validTo: Date): number {
    return Math.floor((acmeRenewPoint(validFrom, validTo) * 2) / 3);
}

/** What templates/apache/acme-renewal-state.sh.hbs prints for a certificate certbot keeps renewed. */
export const ACME_RENEWED_IN_TIME = "renewed in time";

/** The shell functions acme_renewal_state CERT and acme_set_renew_before CONF CERT (templates/apache/acme-renewal-state.sh.hbs). */
export const acmeRenewalFunctions = () =>
    renderTemplate("apache/acme-renewal-state.sh.hbs", { inTime: ACME_RENEWED_IN_TIME, shortLivedSeconds: ACME_SHORT_LIVED_SECONDS }).trimEnd();

/** The live views that say whether certbot keeps the certificate renewed and its configuration is ours. */
export const ACME_VIEW = { renewal: "tls.acme-renewal", names: "tls.acme-names", config: "tls.acme-config" } as const;

/** Shell printing the DNS names a certificate file covers, each once, in byte order, on one line (as sortedNames). */
const certificateNames = (path: string) =>
    `openssl x509 -noout -ext subjectAltName -in ${path} 2>/dev/null | tr -d ' ' | tr ',' '\\n' | sed -n 's/^DNS://p' | LC_ALL=C sort -u | paste -sd ' '`;

/** Names in byte order, as `LC_ALL=C sort -u` prints them on the host. */
const sortedNames = (names: string[]) => [...new Set(names)].sort().join(" ");

const base64 = (text: string) => Buffer.from(text).toString("base64");

/** The renewal configuration's chosen keys as certbot writes them for this config (sorted). */
export function acmeRenewalKeys(apache: ApacheConfig): string {
    return [`authenticator = webroot`, `server = ${apache.acme!.directory}`, `webroot_path = ${ACME_WEBROOT},`].sort().join("\n");
}

/**
 * The part of the issuance that says why certbot failed (templates/apache/acme-failure.sh.hbs):
 * from "$morh_work/certbot" and $morh_rc, `morh_end` then `morh_reason <kind> <why>`.
 */
export function acmeFailureScript(directory: string): string {
    return renderTemplate("apache/acme-failure.sh.hbs", { directory, certbotSeconds: ACME_CERTBOT_SECONDS }).trimEnd();
}

/** certbot's time bound in the stage: below connection.commandTimeout's default (120 s), so its reason reaches the report. */
const ACME_CERTBOT_SECONDS = 90;

/**
 * What the stage leaves while it runs (the challenge vhost, the readiness probe), taken away with
 * a graceful restart when it was there: the stage's own start, and every rollback of its
 * transaction (src/render/artifact.ts, stageUndo), at boot too (the restart then fails: no Apache yet).
 */
function acmeStageUndo(os: keyof typeof layout): string {
    const { challengeConf, ctl } = layout[os];
    return `if [ -e '${challengeConf}' ]; then rm -f '${challengeConf}' '${ACME_WEBROOT}/.well-known/acme-challenge/morh-probe-'*; ${ctl} graceful >/dev/null 2>&1 || true; fi`;
}

/** The shell (templates/apache/acme-issue.sh.hbs) that issues the certificate before the files move: the plan's stage. */
export function acmeIssueScript(apache: ApacheConfig, os: keyof typeof layout): string {
    const acme = apache.acme!;
    const domains = acmeDomains(apache);
    const paths = layout[os];
    const challengeVhost = renderTemplate("apache/acme-challenge.conf.hbs", {
        serverName: domains[0],
        aliases: domains.slice(1),
        webroot: ACME_WEBROOT,
        accessLog: apacheAccessLogFile(os),
        accessLogFormat: ACCESS_LOG_FORMAT,
    });
    return renderTemplate("apache/acme-issue.sh.hbs", {
        failure: acmeFailureScript(acme.directory),
        undo: acmeStageUndo(os),
        certbotSeconds: ACME_CERTBOT_SECONDS,
        name: ACME_NAME,
        live: ACME_LIVE,
        renewalConf: ACME_RENEWAL_CONF,
        webroot: ACME_WEBROOT,
        challengeConf: paths.challengeConf,
        challengeVhost: base64(challengeVhost),
        ctl: paths.ctl,
        domains,
        sortedDomains: sortedNames(domains),
        certificateNames: certificateNames(`"${ACME_LIVE}/fullchain.pem"`),
        serverName: domains[0],
        email: acme.email,
        directory: acme.directory,
        caBundle: acme.caBundle ? base64(acme.caBundle) : "",
        renewalFunctions: acmeRenewalFunctions(),
        inTime: ACME_RENEWED_IN_TIME,
        reasonMarker: PLAN_MARKER.reason,
        noteMarker: PLAN_MARKER.note,
        kinds: ACME_FAILURES,
        recordDir: ACME_RECORD.replace(/\/[^/]*$/, ""),
        recordFile: ACME_RECORD,
        renewalKeys: ACME_RENEWAL_KEYS.join("|"),
        renewalKeysText: base64(acmeRenewalKeys(apache)),
    }).trimEnd();
}

/** OCSP stapling only works when the certificate names a responder (Let's Encrypt's no longer do). */
export function ocspResponder(chain: string): string | undefined {
    const leaf = new X509Certificate(splitPemChain(chain)![0]);
    return /OCSP - URI:(\S+)/.exec(leaf.infoAccess ?? "")?.[1];
}

export function renderApache(input: RenderInput): ConcernPlan | undefined {
    const { apache, os } = input.config;
    if (!apache.enabled) return undefined;
    const paths = layout[os];
    const accessLog = apacheAccessLogFile(os);
    const acme = apache.acme;
    const certificate = apache.certificate;
    const certPath = acme ? `${ACME_LIVE}/fullchain.pem` : CERT_PATH;
    const keyPath = acme ? `${ACME_LIVE}/privkey.pem` : KEY_PATH;
    // A CA's OCSP responder is known only for a certificate in hand (Let's Encrypt's name none any more).
    const responder = certificate ? ocspResponder(certificate) : undefined;
    const hsts = [
        `max-age=${apache.hsts.maxAge}`,
        ...(apache.hsts.includeSubDomains ? ["includeSubDomains"] : []),
        ...(apache.hsts.preload ? ["preload"] : []),
    ].join("; ");
    const vhost = renderTemplate("apache/vhost.conf.hbs", {
        stack: input.stack,
        serverName: apache.serverName,
        serverAliases: apache.serverAliases,
        documentRoot: apache.documentRoot,
        redirectHttp: apache.redirectHttp,
        port80: apache.redirectHttp || acme !== undefined,
        acmeWebroot: acme ? ACME_WEBROOT : "",
        certPath,
        keyPath,
        ciphers: INTERMEDIATE_CIPHERS.join(":"),
        hsts,
        stapling: responder !== undefined,
        staplingCache: paths.staplingCache,
        // Where mor_api and mor_ddos read by default: Debian's other-vhosts-access-log.conf would
        // otherwise take the requests of a vhost without CustomLog (vhost_combined, "host:port client").
        accessLog: accessLog,
        accessLogFormat: ACCESS_LOG_FORMAT,
        errorLog: paths.errorLog,
    });
    const blind = blindJails(input, accessLog);
    return {
        concern: "apache",
        summary: [
            `${apache.serverName}: TLS 1.2/1.3, HSTS ${hsts}${apache.redirectHttp ? ", HTTP redirects to HTTPS" : ""}`,
            ...(acme
                ? [
                      `certificate by ACME from ${acme.directory} for ${acmeDomains(apache).join(", ")} (certbot, HTTP-01 on port 80; issued before the SSL vhost goes live, renewed by certbot's timer; the key never leaves the host)`,
                  ]
                : []),
            `OCSP stapling ${responder ? `on (${responder})` : acme ? "off (an ACME certificate is not known before it is issued)" : "off (the certificate names no OCSP responder)"}`,
            `requests logged to ${accessLog} (combined format)${blind.length > 0 ? `; note: ${blind.join(" and ")} read${blind.length === 1 ? "s" : ""} other logs (fail2ban.jails.<jail>.logpath) and never see them` : ""}`,
        ],
        packages: acme ? [...paths.packages, "certbot"] : paths.packages,
        artifacts: acme
            ? [file(paths.vhost, vhost), ...acmeArtifacts(input.stack, apache, os)]
            : [file(paths.vhost, vhost), file(CERT_PATH, certificate!), file(KEY_PATH, secretPlaceholder("tlsKey") + "\n", { mode: "0600", secret: true })],
        ...(acme ? { stage: [acmeIssueScript(apache, os)], stageUndo: [acmeStageUndo(os)] } : {}),
        prepare: [
            ...paths.prepare,
            ...(acme ? [`[ ! -d /run/systemd/system ] || { systemctl daemon-reload && systemctl enable --now --quiet ${paths.certbotTimer}; }`] : []),
        ],
        validate: [
            `${keyProblemFunction()}\nmorh_problem=$(key_problem '${certPath}' '${keyPath}')\n[ -z "$morh_problem" ] || { echo "$morh_problem"; exit 1; }`,
            `${paths.ctl} -t`,
        ],
        activate: [`${paths.ctl} graceful`],
        verify: [
            waitUntil(`pgrep -x ${paths.process} >/dev/null`, "apache is not running"),
            // Renewal is certbot's own: its timer where systemd runs, else its cron job.
            ...(acme
                ? [
                      `if [ -d /run/systemd/system ]; then systemctl is-enabled --quiet ${paths.certbotTimer}; else [ -f /etc/cron.d/certbot ]; fi || { echo "certbot's renewals are not scheduled (${paths.certbotTimer}, or /etc/cron.d/certbot without systemd)"; exit 1; }`,
                  ]
                : []),
        ],
        snapshot: [],
        // Without our vhost (a first apply undone) the site link must go too, or Apache will not start.
        rollback: [`${paths.disable(paths.vhost)}; ${paths.ctl} graceful`],
        rollbackCheck: [],
        deactivate: [`${paths.disable(paths.vhost)}; ${paths.ctl} graceful`],
        liveViews: acme ? acmeViews(apache) : [],
        needsConfirm: false,
    };
}

/** `key_problem CERT KEY`: why a certificate cannot be served with a key, or nothing (templates/apache/key-problem.sh.hbs). */
const keyProblemFunction = () => renderTemplate("apache/key-problem.sh.hbs", {}).trimEnd();

/** Where the deploy hook works: certbot's lineage, the rejected certificates, mor-harden's host lock. */
export interface AcmeHookPaths {
    name: string;
    live: string;
    archive: string;
    rejected: string;
    /** certbot's renewal configuration of the lineage, whose renew_before_expiry the hook sets. */
    renewalConf: string;
    lock: string;
    /** How long the hook waits for the host lock before it gives up (leaving the links alone). */
    lockSeconds: number;
}

/**
 * The host lock mor-harden's transactions take (HOST_LOCK_FILE). 600 s: as long as expiring a
 * transaction waits for it.
 */
export const ACME_HOOK_PATHS: AcmeHookPaths = {
    name: ACME_NAME,
    live: ACME_LIVE,
    archive: ACME_ARCHIVE,
    rejected: ACME_REJECTED,
    renewalConf: ACME_RENEWAL_CONF,
    lock: HOST_LOCK_FILE,
    lockSeconds: 600,
};

/** The deploy hook (templates/apache/acme-deploy-hook.sh.hbs); other paths only for its test's scratch tree. */
export function acmeDeployHook(stack: string, ctl: string, paths: AcmeHookPaths = ACME_HOOK_PATHS): string {
    return renderTemplate("apache/acme-deploy-hook.sh.hbs", {
        stack,
        ...paths,
        // certbot's live links are relative (../../archive/<name>/cert1.pem).
        archiveFromLive: posix.relative(paths.live, paths.archive),
        keyProblem: keyProblemFunction(),
        renewalFunctions: acmeRenewalFunctions(),
        ctl,
    });
}

/** The deploy hook certbot runs after a renewal, and for a private CA its certificates and the timer's drop-in. */
function acmeArtifacts(stack: string, apache: ApacheConfig, os: keyof typeof layout) {
    const { ctl } = layout[os];
    const hook = acmeDeployHook(stack, ctl);
    const caBundle = apache.acme!.caBundle;
    return [
        file(ACME_DEPLOY_HOOK, hook, { mode: "0755" }),
        ...(caBundle
            ? [
                  file(ACME_CA_BUNDLE, caBundle),
                  file(
                      acmeTimerDropIn(os),
                      `# Managed by mor-harden (stack ${stack}): certbot's renewals trust the private ACME CA (apache.acme.caBundle).\n[Service]\nEnvironment=REQUESTS_CA_BUNDLE=${ACME_CA_BUNDLE}\n`,
                  ),
              ]
            : []),
    ];
}

/**
 * Drift beyond the files: a renewed certificate is no drift (the vhost names certbot's live
 * links, not a content), but one under acmeRenewalMargin of its end is (certbot has failed), and so is a hand change to the renewal configuration's keys mor-harden chose.
 */
function acmeViews(apache: ApacheConfig) {
    const fullchain = `${ACME_LIVE}/fullchain.pem`;
    return [
        {
            name: ACME_VIEW.renewal,
            live: `${acmeRenewalFunctions()}\nacme_renewal_state ${fullchain}`,
            expected: { text: ACME_RENEWED_IN_TIME },
        },
        {
            // The names the certificate covers: a change of acme.domains is a change to apply (and drift till then).
            name: ACME_VIEW.names,
            live: certificateNames(fullchain),
            expected: { text: sortedNames(acmeDomains(apache)) },
        },
        {
            name: ACME_VIEW.config,
            live: `grep -E '^(${ACME_RENEWAL_KEYS.join("|")}) = ' ${ACME_RENEWAL_CONF} | sort`,
            expected: { text: acmeRenewalKeys(apache) },
        },
    ];
}
