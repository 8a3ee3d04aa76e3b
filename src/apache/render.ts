// The GUI's SSL virtual host (Mozilla "intermediate": TLS 1.2 and 1.3, ECDHE with AEAD only,
// HSTS) and a plain-HTTP virtual host that redirects to it. Named 00-* so it is Apache's
// default virtual host on both ports (it sorts before Debian's 000-default).
import { X509Certificate } from "node:crypto";
import { file, secretPlaceholder, type ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";
import { renderTemplate } from "../render/templates";
import { splitPemChain } from "./schema";
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
    const certificate = apache.certificate!;
    const responder = ocspResponder(certificate);
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
        certPath: CERT_PATH,
        keyPath: KEY_PATH,
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
    const publicKeyOf = (command: string) => `$(${command} 2>/dev/null | openssl sha256)`;
    return {
        concern: "apache",
        summary: [
            `${apache.serverName}: TLS 1.2/1.3, HSTS ${hsts}${apache.redirectHttp ? ", HTTP redirects to HTTPS" : ""}`,
            `OCSP stapling ${responder ? `on (${responder})` : "off (the certificate names no OCSP responder)"}`,
            `requests logged to ${accessLog} (combined format)${blind.length > 0 ? `; note: ${blind.join(" and ")} read${blind.length === 1 ? "s" : ""} other logs (fail2ban.jails.<jail>.logpath) and never see them` : ""}`,
        ],
        packages: paths.packages,
        artifacts: [file(paths.vhost, vhost), file(CERT_PATH, certificate), file(KEY_PATH, secretPlaceholder("tlsKey") + "\n", { mode: "0600", secret: true })],
        prepare: paths.prepare,
        validate: [
            `[ "${publicKeyOf(`openssl x509 -noout -pubkey -in ${CERT_PATH}`)}" = "${publicKeyOf(`openssl pkey -pubout -in ${KEY_PATH}`)}" ] || { echo "the certificate does not match its private key"; exit 1; }`,
            `${paths.ctl} -t`,
        ],
        activate: [`${paths.ctl} graceful`],
        verify: [`for _ in 1 2 3 4 5 6 7 8 9 10; do pgrep -x ${paths.process} >/dev/null && exit 0; sleep 0.2; done; echo "apache is not running"; exit 1`],
        snapshot: [],
        // Without our vhost (a first apply undone) the site link must go too, or Apache will not start.
        rollback: [`${paths.disable(paths.vhost)}; ${paths.ctl} graceful`],
        rollbackCheck: [],
        deactivate: [`${paths.disable(paths.vhost)}; ${paths.ctl} graceful`],
        liveViews: [],
        needsConfirm: false,
    };
}
