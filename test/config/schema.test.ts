import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, parseHostConfig } from "../../src/config/schema";
import { loadEnvironment, parseStackDocument } from "../../src/config/stack-file";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { certificateFor, HOST_KEY, minimalConfig, minimalRaw } from "../helpers/fixtures";

function problemsOf(raw: unknown): string[] {
    try {
        parseHostConfig(raw);
    } catch (error) {
        assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
        return error.problems;
    }
    assert.fail("the config was accepted");
}

const withFirewall = (firewall: Record<string, unknown>) => minimalRaw({ firewall: { trusted: ["198.51.100.10"], trustKolmisoftSupport: false, ...firewall } });
const withJail = (jail: string, settings: Record<string, unknown>) => minimalRaw({ fail2ban: { jails: { [jail]: settings } } });
const withConnection = (connection: Record<string, unknown>) => minimalRaw({ connection: { address: "192.0.2.11", hostKey: HOST_KEY, ...connection } });
const knocking = (settings: Record<string, unknown>) => minimalRaw({ knocking: { mode: "sequence", sequence: [7001, 8002, 9003], ...settings } });

// Each bad config, and the one problem (key path and what is wrong) it must be reported with.
const badConfigs: [string, Record<string, unknown>, string][] = [
    [
        "CIDR with a prefix too long",
        withFirewall({ trusted: ["198.51.100.10", "192.0.2.0/24", "10.0.0.0/33"] }),
        'firewall.trusted[2]: "10.0.0.0/33" is not an address, CIDR or host name',
    ],
    [
        "trusted source that is no address",
        withFirewall({ trusted: ["not an address"] }),
        'firewall.trusted[0]: "not an address" is not an address, CIDR or host name',
    ],
    ["IPv6 CIDR too long", withFirewall({ trusted: ["2001:db8::/129"] }), 'firewall.trusted[0]: "2001:db8::/129" is not an address, CIDR or host name'],
    ["unknown exposure", withFirewall({ services: { http: "open" } }), 'firewall.services.http.exposure: "open" is not an exposure'],
    ["AMI public", withFirewall({ services: { ami: "public" } }), 'firewall.services.ami: "public" is not allowed for ami'],
    ["MySQL public", withFirewall({ services: { mysql: "public" } }), 'firewall.services.mysql: "public" is not allowed for mysql'],
    ["SSH closed", withFirewall({ services: { ssh: "closed" } }), 'firewall.services.ssh: "closed" is not allowed for ssh'],
    ["unknown service", withFirewall({ services: { telnet: "public" } }), "firewall.services.telnet: is not a known key"],
    [
        "RTP range reversed",
        withFirewall({ services: { rtp: { ports: "20000-10000" } } }),
        'firewall.services.rtp.ports: "20000-10000" is not a port or port range',
    ],
    [
        "extra rule port out of range",
        withFirewall({ extraRules: [{ name: "x", protocol: "tcp", ports: 70000, exposure: "public" }] }),
        "firewall.extraRules[0].ports: 70000 is not a port or port range",
    ],
    [
        "extra rule protocol",
        withFirewall({ extraRules: [{ name: "x", protocol: "icmp", ports: 1, exposure: "public" }] }),
        'firewall.extraRules[0].protocol: "icmp" is not a protocol',
    ],
    [
        "extra rule name with a space",
        withFirewall({ extraRules: [{ name: "my rule", protocol: "tcp", ports: 1, exposure: "public" }] }),
        'firewall.extraRules[0].name: "my rule" is not a rule name',
    ],
    [
        "extra rule names twice",
        withFirewall({
            extraRules: [
                { name: "a", protocol: "tcp", ports: 1, exposure: "public" },
                { name: "a", protocol: "udp", ports: 2, exposure: "public" },
            ],
        }),
        'firewall.extraRules[1].name: "a" is used by another rule',
    ],
    [
        "NFLOG scanner log on RHEL",
        minimalRaw({ os: "rhel", firewall: { trusted: ["198.51.100.10"], trustKolmisoftSupport: false, scannerLog: "nflog" } }),
        "firewall.scannerLog: nflog needs Debian's ulogd2",
    ],
    ["scanner log elsewhere", withFirewall({ scannerLog: "journal" }), 'firewall.scannerLog: "journal" is not kernel or nflog'],
    ["nobody trusted", withFirewall({ trusted: [] }), "firewall.trusted: is empty and trustKolmisoftSupport is false"],
    ["SSH port moved in the firewall only", withFirewall({ services: { ssh: { ports: 2222 } } }), "firewall.services.ssh.ports: differs from sshd.port 22"],
    ["host key not a fingerprint", withConnection({ hostKey: "MD5:aa:bb" }), 'connection.hostKey: "MD5:aa:bb" is not a host key fingerprint'],
    ["connection port zero", withConnection({ port: 0 }), "connection.port: 0 is not a port number"],
    ["user with a shell metacharacter", withConnection({ user: "root;reboot" }), 'connection.user: "root;reboot" is not a user name'],
    [
        "address with a space",
        withConnection({ address: "192.0.2.1 -oProxyCommand=x" }),
        'connection.address: "192.0.2.1 -oProxyCommand=x" is not an address or host name',
    ],
    ["relative key file", withConnection({ privateKeyFile: "id_ed25519" }), 'connection.privateKeyFile: "id_ed25519" is not an absolute path'],
    ["missing host key", minimalRaw({ connection: { address: "192.0.2.11" } }), "connection.hostKey: undefined is not a host key fingerprint"],
    ["unknown OS", minimalRaw({ os: "ubuntu" }), 'os: "ubuntu" is not an OS family (debian or rhel)'],
    ["jail maxretry zero", withJail("ssh-iptables", { maxretry: 0 }), "fail2ban.jails.ssh-iptables.maxretry: Too small"],
    ["bantime word", withJail("mor_ddos", { bantime: "forever" }), 'fail2ban.jails.mor_ddos.bantime: "forever" is not a duration'],
    [
        "forgeable bantime word",
        minimalRaw({ fail2ban: { forgeableBantime: "forever" } }),
        'fail2ban.forgeableBantime: "forever" is not a duration or "permanent"',
    ],
    [
        "recidive permanent over bounded forgeable bans",
        minimalRaw({ fail2ban: { recidive: { bantime: "permanent" } } }),
        'fail2ban.recidive.bantime: "permanent" would ban forged sources permanently',
    ],
    ["unknown jail", minimalRaw({ fail2ban: { jails: { "asterisk-guest": {} } } }), "fail2ban.jails.asterisk-guest: is not a known key"],
    ["log path relative", withJail("mor_api", { logpath: ["log/api.log"] }), 'fail2ban.jails.mor_api.logpath[0]: "log/api.log" is not an absolute log path'],
    ["failregex without host", withJail("mor_api", { failregex: ["API failure"] }), 'fail2ban.jails.mor_api.failregex[0]: "API failure" names no offender'],
    [
        "failregex with a newline",
        withJail("mor_api", { failregex: ["<HOST>\n[sshd]\nenabled = false"] }),
        'fail2ban.jails.mor_api.failregex[0]: "<HOST>\\n[sshd]\\nenabled = false" contains a line break',
    ],
    [
        "ignoreip not an address",
        minimalRaw({ fail2ban: { ignoreip: ["192.0.2.1,192.0.2.2"] } }),
        'fail2ban.ignoreip[0]: "192.0.2.1,192.0.2.2" is not an address, CIDR or host name',
    ],
    ["MaxAuthTries too low", minimalRaw({ sshd: { maxAuthTries: 1 } }), "sshd.maxAuthTries: Too small"],
    ["allowUsers without the connection user", minimalRaw({ sshd: { allowUsers: ["admin"] } }), 'sshd.allowUsers: does not include the connection user "root"'],
    ["MaxStartups garbage", minimalRaw({ sshd: { maxStartups: "10 30" } }), 'sshd.maxStartups: "10 30" is not a MaxStartups value'],
    ["cipher with a newline", minimalRaw({ sshd: { ciphers: ["aes256-gcm@openssh.com\nPasswordAuthentication yes"] } }), "sshd.ciphers[0]:"],
    [
        "apache without server name",
        minimalRaw({ apache: { enabled: true, certificate: certificateFor("mor.example.com").certificate } }),
        "apache.serverName: is required when apache is enabled",
    ],
    [
        "apache without certificate",
        minimalRaw({ apache: { enabled: true, serverName: "mor.example.com" } }),
        "apache.certificate: is required when apache is enabled",
    ],
    [
        "certificate for another name",
        minimalRaw({
            apache: { enabled: true, serverName: "gui.example.org", certificate: certificateFor("mor.example.com").certificate },
            tlsKey: { secretRef: "tlsKey" },
        }),
        'apache.certificate: is not valid for serverName "gui.example.org"',
    ],
    [
        "certificate that is not PEM",
        minimalRaw({ apache: { enabled: true, serverName: "mor.example.com", certificate: "hello" } }),
        "apache.certificate: is not a PEM certificate chain",
    ],
    [
        "apache without key",
        minimalRaw({ apache: { enabled: true, serverName: "mor.example.com", certificate: certificateFor("mor.example.com").certificate } }),
        "tlsKey: is required when apache is enabled",
    ],
    ["TLS key in plain text", minimalRaw({ tlsKey: "-----BEGIN PRIVATE KEY-----" }), "tlsKey: must be set as a secret"],
    ["HSTS max-age negative", minimalRaw({ apache: { enabled: false, hsts: { maxAge: -1 } } }), "apache.hsts.maxAge: Too small"],
    ["knock sequence too short", knocking({ sequence: [7001, 8002] }), "knocking.sequence: has 2 ports; a knock sequence needs at least 3"],
    ["knock port is the SSH port", knocking({ sequence: [7001, 22, 9003] }), "knocking.sequence[1]: 22/tcp clashes with the ssh service port"],
    [
        "knock port inside the RTP range",
        knocking({ sequence: [7001, 8002, 15000], protocol: "udp" }),
        "knocking.sequence[2]: 15000/udp clashes with the rtp service port",
    ],
    ["knock port twice", knocking({ sequence: [7001, 8002, 7001] }), "knocking.sequence[2]: 7001 appears twice in the sequence"],
    ["SPA without keys", minimalRaw({ knocking: { mode: "spa" } }), "knockKey: and knockHmacKey are required for knocking.mode spa"],
    [
        "SPA keys twice",
        minimalRaw({ knocking: { mode: "spa", spa: { keyFile: "/etc/keys" } }, knockKey: { secretRef: "a" }, knockHmacKey: { secretRef: "b" } }),
        "knocking.spa.keyFile: is set as well as the secrets knockKey and knockHmacKey",
    ],
    ["SPA on RHEL", minimalRaw({ os: "rhel", knocking: { mode: "spa", spa: { keyFile: "/etc/keys" } } }), "knocking.mode: spa needs Debian's fwknop-server"],
    [
        "SPA guarding SSH of a host reached over IPv6",
        minimalRaw({ connection: { address: "2001:db8:2::11", hostKey: HOST_KEY }, knocking: { mode: "spa", spa: { keyFile: "/etc/keys" } } }),
        "knocking.guards: guards ssh in spa mode while connection.address is IPv6",
    ],
    ["unknown knocking mode", minimalRaw({ knocking: { mode: "fwknop" } }), 'knocking.mode: "fwknop" is not a knocking mode (off, sequence or spa)'],
    ["knocking guards a closed service", knocking({ guards: ["ami"] }), 'knocking.guards[0]: "ami" is closed in firewall.services'],
    ["unknown top-level key", minimalRaw({ firewal: {} }), "firewal: is not a known key"],
];

