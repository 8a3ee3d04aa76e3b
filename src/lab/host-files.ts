// What makes a copy of this machine's root a MOR-like lab host: its own host key, the operator's
// key authorized, rsyslog writing the log files MOR's jails read, and an init that starts the
// services. Staged in a directory and copied into the host's overlay when it starts.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { clientAddresses, hostAddress } from "./addresses";
import { VOIP_START, voipLabFiles, type VoipProfile } from "./voip-files";
import { isMorProfile, morProfileBoot, morProfileFiles, profileLogs, type LabProfile } from "./mor-profile";

const INIT = "/usr/local/lib/morh-lab/init";

/** Log files the guide's jails read (Asterisk, Apache, the MOR GUI/API), present and empty at start. */
export const labLogs = [
    "/var/log/auth.log",
    "/var/log/kern.log",
    "/var/log/syslog",
    "/var/log/asterisk/messages",
    "/var/log/apache2/access.log",
    "/var/log/apache2/error.log",
    "/home/mor/log/production.log",
    "/var/log/fail2ban.log",
];

function put(root: string, path: string, content: string, mode = 0o644): void {
    const target = join(root, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    chmodSync(target, mode);
}

/** /etc/hosts of every lab node: the hosts and clients by their lab names. */
export function hostsFile(): string {
    const lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"];
    const named: [string, { v4: string; v6: string }][] = [
        ...Array.from({ length: 20 }, (_, index) => [`mor-${index + 1}`, hostAddress(index + 1)] as [string, { v4: string; v6: string }]),
        ["workstation", clientAddresses.workstation],
        ["attacker", clientAddresses.attacker],
        ["support", clientAddresses.support],
    ];
    for (const [name, { v4, v6 }] of named) lines.push(`${v4} ${name}.lab.example ${name}`, `${v6} ${name}.lab.example ${name}`);
    return lines.join("\n") + "\n";
}

/** Stages a host's own files under `root`; returns its host key as `ssh-keygen -lf` prints it, and the public key. */
export function labFiles(
    root: string,
    host: { name: string; operatorPublicKey: string; profile: LabProfile; voip?: { address: string; profile: VoipProfile } },
): { fingerprint: string; publicKey: string } {
    const hostKey = join(root, "etc/ssh/ssh_host_ed25519_key");
    mkdirSync(dirname(hostKey), { recursive: true });
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `root@${host.name}`, "-f", hostKey]);
    const fingerprint = execFileSync("ssh-keygen", ["-lf", `${hostKey}.pub`], { encoding: "utf8" }).split(" ")[1];
    const publicKey = readFileSync(`${hostKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    put(root, "root/.ssh/authorized_keys", host.operatorPublicKey, 0o600);
    chmodSync(join(root, "root/.ssh"), 0o700);
    put(root, "etc/hostname", `${host.name}\n`);
    put(root, "etc/hosts", hostsFile());
    // As on a real server: sshd logs through syslog with the prefix fail2ban's filters expect.
    // No imklog: the kernel log is the machine's, shared by every host.
    put(
        root,
        "etc/rsyslog.conf",
        [
            'module(load="imuxsock")',
            "# Classic syslog lines, as on the CentOS hosts MOR usually runs on.",
            "$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat",
            "$FileCreateMode 0640",
            "auth,authpriv.*  /var/log/auth.log",
            ...profileLogs(host.profile).map((log) => `auth,authpriv.*  ${log}`),
            "kern.*  /var/log/kern.log",
            "*.*;auth,authpriv.none  -/var/log/syslog",
            "",
        ].join("\n"),
    );
    // Debian reads sshd's log from the journal; the lab (like most MOR hosts) has log files.
    put(root, "etc/fail2ban/paths-overrides.local", "[DEFAULT]\nsshd_backend = auto\nsyslog_backend = auto\n");
    // Apache's default-ssl site needs the snakeoil pair the ssl-cert package would make.
    mkdirSync(join(root, "etc/ssl/private"), { recursive: true });
    mkdirSync(join(root, "etc/ssl/certs"), { recursive: true });
    execFileSync(
        "openssl",
        [
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            `/CN=${host.name}`,
            "-keyout",
            join(root, "etc/ssl/private/ssl-cert-snakeoil.key"),
            "-out",
            join(root, "etc/ssl/certs/ssl-cert-snakeoil.pem"),
        ],
        { stdio: "ignore" },
    );
    if (host.voip) voipLabFiles(root, { name: host.name, ...host.voip }, (path, content, mode) => put(root, path, content, mode));
    if (isMorProfile(host.profile)) {
        for (const file of morProfileFiles(host.profile, readFileSync("/etc/fail2ban/jail.conf", "utf8"))) put(root, file.path, file.content, file.mode);
    }
    const logs = [...labLogs, ...profileLogs(host.profile)];
    put(
        root,
        INIT,
        [
            "#!/bin/sh",
            "# PID 1's child inside a lab host (tini is PID 1 and reaps).",
            `hostname ${host.name}`,
            "rm -f /etc/ssh/ssh_host_rsa_key* /etc/ssh/ssh_host_ecdsa_key*",
            "mkdir -p /run/sshd /run/lock /run/apache2 /run/fail2ban /var/log/asterisk /var/log/apache2 /home/mor/log",
            `for log in ${logs.join(" ")}; do : > "$log"; done`,
            ...(isMorProfile(host.profile) ? morProfileBoot(host.profile) : []),
            ...LAB_SERVICES,
            "touch /run/lab-ready",
            "echo ready",
            "exec sleep infinity",
            "",
        ].join("\n"),
        0o755,
    );
    return { fingerprint, publicKey };
}

/** What a lab host's init starts, in order (a simulated reboot starts them again). */
export const LAB_SERVICES = [
    "rsyslogd",
    "/usr/sbin/sshd || echo 'sshd failed to start'",
    "a2enmod -q ssl >/dev/null 2>&1; a2ensite -q default-ssl >/dev/null 2>&1",
    "apache2ctl start || echo 'apache2 failed to start'",
    "fail2ban-client -q start || echo 'fail2ban failed to start'",
    // Hosts given a VoIP profile (MOR-like Asterisk files and MariaDB) start their database.
    `[ ! -x ${VOIP_START} ] || ${VOIP_START}`,
];

/** The script `unshare` runs: build the host's root and hand over to its init. */
export function hostInit(files: string): string {
    return [
        "set -e",
        "mount -t tmpfs -o mode=755 morh-lab /mnt",
        "mkdir /mnt/upper /mnt/work /mnt/root",
        "mount -t overlay overlay -o lowerdir=/,upperdir=/mnt/upper,workdir=/mnt/work /mnt/root",
        "R=/mnt/root",
        // root's shell start-up files as a Debian install leaves them: the build machine's own
        // (pyenv, toolchains) would run on every SSH command and weigh on every timing.
        'for dot in bashrc profile; do [ ! -r "/usr/share/base-files/dot.$dot" ] || cp "/usr/share/base-files/dot.$dot" "$R/root/.$dot"; done',
        `cp -a '${files}/.' "$R/"`,
        'mount -t proc proc "$R/proc"',
        'mount -t sysfs sysfs "$R/sys"',
        'mount -t tmpfs -o mode=755 dev "$R/dev"',
        'for node in null zero full random urandom tty; do touch "$R/dev/$node"; mount --bind "/dev/$node" "$R/dev/$node"; done',
        'mkdir -p "$R/dev/pts" "$R/dev/shm"',
        'mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"',
        'ln -s pts/ptmx "$R/dev/ptmx"; ln -s /proc/self/fd "$R/dev/fd"',
        'mount -t tmpfs tmpfs "$R/dev/shm"',
        'mount -t tmpfs -o mode=755 run "$R/run"',
        'mount -t tmpfs -o mode=1777 tmp "$R/tmp"',
        `exec chroot "$R" /usr/bin/tini -- /bin/sh ${INIT}`,
    ].join("\n");
}
