// The one read-only script an audit runs on a host, and the parser of what it prints: the raw
// facts, nothing judged on the host. It writes nothing but a private temporary option file for the
// database's password (mode 0600 in a mktemp -d directory, removed at once, or by a trap should
// the script die first), so the password never appears on a command line. Every section is a
// tagged line, its payload in base64 or hex.
import { shellQuote, wholeScript } from "../render/shell";
import { OPTION_FILE_AWK, SIPPEERS_SED } from "../config/asterisk-database";
import { ASTERISK_DIR } from "./asterisk-config";
import type { AsteriskFacts } from "./pjproject";
import { ACME_RECORD, ACME_RENEWAL_KEYS } from "../apache/render";

/** Asterisk files the audit reads, with what they `#include` (followed on the host). */
export const ASTERISK_ROOTS = ["sip.conf", "pjsip.conf", "iax.conf", "manager.conf", "extconfig.conf", "modules.conf"];
/** AMI users may live in manager.d (the sample manager.conf includes it). */
export const MANAGER_DIR = `${ASTERISK_DIR}/manager.d`;
const SUDOERS = ["/etc/sudoers", "/etc/sudoers.d"];
const APACHE_CONFIGS = ["/etc/apache2/sites-enabled/*", "/etc/httpd/conf.d/*.conf", "/etc/httpd/conf/httpd.conf"];
/**
 * The host's trusted CAs: a hashed directory where there is one (openssl then reads only the CAs
 * it needs: 5 ms instead of 28 for the whole bundle), else the bundle.
 */
const CA_DIRECTORIES = ["/etc/ssl/certs", "/etc/pki/ca-trust/extracted/pem/directory-hash"];
const CA_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];

/** The realtime peers' columns, as Asterisk's sippeers table has them. */
export const PEER_COLUMNS = ["name", "secret", "insecure", "host", "type", "context", "permit", "deny"] as const;
export type PeerColumn = (typeof PEER_COLUMNS)[number];
export type DatabasePeer = Record<PeerColumn, string | null>;

export interface AuditFacts {
    /** The host's clock, epoch seconds (certificate expiry is judged by it). */
    now: number;
    /** Asterisk's and sudo's files by absolute path (their contents stay in memory, never in a report). */
    files: Record<string, string>;
    /** The table extconfig.conf maps sippeers to: absent when there is none. */
    database?: { table: string; read: boolean; peers: DatabasePeer[] };
    /** mysql.user through the host's client as root: absent when there is no client. */
    accounts?: { read: boolean; rows: { user: string; host: string }[] };
    /** A local user other than root logged in as MySQL's root with an empty password. */
    rootWithoutPassword: boolean;
    /** `ss -H -lntup` lines. */
    sockets: string;
    /** `iptables-save -t filter` / `ip6tables-save -t filter` (empty: no rules loaded, or no iptables). */
    rules: { v4: string; v6: string };
    /** `ipset list -t` (headers only): where mor-harden's ban action and fail2ban's ipset actions keep bans. */
    sets: string;
    /** fail2ban-server's thread names, or undefined when it does not run. */
    fail2banThreads?: string[];
    /** Each SSLCertificateFile of the enabled Apache sites: its certificates (PEM) and `openssl verify`'s output. */
    certificates: { path: string; pem: string; verify: string }[];
    /**
     * Each certbot lineage (renewal/<name>.conf): its certificate (PEM), the renewal keys mor-harden
     * chooses as they are now, and as mor-harden recorded them when it issued (absent: not mor-harden's).
     */
    acme?: { name: string; pem: string; keys: string; recorded?: string }[];
    /** fail2ban's jail, filter and action files, cron's files and the text scripts they name, by absolute path. */
    hostFiles: Record<string, string>;
    /** Asterisk's version and pjproject build options (absent when the script printed none). */
    asterisk?: AsteriskFacts;
}

const b64 = (command: string) => `"$( { ${command}; } 2>/dev/null | base64 -w0)"`;

/**
 * Follows the roots' `#include`s in /etc/asterisk (globs expanded there) and prints each file once,
 * a level of includes at a time (one sed per level, not per file: process starts are the cost).
 */