describe("stack config schema", () => {
    it("has at least 25 bad configs in its table", () => assert.ok(badConfigs.length >= 25));

    for (const [what, raw, expected] of badConfigs) {
        it(`refuses ${what}`, () => {
            const problems = problemsOf(raw);
            assert.ok(
                problems.some((problem) => problem.startsWith(expected)),
                `expected a problem starting with\n  ${expected}\ngot\n  ${problems.join("\n  ")}`,
            );
        });
    }

    it("reports every problem at once", () => {
        const problems = problemsOf({ ...withFirewall({ trusted: ["10.0.0.0/33"] }), os: "solaris", sshd: { maxAuthTries: 0 } });
        assert.deepEqual(problems.map((problem) => problem.split(":")[0]).sort(), ["firewall.trusted[0]", "os", "sshd.maxAuthTries"]);
    });

    it("fills every default from the guide", () => {
        const config = minimalConfig();
        assert.equal(config.connection.port, 22);
        assert.equal(config.connection.sudo, false);
        assert.equal(config.firewall.services.ssh, undefined, "the catalogue default (trusted) applies");
        assert.equal(config.firewall.sshRateLimit.perMinute, 20);
        assert.equal(config.fail2ban.recidive.enabled, true);
        assert.equal(config.fail2ban.forgeableBantime, 3600);
        assert.equal(config.fail2ban.recidive.bantime, 604800, "bounded: recidive also counts bans of forged sources");
        assert.equal(config.sshd.maxAuthTries, 6);
        assert.equal(config.knocking.mode, "off");
        assert.equal(config.apache.enabled, false);
    });

    it("turns durations into seconds", () => {
        const config = minimalConfig({ fail2ban: { jails: { "ssh-iptables": { findtime: "10m", bantime: "1h" }, mor_api: { bantime: "permanent" } } } });
        assert.equal(config.fail2ban.jails["ssh-iptables"]?.findtime, 600);
        assert.equal(config.fail2ban.jails["ssh-iptables"]?.bantime, 3600);
        assert.equal(config.fail2ban.jails.mor_api?.bantime, "permanent");
        assert.equal(minimalConfig({ fail2ban: { forgeableBantime: "1d" } }).fail2ban.forgeableBantime, 86400);
        const guide = minimalConfig({ fail2ban: { forgeableBantime: "permanent", recidive: { bantime: "permanent" } } }).fail2ban;
        assert.deepEqual(
            [guide.forgeableBantime, guide.recidive.bantime],
            ["permanent", "permanent"],
            "the guide's permanent bans, recidive's too, when asked for",
        );
    });

    it("uses sudo for a user that is not root", () => {
        assert.equal(minimalConfig({ connection: { address: "192.0.2.11", hostKey: HOST_KEY, user: "deploy" } }).connection.sudo, true);
    });
});

