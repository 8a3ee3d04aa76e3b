// The audit's pure parts on sample files: Asterisk's format, the checks, the live firewall, the
// host script's output, and the reports in every format, which never hold a secret.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ASTERISK_DIR, parseAsteriskConfig, valueOf } from "../../src/audit/asterisk-config";
import { asteriskFindings } from "../../src/audit/asterisk";
import { evaluateFacts } from "../../src/audit/evaluate";
import { acceptedFromAnywhere, banCounts, banSets, parseListeners } from "../../src/audit/firewall";
import { auditHtml } from "../../src/audit/html";
import { aclWiderThan, parseNetwork } from "../../src/audit/networks";
import { passwordWeaknesses } from "../../src/audit/passwords";
import { auditExitCode, auditJson, auditJunit, auditTextReport } from "../../src/audit/report";
import { auditScript, databasePeers, parseAuditOutput, type AuditFacts } from "../../src/audit/script";
import { OPTION_FILE_AWK } from "../../src/config/asterisk-database";
import { fail2banFindings, sudoersFindings, tlsFindings } from "../../src/audit/system";
import type { AuditResult } from "../../src/audit/check";

const SAMPLES = join(__dirname, "..", "..", "..", "test", "audit", "samples");
const sample = (name: string) => readFileSync(join(SAMPLES, name), "utf8");
const asteriskFiles = Object.fromEntries(readdirSync(join(SAMPLES, "asterisk")).map((name) => [`/etc/asterisk/${name}`, sample(`asterisk/${name}`)]));
/** Every secret in the samples: no report may hold one, nor a half of one. */
const SAMPLE_SECRETS = [
    "Sample;Secret#2026x",
    "samplepw7",
    "Tr!unk-Pass-2026",
    "iaxpass1",
    "Mon!tor-Secret-99",
    "qz4411",
    "wqzebrak",
    "Pj$ip-Strong-Pass-201",
    "Hx7-db",
    `Pq9;"W\\x`,
];

const ids = (findings: { id: string }[]) => findings.map((finding) => finding.id).sort();

test("Asterisk's format: comments, block comments, escaped ';', glob includes, templates and (+)", () => {
    const sections = parseAsteriskConfig(asteriskFiles, "/etc/asterisk/sip.conf");
    assert.deepEqual(
        sections.map((section) => section.name),
        ["general", "carrier", "oldpbx", "office-template", "101", "102"],
    );
    const general = sections[0];
    assert.equal(valueOf(general, "allowguest"), "yes", "the block comment's allowguest=no is not read");
    const device = sections.find((section) => section.name === "101")!;
    assert.equal(valueOf(device, "secret"), "Sample;Secret#2026x");
    assert.equal(valueOf(device, "host"), "dynamic", "inherited from the template");
    assert.equal(device.entries.filter((entry) => entry.key === "permit").length, 1);
    assert.equal(
        valueOf(
            sections.find((section) => section.name === "102"),
            "context",
        ),
        "internal",
        "(+) adds to the earlier section",
    );
    assert.equal(sections.find((section) => section.name === "carrier")!.file, "/etc/asterisk/sip_trunks.conf");
});

test("the guide's password rules name what a secret breaks", () => {
    assert.deepEqual(passwordWeaknesses("Sample;Secret#2026x"), []);
    assert.deepEqual(passwordWeaknesses("samplepw7"), ["shorter than 12 characters", "no special characters"]);
    assert.deepEqual(passwordWeaknesses("abcdefghijkl!"), ["no digits"]);
    assert.deepEqual(passwordWeaknesses(""), ["no secret at all"]);
});