const asteriskFiles = String.raw`( cd ${ASTERISK_DIR} 2>/dev/null || exit 0
  set -- ${ASTERISK_ROOTS.join(" ")} manager.d/*.conf
  morh_seen=' '; morh_depth=0
  while [ $# -gt 0 ] && [ $morh_depth -lt 10 ]; do
    morh_level=
    for morh_f; do
      case $morh_f in /*) ;; *) morh_f=${ASTERISK_DIR}/$morh_f ;; esac
      case $morh_seen in *" $morh_f "*) continue ;; esac
      morh_seen="$morh_seen$morh_f "
      [ -f "$morh_f" ] || continue
      printf 'F %s %s\n' "$morh_f" "$(base64 -w0 < "$morh_f")"
      morh_level="$morh_level $morh_f"
    done
    [ -n "$morh_level" ] || break
    # Split on purpose: the level's files, and the names their includes give (globs expanded here).
    # shellcheck disable=SC2046
    set -- $(sed -n 's/^[[:space:]]*#[[:space:]]*\(try\)\{0,1\}include[[:space:]]\{1,\}["<]\{0,1\}\([^"<>;[:space:]]*\).*/\2/p' $morh_level)
    morh_depth=$((morh_depth + 1))
  done )`;

/** The realtime peers through the host's client (`$morh_sql`), the password in a private option file. */
export const databasePeers = [
    `morh_map=$(sed -n ${shellQuote(SIPPEERS_SED)} ${ASTERISK_DIR}/extconfig.conf 2>/dev/null | tail -n 1)`,
    `if [ -n "$morh_map" ] && [ -n "$morh_sql" ] && [ -f ${ASTERISK_DIR}/res_config_mysql.conf ]; then`,
    `  morh_section=\${morh_map% *}; morh_table=\${morh_map#* }`,
    // Should the script die before the file is removed (a lost connection, a kill), the password
    // must not stay on the host: removed on exit too. sh (dash) runs no EXIT trap when a signal
    // ends it, so the signals exit first.
    `  morh_tmp=; trap 'rm -rf "$morh_tmp"' EXIT; trap 'exit 129' HUP INT TERM PIPE`,
    `  if morh_tmp=$(mktemp -d); then`,
    `    (umask 077; awk -v section="$morh_section" ${shellQuote(OPTION_FILE_AWK)} ${ASTERISK_DIR}/res_config_mysql.conf > "$morh_tmp/client.cnf")`,
    `    morh_rows=$("$morh_sql" --defaults-extra-file="$morh_tmp/client.cnf" --batch --skip-column-names -e "SELECT ${PEER_COLUMNS.map((column) => `HEX(${column})`).join(",")} FROM $morh_table" 2>/dev/null); morh_code=$?`,
    `    rm -rf "$morh_tmp"`,
    `    printf 'D %s %s %s\\n' "$morh_table" "$morh_code" "$(printf '%s' "$morh_rows" | base64 -w0)"`,
    "  fi",
    "  trap - EXIT HUP INT TERM PIPE",
    "fi",
];

const mysqlAccounts = [
    `if [ -n "$morh_sql" ]; then`,
    `  morh_rows=$(HOME=/root "$morh_sql" --batch --skip-column-names -e 'SELECT HEX(User),HEX(Host) FROM mysql.user' 2>/dev/null); morh_code=$?`,
    `  printf 'U %s %s\\n' "$morh_code" "$(printf '%s' "$morh_rows" | base64 -w0)"`,
    // As a user other than root, unix_socket authentication cannot let it in: only an empty password can.
    `  if HOME=/nonexistent runuser -u nobody -- "$morh_sql" -u root --password= -e 'SELECT 1' >/dev/null 2>&1; then echo 'R yes'; fi`,
    "fi",
];

const fail2banThreads = `morh_pid=$(cat /run/fail2ban/fail2ban.pid 2>/dev/null); case $morh_pid in ''|*[!0-9]*) ;; *) [ -d "/proc/$morh_pid/task" ] && printf 'J %s\\n' ${b64('cat "/proc/$morh_pid"/task/*/comm')} ;; esac`;

/**
 * The certificates (only their PEM blocks: a file may hold the key too) of each SSLCertificateFile,
 * judged on the operator's side, and `openssl verify` against the host's CA bundle.
 */
