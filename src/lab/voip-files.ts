// A MOR-like VoIP set-up for a lab host, for the audit: Asterisk's configuration as MOR lays it
// out (sip.conf with an include and a template, iax.conf, manager.conf with manager.d,
// extconfig.conf mapping sippeers to MOR's `devices` table, res_config_mysql.conf with MOR's
// credentials) and Debian's MariaDB with the database `mor`. Asterisk is not in Debian: its
// files are real formats that nothing runs. "weak" carries every problem the audit looks for,
// "strong" none of them. MariaDB's data lives in the host's tmpfs (/run), made at start.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

export interface VoipProfile {
    secrets: "weak" | "strong";
    /** exposed: MariaDB binds the host's address; loopback: 127.0.0.1 only. */
    database: "exposed" | "loopback";
}

/** Run by the host's init after its services (and again after a simulated reboot). */
export const VOIP_START = "/usr/local/lib/morh-lab/voip-start";
const SEED_SQL = "/usr/local/lib/morh-lab/mor.sql";
const DATADIR = "/run/morh-mysql";

/**
 * Every secret a profile puts on the host, for the tests that prove no output holds one. Each is
 * distinct and found nowhere else (not a name, a path or a word of the reports).
 */
export const labSecrets = {
    weak: {
        sipDevice: "Qx1zv",
        sipTrunk: "Vw8Lk2qj",
        dbDevice: "Hb3ty",
        dbTrunk: "Tk7#Longer-secret9",
        iaxUser: "Zr4kw",
        amiUser: "Km5uy",
        database: `Pq9;"W\\x`,
    },
    strong: {
        sipDevice: "kX9#mP2$vL7!qR",
        sipTrunk: "tR7&nB4^cZ1@wY",
        dbDevice: "gH6*jK3%pL8!sD",
        iaxUser: "vB2@xN5#mQ8&rT",
        amiUser: "yU4!hJ7$kL1^zP",
        database: "dF5^gH8&jK2*lZ",
    },
} as const;

type Put = (path: string, content: string, mode?: number) => void;