test("networks and ACLs: masks, prefixes, and what an ACL lets in beyond the trusted sources", () => {
    assert.deepEqual(parseNetwork("198.51.100.0/255.255.255.0"), parseNetwork("198.51.100.7/24"));
    assert.equal(parseNetwork("2001:db8::1/64")?.prefix, 64);
    assert.equal(parseNetwork("gui.example.com"), undefined);
    const trusted = [parseNetwork("198.51.100.0/24")!];
    assert.deepEqual(aclWiderThan([], trusted), ["anywhere (no deny of all addresses)"]);
    assert.deepEqual(
        aclWiderThan(
            [
                { kind: "deny", value: "0.0.0.0/0.0.0.0" },
                { kind: "permit", value: "198.51.100.7" },
                { kind: "permit", value: "127.0.0.1" },
            ],
            trusted,
        ),
        [],
    );
    assert.deepEqual(
        aclWiderThan(
            [
                { kind: "deny", value: "0.0.0.0/0" },
                { kind: "permit", value: "203.0.113.0/24" },
            ],
            trusted,
        ),
        ["203.0.113.0/24"],
    );
});

test("Asterisk findings from the sample files and a realtime table", () => {
    const database = {
        table: "devices",
        read: true,
        peers: [
            { name: "3001", secret: "Hx7-db", insecure: null, host: "dynamic", type: "friend", context: "mor_local", permit: null, deny: null },
            {
                name: "3002",
                secret: "Db-Strong-Secret-3002",
                insecure: "port",
                host: "dynamic",
                type: "friend",
                context: "mor_local",
                permit: "198.51.100.0/255.255.255.0",
                deny: "0.0.0.0/0.0.0.0",
            },
        ],
    };
    const findings = asteriskFindings(asteriskFiles, database, [parseNetwork("198.51.100.0/24")!]);
    const evidence = (id: string) => findings.filter((finding) => finding.id === id).map((finding) => finding.evidence);
    assert.deepEqual(evidence("sip.allowguest").sort(), [
        "pjsip.conf:1 [anonymous]: a PJSIP endpoint named anonymous takes calls from anyone",
        "sip.conf:4: allowguest=yes",
    ]);
    assert.deepEqual(evidence("sip.alwaysauthreject"), ["sip.conf:5: alwaysauthreject=no"]);
    assert.deepEqual(evidence("sip.insecure-invite"), ["sip_trunks.conf:1 [carrier]: insecure=port,invite", "sip_trunks.conf:7 [oldpbx]: insecure=very"]);
    assert.deepEqual(evidence("sip.weak-secret"), [
        "sip.conf:20 [102]: secret shorter than 12 characters, no special characters",
        "database table devices, device 3001: secret shorter than 12 characters",
        "pjsip.conf:5 [auth-200]: password shorter than 12 characters, no digits, no special characters",
    ]);
    assert.deepEqual(evidence("sip.no-acl"), [
        "sip.conf:20 [102]: host=dynamic, no permit or deny",
        "database table devices, device 3001: host=dynamic, no permit or deny",
    ]);
    assert.deepEqual(evidence("iax.guest"), ["iax.conf:4 [guest]: type=user with no secret takes calls from anyone"]);
    assert.deepEqual(evidence("iax.weak-secret"), ["iax.conf:8 [branch]: secret shorter than 12 characters, no special characters"]);
    assert.deepEqual(evidence("ami.exposed"), ["manager.conf:12 [crm]: bindaddr=0.0.0.0, permits 0.0.0.0/0.0.0.0"], "monitor permits only a trusted address");
    assert.deepEqual(evidence("ami.weak-secret"), ["manager.conf:12 [crm]: secret shorter than 12 characters, no special characters"]);
    assert.deepEqual(evidence("ami.write-all"), ["manager.conf:12 [crm]: write=system"]);
});

test("modules.conf's noload turns a channel's checks off; a missing file adds nothing", () => {
    const withoutIax = { ...asteriskFiles, "/etc/asterisk/modules.conf": "[modules]\nnoload => chan_iax2.so\n" };
    assert.equal(asteriskFindings(withoutIax, undefined, []).filter((finding) => finding.id.startsWith("iax.")).length, 0);
    assert.deepEqual(asteriskFindings({}, undefined, []), []);
});