describe("values cannot smuggle text into configs or commands", () => {
    // Every free-text field type, fed every character that could end a line, a word or a quote,
    // or start a command. None may be accepted.
    const payloads = ["\nPasswordAuthentication yes", "x y", "x'y", 'x"y', "x;reboot", "x$(reboot)", "x`reboot`", "x|sh", "x&", "x>y", "x\\y", "x\ty", "x\ry"];
    const fields: [string, (value: string) => Record<string, unknown>][] = [
        ["connection.address", (value) => withConnection({ address: `192.0.2.1${value}` })],
        ["connection.user", (value) => withConnection({ user: `root${value}` })],
        ["connection.privateKeyFile", (value) => withConnection({ privateKeyFile: `/root/key${value}` })],
        ["firewall.trusted", (value) => withFirewall({ trusted: [`198.51.100.10${value}`] })],
        ["firewall.extraRules.name", (value) => withFirewall({ extraRules: [{ name: `r${value}`, protocol: "tcp", ports: 1, exposure: "public" }] })],
        ["firewall.services.rtp.ports", (value) => withFirewall({ services: { rtp: { ports: `10000${value}` } } })],
        ["fail2ban.ignoreip", (value) => minimalRaw({ fail2ban: { ignoreip: [`192.0.2.1${value}`] } })],
        ["fail2ban.jails.*.logpath", (value) => withJail("mor_api", { logpath: [`/var/log/x${value}`] })],
        ["fail2ban.jails.*.bantime", (value) => withJail("mor_api", { bantime: `10m${value}` })],
        ["sshd.allowUsers", (value) => minimalRaw({ sshd: { allowUsers: ["root", `admin${value}`] } })],
        ["sshd.maxStartups", (value) => minimalRaw({ sshd: { maxStartups: `10:30:60${value}` } })],
        ["sshd.ciphers", (value) => minimalRaw({ sshd: { ciphers: [`aes256-ctr${value}`] } })],
        ["apache.serverName", (value) => minimalRaw({ apache: { enabled: false, serverName: `mor.example.com${value}` } })],
        ["apache.documentRoot", (value) => minimalRaw({ apache: { enabled: false, documentRoot: `/var/www${value}` } })],
    ];
    for (const [field, make] of fields) {
        it(`refuses shell and config metacharacters in ${field}`, () => {
            for (const payload of payloads) {
                const problems = problemsOf(make(payload));
                assert.ok(problems.length > 0, `${field} accepted ${JSON.stringify(payload)}`);
            }
        });
    }

    it("refuses a newline in a failregex but keeps regex syntax", () => {
        assert.ok(problemsOf(withJail("mor_api", { failregex: ["^<HOST> x\nfoo"] })).length > 0);
        const config = minimalConfig({ fail2ban: { jails: { mor_api: { failregex: ['^<HOST> .* "(?:GET|POST) /billing/api/'] } } } });
        assert.equal(config.fail2ban.jails.mor_api?.failregex?.length, 1);
    });

    it("rewrites a certificate chain from its parsed form, dropping anything else", () => {
        const { certificate } = certificateFor("mor.example.com");
        const problems = problemsOf(
            minimalRaw({ apache: { enabled: true, serverName: "mor.example.com", certificate: `${certificate}\nSSLEngine off\n`, tlsKey: undefined } }),
        );
        assert.ok(problems.some((problem) => problem.startsWith("apache.certificate: is not a PEM certificate chain")));
    });
});