const sqlString = (text: string) => `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
/** A value in an Asterisk file: `;` starts a comment unless escaped. */
const asteriskValue = (text: string) => text.replace(/;/g, "\\;");

function asteriskFiles(profile: VoipProfile, put: Put): void {
    const weak = profile.secrets === "weak";
    const secrets = labSecrets[profile.secrets];
    const acl = weak ? [] : ["deny=0.0.0.0/0.0.0.0", "permit=198.51.100.0/255.255.255.0"];
    put(
        "/etc/asterisk/sip.conf",
        [
            "; MOR's sip.conf (lab): devices live in the database (extconfig.conf), trunks here",
            "[general]",
            "context=mor_guest ; where guests land",
            `allowguest=${weak ? "yes" : "no"}`,
            `alwaysauthreject=${weak ? "no" : "yes"}`,
            "udpbindaddr=0.0.0.0:5060",
            "rtcachefriends=yes",
            "",
            "#include sip_custom.conf",
            "",
            "[1001]",
            "type=friend",
            "host=dynamic",
            `secret=${asteriskValue(secrets.sipDevice)}`,
            "context=mor_local",
            ...acl,
            "",
        ].join("\n"),
    );
    put(
        "/etc/asterisk/sip_custom.conf",
        [
            "[trunk-template](!)",
            "type=peer",
            `insecure=${weak ? "port,invite" : "port"}`,
            "context=mor_trunk",
            "",
            "[pbx-hq](trunk-template)",
            "host=203.0.113.50",
            `secret=${asteriskValue(secrets.sipTrunk)}`,
            "",
        ].join("\n"),
    );
    put(
        "/etc/asterisk/iax.conf",
        [
            "[general]",
            "bindport=4569",
            "bindaddr=0.0.0.0",
            "",
            ...(weak ? ["[guest]", "type=user", "context=mor_guest", ""] : []),
            "[office]",
            "type=friend",
            "host=dynamic",
            `secret=${asteriskValue(secrets.iaxUser)}`,
            "context=mor_local",
            ...acl,
            "",
        ].join("\n"),
    );
    put(
        "/etc/asterisk/manager.conf",
        ["[general]", "enabled = yes", "port = 5038", `bindaddr = ${weak ? "0.0.0.0" : "127.0.0.1"}`, "", '#include "manager.d/*.conf"', ""].join("\n"),
    );
    put(
        "/etc/asterisk/manager.d/mor.conf",
        [
            "[mor]",
            `secret = ${asteriskValue(secrets.amiUser)}`,
            ...(weak ? [] : ["deny = 0.0.0.0/0.0.0.0", "permit = 127.0.0.1/255.255.255.255"]),
            "read = system,call,log,verbose,agent,user,config,dtmf,reporting,cdr,dialplan",
            `write = ${weak ? "all" : "call,originate,reporting"}`,
            "",
        ].join("\n"),
    );
    put("/etc/asterisk/extconfig.conf", ["[settings]", "sipusers => mysql,general,devices", "sippeers => mysql,general,devices", ""].join("\n"));
    put(
        "/etc/asterisk/res_config_mysql.conf",
        [
            "[general]",
            "dbhost = localhost",
            "dbname = mor",
            "dbuser = mor",
            `dbpass = ${asteriskValue(secrets.database)}`,
            "dbport = 3306",
            "dbsock = /run/mysqld/mysqld.sock",
            "",
        ].join("\n"),
        0o640,
    );
    put("/etc/asterisk/modules.conf", ["[modules]", "autoload=yes", "noload => chan_skinny.so", ""].join("\n"));
    if (weak) put("/etc/sudoers.d/asterisk", "asterisk ALL=(ALL) NOPASSWD: /usr/bin/fail2ban-client\n", 0o440);
}

function databaseFiles(profile: VoipProfile, address: string, put: Put): void {
    const weak = profile.secrets === "weak";
    const secrets = labSecrets[profile.secrets];
    put(
        "/etc/mysql/mariadb.conf.d/60-morh-lab.cnf",
        [
            "# The lab: a small server whose data lives in the host's tmpfs, started in well under a second.",
            "[mysqld]",
            `datadir = ${DATADIR}`,
            `bind-address = ${profile.database === "exposed" ? address : "127.0.0.1"}`,
            "innodb_buffer_pool_size = 8M",
            "innodb_log_file_size = 4M",
            "innodb_data_file_path = ibdata1:2M:autoextend",
            "performance_schema = OFF",
            "skip-name-resolve",
            "",
        ].join("\n"),
    );
    const device = (name: string, secret: string, insecure: string | null, host: string, type: string, permit: string | null, deny: string | null) =>
        `(${[name, secret, insecure, host, type, "mor_local", permit, deny].map((value) => (value === null ? "NULL" : sqlString(value))).join(", ")})`;
    const columns = [
        "id INT AUTO_INCREMENT PRIMARY KEY",
        "name VARCHAR(80) NOT NULL",
        "secret VARCHAR(80)",
        "insecure VARCHAR(20)",
        "host VARCHAR(40)",
        "type VARCHAR(10)",
        "context VARCHAR(80)",
        "permit VARCHAR(255)",
        "deny VARCHAR(255)",
    ];
    // Asterisk's other realtime columns, nullable as in MOR.
    const others = [
        "ipaddr VARCHAR(45)",
        "port INT",
        "regseconds INT",
        "defaultuser VARCHAR(80)",
        "fullcontact VARCHAR(255)",
        "useragent VARCHAR(255)",
        "lastms INT",
        "nat VARCHAR(20)",
        "qualify VARCHAR(10)",
        "disallow VARCHAR(100)",
        "allow VARCHAR(100)",
        "callerid VARCHAR(80)",
        "accountcode VARCHAR(20)",
        "regserver VARCHAR(100)",
    ];
    put(
        SEED_SQL,
        [
            "CREATE DATABASE mor;",
            `CREATE TABLE mor.devices (${[...columns, ...others].join(", ")});`,
            "INSERT INTO mor.devices (name, secret, insecure, host, type, context, permit, deny) VALUES",
            weak
                ? `${device("2001", secrets.dbDevice, null, "dynamic", "friend", null, null)},\n${device("trunk-db", labSecrets.weak.dbTrunk, "port,invite", "203.0.113.60", "peer", null, null)};`
                : `${device("2001", secrets.dbDevice, null, "dynamic", "friend", "198.51.100.0/255.255.255.0", "0.0.0.0/0.0.0.0")},\n${device("trunk-db", secrets.sipTrunk, "port", "203.0.113.60", "peer", null, null)};`,
            `CREATE USER 'mor'@'localhost' IDENTIFIED BY ${sqlString(secrets.database)};`,
            "GRANT ALL ON mor.* TO 'mor'@'localhost';",
            ...(weak
                ? [
                      `CREATE USER 'mor'@'%' IDENTIFIED BY ${sqlString(secrets.database)};`,
                      "GRANT ALL ON mor.* TO 'mor'@'%';",
                      "CREATE USER ''@'localhost';",
                      "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('');",
                  ]
                : []),
            "",
        ].join("\n"),
        0o600,
    );
    put(
        VOIP_START,
        [
            "#!/bin/sh",
            "# MariaDB with MOR's database; the data is made at the first start (the host's tmpfs).",
            "mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld",
            `fresh=; if [ ! -d ${DATADIR}/mysql ]; then mkdir -p ${DATADIR} && chown mysql:mysql ${DATADIR} && mariadb-install-db --user=mysql --auth-root-authentication-method=socket --skip-test-db >/var/log/mariadb-install.log 2>&1 && fresh=1 || echo 'mariadb-install-db failed'; fi`,
            "mariadbd --user=mysql >/var/log/mariadb-lab.log 2>&1 &",
            "for i in $(seq 200); do [ -S /run/mysqld/mysqld.sock ] && mariadb -u root -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.05; done",
            `[ -z "$fresh" ] || mariadb -u root < ${SEED_SQL} || echo 'seeding mor failed'`,
            "",
        ].join("\n"),
        0o755,
    );
}

/** The GUI's certificate: weak, self-signed and 10 days from its end; strong, 400 days from a CA the host trusts. */
function certificateFiles(profile: VoipProfile, root: string, name: string): void {
    const key = join(root, "etc/ssl/private/ssl-cert-snakeoil.key");
    const certificate = join(root, "etc/ssl/certs/ssl-cert-snakeoil.pem");
    const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
    const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    if (profile.secrets === "weak") {
        openssl("req", "-x509", ...newKey, "-days", "10", "-subj", `/CN=${name}.lab.example`, "-keyout", key, "-out", certificate);
        return;
    }
    const ca = join(root, "..", "voip-ca");
    openssl("req", "-x509", ...newKey, "-days", "800", "-subj", `/CN=${name} lab GUI CA`, "-keyout", `${ca}.key`, "-out", `${ca}.crt`);
    openssl("req", "-new", ...newKey, "-subj", `/CN=${name}.lab.example`, "-keyout", key, "-out", `${ca}.csr`);
    openssl("x509", "-req", "-in", `${ca}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-days", "400", "-out", certificate);
    // The host's own copies of the CA bundle and the hashed CA directory trust this CA (the machine's stay as they are).
    const bundle = "/etc/ssl/certs/ca-certificates.crt";
    execFileSync("sh", [
        "-c",
        `mkdir -p "$(dirname "$2")" && cat "$1" "$3" > "$2" && cp "$3" "$(dirname "$2")/$(openssl x509 -hash -noout -in "$3").0"`,
        "sh",
        bundle,
        join(root, bundle),
        `${ca}.crt`,
    ]);
}

/** Stages the profile's files under a host's root (called after the host's own files). */
export function voipLabFiles(root: string, host: { name: string; address: string; profile: VoipProfile }, put: Put): void {
    asteriskFiles(host.profile, put);
    databaseFiles(host.profile, host.address, put);
    certificateFiles(host.profile, root, host.name);
}