test("the live firewall: what accepts a new connection from any source", () => {
    const open = sample("iptables-open.txt");
    assert.equal(acceptedFromAnywhere(open, "tcp", 3306), "INPUT's policy ACCEPT");
    assert.equal(acceptedFromAnywhere(open, "tcp", 5038), undefined, "only 198.51.100.7, then DROP");
    assert.equal(acceptedFromAnywhere("", "tcp", 3306), "no firewall rules loaded");
    const hardened = sample("iptables-hardened.txt");
    assert.equal(acceptedFromAnywhere(hardened, "tcp", 3306), undefined, "trusted sources only");
    assert.equal(acceptedFromAnywhere(hardened, "tcp", 22), undefined, "behind a knock");
    assert.match(acceptedFromAnywhere(hardened, "udp", 5060)!, /--dport 5060 -j ACCEPT/);
    assert.match(acceptedFromAnywhere(hardened, "tcp", 443)!, /hashlimit/, "a rate limit still accepts");
    assert.deepEqual(banCounts(open), { "f2b-ASTERISK": 2 });
});

test("listeners and exposures: never-public services beyond loopback, judged per family", () => {
    const listeners = parseListeners(sample("ss.txt"));
    assert.deepEqual(listeners[0], { protocol: "tcp", address: "192.0.2.11", port: 3306, process: "mariadbd" });
    const facts: AuditFacts = {
        now: 0,
        files: {},
        rootWithoutPassword: false,
        sockets: sample("ss.txt"),
        rules: { v4: sample("iptables-open.txt"), v6: sample("iptables-hardened.txt") },
        sets: "",
        certificates: [],
        hostFiles: {},
        fail2banThreads: [],
    };
    const exposed = evaluateFacts(facts, [])
        .filter((finding) => finding.id === "net.exposed")
        .map((finding) => finding.evidence);
    assert.deepEqual(exposed, [
        "mysql: tcp 192.0.2.11:3306 (mariadbd), IPv4: accepted from any source by INPUT's policy ACCEPT",
        "radius: udp 0.0.0.0:1812 (radiusd), IPv4: accepted from any source by INPUT's policy ACCEPT",
    ]);
});

test("certificates: expired is critical, under 30 days high, a chain that does not verify medium; no TLS at all", () => {
    const dir = mkdtempSync(join(tmpdir(), "mor-harden-audit-"));
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
            "100",
            "-subj",
            "/CN=gui.example.com",
            "-keyout",
            join(dir, "key"),
            "-out",
            join(dir, "crt"),
        ],
        { stdio: "ignore" },
    );
    // The file as a host may hold it: the key too, which the host script never sends.
    const pem = readFileSync(join(dir, "crt"), "utf8");
    rmSync(dir, { recursive: true, force: true });
    const validTo = Date.parse(new X509Certificate(pem).validTo) / 1000;
    const day = 86_400;
    // The facts of a host that printed nothing: every field empty.
    const base: AuditFacts = parseAuditOutput("");
    const graded = (now: number, verify = "/etc/ssl/gui.pem: OK\n") =>
        tlsFindings({ ...base, now, certificates: [{ path: "/etc/ssl/gui.pem", pem, verify }] }, []).map(
            (finding) => `${finding.id} ${finding.severity}: ${finding.evidence}`,
        );
    assert.match(graded(validTo + day).join(), /^tls.expiry critical: \/etc\/ssl\/gui.pem \(CN=gui.example.com\): expired on /);
    assert.match(graded(validTo - 10 * day).join(), /^tls.expiry high: .*, in 10 days$/);
    assert.deepEqual(graded(validTo - 60 * day), []);
    assert.deepEqual(
        graded(
            validTo - 60 * day,
            "CN = gui.example.com\nerror 20 at 0 depth lookup: unable to get local issuer certificate\nerror /etc/ssl/gui.pem: verification failed\n",
        ),
        ["tls.chain medium: /etc/ssl/gui.pem (CN=gui.example.com): unable to get local issuer certificate"],
    );
    assert.deepEqual(
        tlsFindings({ ...base, certificates: [{ path: "/etc/ssl/x.pem", pem: "", verify: "" }] }, []).map((finding) => finding.evidence),
        ["/etc/ssl/x.pem: not a readable certificate"],
    );
    const web = parseListeners(sample("ss.txt"));
    assert.deepEqual(
        tlsFindings(base, web).map((finding) => finding.id),
        ["tls.missing"],
    );
});