const certificates = [
    `morh_cafile=; for morh_b in ${CA_BUNDLES.join(" ")}; do [ -f "$morh_b" ] && { morh_cafile="-CAfile $morh_b"; break; }; done; morh_ca=$morh_cafile`,
    `for morh_d in ${CA_DIRECTORIES.join(" ")}; do set -- "$morh_d"/*.0; [ -e "$1" ] && { morh_ca="-no-CAfile -no-CAstore -CApath $morh_d"; break; }; done`,
    `for morh_c in $(sed -n 's/^[[:space:]]*SSLCertificateFile[[:space:]]\\{1,\\}"\\{0,1\\}\\([^"[:space:]]*\\).*/\\1/Ip' ${APACHE_CONFIGS.join(" ")} 2>/dev/null | sort -u); do`,
    `  [ -f "$morh_c" ] || continue`,
    // OpenSSL before 3.0 knows no -no-CAstore: then the bundle, as every version reads it.
    `  morh_v=$(openssl verify $morh_ca -untrusted "$morh_c" "$morh_c" 2>&1); case $morh_v in *"nknown option"*|*"sage:"*) morh_v=$(openssl verify $morh_cafile -untrusted "$morh_c" "$morh_c" 2>&1) ;; esac`,
    `  printf 'C %s %s %s\\n' "$morh_c" ${b64(`sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$morh_c"`)} "$(printf '%s' "$morh_v" | base64 -w0)"`,
    "done",
];

/** certbot's lineages: `L <name> <cert b64> <keys b64> <record b64 or ->` (the record only for mor-harden's). */
const acmeLineages = [
    `for morh_r in /etc/letsencrypt/renewal/*.conf; do`,
    `  [ -f "$morh_r" ] || continue; morh_n=$(basename "$morh_r" .conf)`,
    `  morh_rec=-; [ "$morh_n" != mor-harden ] || [ ! -f ${ACME_RECORD} ] || morh_rec=$(base64 -w0 < ${ACME_RECORD})`,
    `  printf 'L %s %s %s %s\n' "$morh_n" ${b64(`cat "/etc/letsencrypt/live/$morh_n/cert.pem"`)} ${b64(`grep -E '^(${ACME_RENEWAL_KEYS.join("|")}) = ' "$morh_r" | sort`)} "$morh_rec"`,
    "done",
];

// ---- fail2ban's configuration, cron jobs and Asterisk's pjproject (fail2ban-config.ts, pjproject.ts)

const FAIL2BAN_CONFIG = ["/etc/fail2ban/jail.conf", "/etc/fail2ban/jail.local", "/etc/fail2ban/jail.d", "/etc/fail2ban/filter.d", "/etc/fail2ban/action.d"];
const CRON_FILES = ["/etc/crontab", "/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly", "/var/spool/cron"];
/** Files larger than this are not read (a cron line may name a big binary; fail2ban's own files are a few kB). */
const HOST_FILE_LIMIT = "-size -256k";
const PJSIP_MODULES = ["/usr/lib/asterisk/modules", "/usr/lib64/asterisk/modules", "/usr/lib/x86_64-linux-gnu/asterisk/modules"].map(
    (dir) => `${dir}/res_pjsip.so`,
);

/**
 * fail2ban's files and cron's, with the local text scripts cron's lines name (absolute paths,
 * comments cut, none under /proc, /sys, /dev or /run; binaries skipped by grep -I), all printed by one awk in one base64 payload, each
 * file after a line of \001 and its path: a handful of processes whatever the number of files.
 */
export const fail2banAndCronFiles = [
    `morh_f2b=$(find ${FAIL2BAN_CONFIG.join(" ")} -maxdepth 1 -type f \\( -name '*.conf' -o -name '*.local' \\) ${HOST_FILE_LIMIT} 2>/dev/null)`,
    `morh_cron=$(find ${CRON_FILES.join(" ")} -maxdepth 2 -type f ${HOST_FILE_LIMIT} 2>/dev/null)`,
    `morh_named=; [ -z "$morh_cron" ] || morh_named=$(sed 's/#.*//' $morh_cron 2>/dev/null | grep -o '/[A-Za-z0-9_.+/-]*' | grep -Ev '^/(proc|sys|dev|run)/' | sort -u)`,
    `morh_scripts=; [ -z "$morh_named" ] || morh_scripts=$(find $morh_named -maxdepth 0 -type f ${HOST_FILE_LIMIT} 2>/dev/null)`,
    `morh_text=; [ -z "$morh_cron$morh_scripts" ] || morh_text=$(grep -Il '' $morh_cron $morh_scripts 2>/dev/null | sort -u)`,
    `printf 'G %s\\n' ${b64(`[ -z "$morh_f2b$morh_text" ] || awk 'FNR == 1 { printf "\\001%s\\n", FILENAME } { print }' $morh_f2b $morh_text`)}`,
];

/** Asterisk's version, its PJSIP module files and, while it runs, pjproject's build options (pjproject.ts says why). */
export const asteriskPjproject = [
    `if command -v asterisk >/dev/null 2>&1; then`,
    `  morh_buildopts=; [ -S /var/run/asterisk/asterisk.ctl ] && morh_buildopts=$(timeout 5 asterisk -rx 'pjproject show buildopts' 2>/dev/null)`,
    `  printf 'A %s %s %s\\n' ${b64("asterisk -V")} "$(printf '%s' "$morh_buildopts" | base64 -w0)" ${b64(`ls ${PJSIP_MODULES.join(" ")}`)}`,
    "fi",
];