describe("stack files", () => {
    it("refuses a stack name taken from a file's name that could carry text into a host script (a newline, a space)", () => {
        const dir = mkdtempSync(join(tmpdir(), "morh-name-"));
        try {
            const path = join(dir, "Pulumi.a\nid>x #.yaml");
            writeFileSync(path, "config: {}\n");
            assert.throws(
                () => loadEnvironment({ file: path }),
                (error: unknown) =>
                    error instanceof ConfigError && /the stack name "a\nid>x #" taken from the file's name is not a stack name/.test(error.message),
            );
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("reads secure values as references and never keeps their ciphertext", () => {
        const { certificate } = certificateFor("mor.example.com");
        const text = [
            "config:",
            "  aws:region: eu-west-1",
            "  mor-harden:connection: { address: 192.0.2.11, hostKey: '" + HOST_KEY + "' }",
            "  mor-harden:os: rhel",
            "  mor-harden:firewall: { trusted: [198.51.100.10], trustKolmisoftSupport: false }",
            "  mor-harden:tlsKey: { secure: v1:ciphertext }",
            "  mor-harden:apache:",
            "    serverName: mor.example.com",
            "    certificate: |",
            ...certificate
                .trim()
                .split("\n")
                .map((line) => `      ${line}`),
        ].join("\n");
        const [{ config }] = parseStackDocument(text, "Pulumi.test.yaml", "test").hosts;
        assert.deepEqual(config.tlsKey, { secretRef: "tlsKey" });
        assert.ok(!JSON.stringify(config).includes("ciphertext"));
    });

    it("refuses a secure value under a key that is not a secret", () => {
        assert.throws(
            () => parseStackDocument("config:\n  mor-harden:os: { secure: v1:x }\n", "Pulumi.test.yaml", "test"),
            (error: ConfigError) =>
                error.problems[0].startsWith("os: is a secret, but only privateKey, privateKeyPassphrase, tlsKey, knockKey, knockHmacKey are read as secrets"),
        );
    });

    it("names the file in a YAML error", () => {
        assert.throws(
            () => parseStackDocument("config: [", "Pulumi.broken.yaml", "broken"),
            (error: ConfigError) => error.message.startsWith("Pulumi.broken.yaml: 1 problem") && error.problems[0].startsWith("is not YAML"),
        );
    });
});

describe("trusted host names", () => {
    it("resolves them by family, and names the key of one that does not resolve", async () => {
        const { resolveSources } = await import("../../src/config/resolve");
        const { tableResolver } = await import("../helpers/fixtures");
        const resolved = await resolveSources(minimalConfig({ firewall: { trusted: ["workstation.lab.example"] } }), tableResolver);
        assert.deepEqual(resolved["workstation.lab.example"], { v4: ["198.51.100.10"], v6: ["2001:db8:51::10"] });
        await assert.rejects(
            resolveSources(
                minimalConfig({ firewall: { trusted: ["198.51.100.10"], trustKolmisoftSupport: false }, fail2ban: { ignoreip: ["nowhere.example.net"] } }),
                tableResolver,
            ),
            (error: ConfigError) => error.problems[0] === 'fail2ban.ignoreip[0]: host name "nowhere.example.net" does not resolve (ENOTFOUND)',
        );
    });
});