test("sudoers: fail2ban-client for a user other than root, directly or through a Cmnd_Alias", () => {
    const findings = sudoersFindings({ "/etc/sudoers": sample("sudoers") });
    assert.deepEqual(
        findings.map((finding) => finding.evidence),
        ["/etc/sudoers:6: asterisk may run fail2ban-client as root", "/etc/sudoers:7: apache may run fail2ban-client as root"],
    );
});

test("the host script is one brace group sh accepts, and its output parses into facts", () => {
    const script = auditScript();
    assert.match(script, /^\{\nexec <\/dev\/null\n/);
    execFileSync("sh", ["-n"], { input: script });
    // The database password goes through a private option file, never a command line.
    assert.match(script, /morh_tmp=\$\(mktemp -d\)/);
    assert.match(script, /\(umask 077; awk [\s\S]* > "\$morh_tmp\/client.cnf"\)/);
    assert.match(script, /--defaults-extra-file="\$morh_tmp\/client.cnf"[^\n]*\n\s*rm -rf "\$morh_tmp"/);
    assert.doesNotMatch(script, /--password=[^ ]/);
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    const hex = (text: string) => Buffer.from(text).toString("hex").toUpperCase();
    const rows = `${hex("3001")}\t${hex("Hx7-db")}\tNULL\t${hex("dynamic")}\t${hex("friend")}\t${hex("x")}\tNULL\tNULL\n`;
    const output = [
        `N 1764288000`,
        `F /etc/asterisk/sip.conf ${b64("[general]\n")}`,
        `D devices 0 ${b64(rows)}`,
        `U 0 ${b64(`${hex("mor")}\t${hex("%")}\n\t${hex("localhost")}\n`)}`,
        "R yes",
        `S ${b64(sample("ss.txt"))}`,
        `I4 ${b64("*filter\n")}`,
        "I6 ",
        `J ${b64("fail2ban-server\nf2b/f.ssh-iptab\n")}`,
        `C /etc/ssl/gui.pem ${b64("-----BEGIN CERTIFICATE-----\n")} ${b64("OK\n")}`,
    ].join("\n");
    const facts = parseAuditOutput(output);
    assert.equal(facts.now, 1764288000);
    assert.equal(facts.files["/etc/asterisk/sip.conf"], "[general]\n");
    assert.deepEqual(facts.database?.peers[0], {
        name: "3001",
        secret: "Hx7-db",
        insecure: null,
        host: "dynamic",
        type: "friend",
        context: "x",
        permit: null,
        deny: null,
    });
    assert.deepEqual(facts.accounts?.rows, [
        { user: "mor", host: "%" },
        { user: "", host: "localhost" },
    ]);
    assert.equal(facts.rootWithoutPassword, true);
    assert.deepEqual(facts.fail2banThreads, ["fail2ban-server", "f2b/f.ssh-iptab"]);
    assert.equal(facts.certificates[0].path, "/etc/ssl/gui.pem");
});

test("the database's option file is private and removed even when the script dies mid-query (sh and bash)", () => {
    const piece = databasePeers.join("\n");
    assert.match(
        piece,
        /trap 'rm -rf "\$morh_tmp"' EXIT; trap 'exit 129' HUP INT TERM PIPE\n\s*if morh_tmp=\$\(mktemp -d\)/,
        "the trap is set before the file exists",
    );
    assert.match(piece, /\(umask 077; awk /);
    const work = mkdtempSync(join(tmpdir(), "mor-harden-audit-db-"));
    try {
        mkdirSync(join(work, "asterisk"));
        writeFileSync(join(work, "asterisk", "extconfig.conf"), "sippeers => mysql,general,devices\n");
        copyFileSync(join(SAMPLES, "res_config_mysql.conf"), join(work, "asterisk", "res_config_mysql.conf"));
        // The host's client, standing in: notes the option file's mode, then either fails or has
        // the script killed (SIGTERM to its shell, as a lost session's end would).
        const client = join(work, "mariadb");
        writeFileSync(client, `#!/bin/sh\nstat -c %a "\${1#--defaults-extra-file=}" > "$WORK/mode"\n[ "$DIE" = yes ] && kill -TERM "$SCRIPT_SHELL"\nexit 1\n`);
        chmodSync(client, 0o755);
        const piecePath = piece.split(ASTERISK_DIR).join(join(work, "asterisk"));
        for (const shell of ["sh", "bash"]) {
            for (const die of [false, true]) {
                const scratch = join(work, `tmp-${shell}-${die}`);
                mkdirSync(scratch);
                const run = spawnSync(shell, ["-c", `SCRIPT_SHELL=$$; export SCRIPT_SHELL; morh_sql=${client}\n${piecePath}\necho after`], {
                    encoding: "utf8",
                    timeout: 30_000,
                    env: { PATH: process.env.PATH, TMPDIR: scratch, WORK: work, DIE: die ? "yes" : "no" },
                });
                const what = `${shell}, ${die ? "killed" : "the client failed"}`;
                assert.equal(readFileSync(join(work, "mode"), "utf8").trim(), "600", what);
                assert.deepEqual(readdirSync(scratch), [], `${what}: nothing left in TMPDIR`);
                if (die) assert.equal(run.stdout, "", `${what}: the script ended there`);
                else assert.match(run.stdout, /^D devices 1 \nafter\n$/, what);
                rmSync(join(work, "mode"));
            }
        }
    } finally {
        rmSync(work, { recursive: true, force: true });
    }
});

test("res_config_mysql.conf becomes a MySQL option file: its section only, ';' escapes and quotes kept", () => {
    const optionFile = execFileSync("awk", ["-v", "section=general", OPTION_FILE_AWK, join(SAMPLES, "res_config_mysql.conf")], { encoding: "utf8" });
    assert.equal(optionFile, '[client]\nhost="localhost"\nuser="mor"\npassword="Pq9;\\"W\\\\x"\nsocket="/run/mysqld/mysqld.sock"\n[mysql]\ndatabase="mor"\n');
});

test("reports in text, JSON, JUnit and HTML hold no secret, not even half of one; exit codes follow --fail-on", () => {
    const facts: AuditFacts = {
        now: 0,
        files: { ...asteriskFiles, "/etc/sudoers": sample("sudoers") },
        rootWithoutPassword: true,
        sockets: sample("ss.txt"),
        rules: { v4: "", v6: "" },
        sets: "",
        certificates: [],
        hostFiles: {},
        database: {
            table: "devices",
            read: true,
            peers: [{ name: "3001", secret: "Hx7-db", insecure: null, host: "dynamic", type: "friend", context: "x", permit: null, deny: null }],
        },
    };
    const result: AuditResult = {
        stack: "production",
        host: "mor-1",
        address: "203.0.113.10",
        status: "checked",
        findings: evaluateFacts(facts, []),
        roundTrips: 1,
        seconds: 0.5,
    };
    const down: AuditResult = {
        stack: "production",
        host: "mor-2",
        address: "203.0.113.11",
        status: "error",
        reason: "connect ETIMEDOUT",
        findings: [],
        roundTrips: 0,
        seconds: 5,
    };
    assert.ok(result.findings.length > 20);
    const outputs = {
        text: auditTextReport([result, down]),
        json: auditJson([result, down], "high"),
        junit: auditJunit([result, down], "high"),
        html: auditHtml([result, down], new Date(0)),
    };
    for (const [format, output] of Object.entries(outputs)) {
        for (const secret of SAMPLE_SECRETS) {
            const halves = [secret, secret.slice(0, Math.ceil(secret.length / 2)), secret.slice(Math.floor(secret.length / 2))].filter(
                (part) => part.length >= 3,
            );
            for (const part of halves) assert.ok(!output.includes(part), `${format} holds "${part}" of a secret`);
        }
    }
    assert.match(outputs.junit, /<testcase classname="mor-harden.audit.production\/mor-1 \(203.0.113.10\)" name="sip.weak-secret"><failure/);
    assert.match(outputs.html, /<h3>Passwords<\/h3>/);
    assert.doesNotMatch(outputs.html, /<script|https?:\/\//);
    assert.equal(auditExitCode([result, down], "high"), 2);
    assert.equal(auditExitCode([result], "critical"), 1);
    const mild: AuditResult = { ...result, findings: result.findings.filter((finding) => finding.severity === "medium" || finding.severity === "info") };
    assert.equal(auditExitCode([mild], "high"), 0);
    assert.equal(auditExitCode([mild], "medium"), 1);
    assert.equal(auditExitCode([{ ...result, findings: result.findings.filter((finding) => finding.severity === "info") }], "low"), 0);
    assert.deepEqual(ids(JSON.parse(outputs.json).hosts[0].findings), ids(result.findings));
});

test("ban counts from ban sets: mor-harden's and fail2ban's own, nothing else", () => {
    const headers = [
        "Name: morh-ban-ssh-iptables-t-4",
        "Type: hash:ip",
        "Number of entries: 2",
        "",
        "Name: f2b-asterisk",
        "Type: hash:ip",
        "Number of entries: 1",
        "",
        "Name: morh-blocklist-spamhaus-4",
        "Type: hash:net",
        "Number of entries: 900",
        "",
    ].join("\n");
    assert.deepEqual(banSets(headers), [
        { name: "morh-ban-ssh-iptables-t-4", entries: 2 },
        { name: "f2b-asterisk", entries: 1 },
    ]);
});

/** A ban set's header as `ipset list -t` prints it. */
const setHeader = (name: string, family: "inet" | "inet6", entries: number) => [
    `Name: ${name}`,
    "Type: hash:ip",
    "Revision: 6",
    `Header: family ${family} hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5db657f8`,
    "References: 1",
    `Number of entries: ${entries}`,
    "",
];
/** The evidence of each fail2ban.ban-set-unmatched finding, with its severity. */
const unmatchedSets = (rules: { v4: string; v6: string }, sets: string) =>
    fail2banFindings({ now: 0, files: {}, rootWithoutPassword: false, sockets: "", rules, sets, certificates: [], hostFiles: {}, fail2banThreads: [] })
        .filter((finding) => finding.id === "fail2ban.ban-set-unmatched")
        .map((finding) => `${finding.severity}: ${finding.evidence}`);

test("a ban set with entries that no rule of INPUT matches in its own family is reported: it enforces nothing", () => {
    const set = setHeader;
    const sets = [
        ...set("morh-ban-ssh-iptables-t-4", "inet", 2), // matched first in INPUT, as mor-harden's firewall keeps it
        ...set("f2b-sshd", "inet", 1), // fail2ban's iptables-ipset action: its ports only, still a ban
        ...set("f2b-sshd6", "inet6", 1), // matched in a chain INPUT jumps to
        ...set("morh-ban-mor_api-4", "inet", 0), // empty: nothing to enforce
        ...set("morh-ban-mor_api-6", "inet6", 3), // its rule is in the IPv4 table only
        ...set("morh-ban-ast-cli-attck-4", "inet", 1), // negated, a destination match, an ACCEPT, a chain INPUT never reaches
        ...set("morh-blocklist-spamhaus-4", "inet", 900), // not a ban set
    ].join("\n");
    const v4 = [
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":ORPHAN - [0:0]",
        "-A INPUT -m set --match-set morh-ban-ssh-iptables-t-4 src -j REJECT --reject-with icmp-port-unreachable",
        "-A INPUT -m set --match-set morh-ban-mor_api-6 src -j REJECT --reject-with icmp-port-unreachable",
        "-A INPUT -p tcp -m multiport --dports 22 -m set --match-set f2b-sshd src -j REJECT --reject-with icmp-port-unreachable",
        "-A INPUT -m set ! --match-set morh-ban-ast-cli-attck-4 src -j REJECT",
        "-A INPUT -m set --match-set morh-ban-ast-cli-attck-4 dst -j REJECT",
        "-A INPUT -m set --match-set morh-ban-ast-cli-attck-4 src -j ACCEPT",
        "-A FORWARD -m set --match-set morh-ban-ast-cli-attck-4 src -j DROP",
        "-A ORPHAN -m set --match-set morh-ban-ast-cli-attck-4 src -j DROP",
        "COMMIT",
    ].join("\n");
    const v6 = [
        "*filter",
        ":INPUT DROP [0:0]",
        ":f2b-sshd - [0:0]",
        "-A INPUT -p tcp -j f2b-sshd",
        "-A f2b-sshd -m set --match-set f2b-sshd6 src -j DROP",
        "-A f2b-sshd -j RETURN",
        "COMMIT",
    ].join("\n");
    assert.deepEqual(unmatchedSets({ v4, v6 }, sets), [
        "high: set morh-ban-mor_api-6: 3 addresses banned, but no rule of INPUT (IPv6) matches the set",
        "high: set morh-ban-ast-cli-attck-4: 1 address banned, but no rule of INPUT (IPv4) matches the set",
    ]);
});

test("a ban set matched only after INPUT accepts every packet (in INPUT, or in a chain it always jumps to) is reported; an ACCEPT of some packets first is not", () => {
    const sets = [
        ...setHeader("morh-ban-ssh-iptables-t-4", "inet", 1), // after ACCEPTs of established connections and of tcp (a chain INPUT jumps to for tcp only)
        ...setHeader("morh-ban-mor_api-4", "inet", 2), // after a jump of every packet to a chain that accepts every packet
        ...setHeader("morh-ban-mor_api-6", "inet6", 1), // after an ACCEPT of every packet, with a comment
        ...setHeader("morh-ban-ast-cli-attck-6", "inet6", 1), // in a chain INPUT jumps to first: before the ACCEPT
    ].join("\n");
    const v4 = [
        "*filter",
        ":INPUT DROP [0:0]",
        ":TCP-OPEN - [0:0]",
        ":OPEN - [0:0]",
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A INPUT -p tcp -j TCP-OPEN",
        "-A INPUT -m set --match-set morh-ban-ssh-iptables-t-4 src -j REJECT --reject-with icmp-port-unreachable",
        "-A INPUT -j OPEN",
        "-A INPUT -m set --match-set morh-ban-mor_api-4 src -j REJECT --reject-with icmp-port-unreachable",
        "-A TCP-OPEN -j ACCEPT",
        "-A OPEN -j ACCEPT",
        "COMMIT",
    ].join("\n");
    const v6 = [
        "*filter",
        ":INPUT DROP [0:0]",
        ":BANS - [0:0]",
        "-A INPUT -j BANS",
        '-A INPUT -m comment --comment "open to all" -j ACCEPT',
        "-A INPUT -m set --match-set morh-ban-mor_api-6 src -j REJECT --reject-with icmp6-port-unreachable",
        "-A BANS -m set --match-set morh-ban-ast-cli-attck-6 src -j DROP",
        "COMMIT",
    ].join("\n");
    assert.deepEqual(unmatchedSets({ v4, v6 }, sets), [
        "high: set morh-ban-mor_api-4: 2 addresses banned, but every packet is accepted (-A OPEN -j ACCEPT) before a rule of INPUT (IPv4) matches the set",
        'high: set morh-ban-mor_api-6: 1 address banned, but every packet is accepted (-A INPUT -m comment --comment "open to all" -j ACCEPT) before a rule of INPUT (IPv6) matches the set',
    ]);
});