/** Files of the G payload: \001PATH starts each. */
function bundledFiles(payload: string): Record<string, string> {
    const files: Record<string, string> = {};
    for (const part of payload.split(/^\u0001/m).filter(Boolean)) {
        const newline = part.indexOf("\n");
        files[part.slice(0, newline)] = part.slice(newline + 1);
    }
    return files;
}

export function auditScript(): string {
    return wholeScript([
        "export LC_ALL=C",
        'echo "N $(date +%s)"',
        asteriskFiles,
        `for morh_f in ${SUDOERS[0]} ${SUDOERS[1]}/*; do [ -f "$morh_f" ] && printf 'F %s %s\\n' "$morh_f" "$(base64 -w0 < "$morh_f")"; done`,
        "morh_sql=$(command -v mariadb || command -v mysql)",
        ...databasePeers,
        ...mysqlAccounts,
        `printf 'S %s\\n' ${b64("ss -H -lntup")}`,
        `printf 'I4 %s\\n' ${b64("iptables-save -t filter")}`,
        `printf 'I6 %s\\n' ${b64("ip6tables-save -t filter")}`,
        `printf 'B %s\\n' ${b64("ipset list -t")}`,
        fail2banThreads,
        ...certificates,
        ...acmeLineages,
        ...fail2banAndCronFiles,
        ...asteriskPjproject,
        "true",
    ]);
}

const unb64 = (text: string | undefined) => Buffer.from(text ?? "", "base64").toString("utf8");
const unhex = (text: string) => (text === "NULL" ? null : Buffer.from(text, "hex").toString("utf8"));

/** Rows of `HEX(...)` columns, tab-separated, NULL as the word. */
const hexRows = (payload: string | undefined) =>
    unb64(payload)
        .split("\n")
        .filter((line) => line.length > 0)
        .map((line) => line.split("\t").map(unhex));

export function parseAuditOutput(output: string): AuditFacts {
    const facts: AuditFacts = {
        now: 0,
        files: {},
        rootWithoutPassword: false,
        sockets: "",
        rules: { v4: "", v6: "" },
        sets: "",
        certificates: [],
        acme: [],
        hostFiles: {},
    };
    for (const line of output.split("\n")) {
        const fields = line.split(" ");
        switch (fields[0]) {
            case "N":
                facts.now = Number(fields[1]);
                break;
            case "F":
                facts.files[fields[1]] = unb64(fields[2]);
                break;
            case "D":
                facts.database = {
                    table: fields[1],
                    read: fields[2] === "0",
                    peers:
                        fields[2] === "0"
                            ? hexRows(fields[3]).map(
                                  (row) => Object.fromEntries(PEER_COLUMNS.map((column, index) => [column, row[index] ?? null])) as DatabasePeer,
                              )
                            : [],
                };
                break;
            case "U":
                facts.accounts = {
                    read: fields[1] === "0",
                    rows: fields[1] === "0" ? hexRows(fields[2]).map(([user, host]) => ({ user: user ?? "", host: host ?? "" })) : [],
                };
                break;
            case "R":
                facts.rootWithoutPassword = fields[1] === "yes";
                break;
            case "S":
                facts.sockets = unb64(fields[1]);
                break;
            case "I4":
                facts.rules.v4 = unb64(fields[1]);
                break;
            case "I6":
                facts.rules.v6 = unb64(fields[1]);
                break;
            case "B":
                facts.sets = unb64(fields[1]);
                break;
            case "J":
                facts.fail2banThreads = unb64(fields[1]).split("\n").filter(Boolean);
                break;
            case "C":
                facts.certificates.push({ path: fields[1], pem: unb64(fields[2]), verify: unb64(fields[3]) });
                break;
            case "L":
                (facts.acme ??= []).push({
                    name: fields[1],
                    pem: unb64(fields[2]),
                    keys: unb64(fields[3]),
                    ...(fields[4] && fields[4] !== "-" ? { recorded: unb64(fields[4]) } : {}),
                });
                break;
            case "G":
                facts.hostFiles = bundledFiles(unb64(fields[1]));
                break;
            case "A":
                facts.asterisk = { version: unb64(fields[1]).trim(), buildopts: unb64(fields[2]), pjsipModules: unb64(fields[3]).split("\n").filter(Boolean) };
                break;
        }
    }
    return facts;
}
