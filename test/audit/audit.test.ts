// mor-harden audit against lab hosts with MOR-like Asterisk files and MariaDB: mor-1 has every
// problem the audit looks for (weak secrets, guests, insecure=invite, an open AMI, MariaDB on its
// address with remote, anonymous and passwordless root accounts, a self-signed certificate near
// its end, a sudoers grant), mor-2 none. Both are audited before any apply from a stack file with
// only the connection block; then applied and audited again, and mor-2 once more without the rule
// that matches its ban set. No output holds a secret.
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { needs } from "../helpers/needs";
import { stringify } from "yaml";
import { labExec, type ExecResult } from "../../src/lab/lab";
import { labSecrets } from "../../src/lab/voip-files";
import type { AuditFinding, CheckId } from "../../src/audit/checks";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, type TestLab } from "../helpers/lab";
import { CLI_FILE as CLI } from "../../src/cli/bin";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

/** Where the test leaves the HTML report's screenshot, for people to look at. */
const SCREENSHOT = join(tmpdir(), "mor-harden-audit.png");

let lab: TestLab;
before(async () => {
    lab = await startTestLab(2, {
        voip: [
            { secrets: "weak", database: "exposed" },
            { secrets: "strong", database: "loopback" },
        ],
    });
});
after(() => lab?.stop());

interface AuditJson {
    exitCode: number;
    hosts: { host?: string; status: string; reason?: string; findings: AuditFinding[] }[];
}

function audit(args: string[]): ExecResult {
    return labExec(lab.client("workstation"), ["node", CLI, "audit", ...args], { timeoutMs: 60_000 });
}

/** A stack file with nothing but the connection block: hosts mor-harden does not manage. */
function connectionOnlyStack(extraHosts: Record<string, unknown> = {}): string {
    const hosts = Object.fromEntries(lab.state.hosts.map((host) => [host.name, { connection: { address: host.v4, hostKey: host.hostKey } }]));
    const path = join(lab.state.dir, "Pulumi.fleet.yaml");
    const connection = { user: "root", privateKeyFile: lab.state.operatorKey, agent: false, connectTimeout: 5 };
    writeFileSync(
        path,
        stringify({ config: { "mor-harden:os": "debian", "mor-harden:connection": connection, "mor-harden:hosts": { ...hosts, ...extraHosts } } }),
    );
    return path;
}

/** Each secret the hosts hold, as written and as JSON escapes it, and each half of at least 4 characters. */
const secretParts = Object.values({ ...labSecrets.weak, ...labSecrets.strong }).flatMap((secret) => {
    const parts = [secret, secret.slice(0, Math.ceil(secret.length / 2)), secret.slice(Math.floor(secret.length / 2))].filter((part) => part.length >= 4);
    return [...parts, ...parts.map((part) => JSON.stringify(part).slice(1, -1))];
});
function assertNoSecret(format: string, output: string): void {
    for (const part of secretParts) assert.ok(!output.includes(part), `the ${format} output holds "${part}", (part of) a secret`);
}

const idsOf = (findings: AuditFinding[]) => new Set(findings.map((finding) => finding.id));

/** Every id mor-1 must show before any apply, and where each comes from. */
const WEAK_HOST_IDS: CheckId[] = [
    "sip.allowguest",
    "sip.alwaysauthreject",
    "sip.insecure-invite",
    "sip.weak-secret",
    "sip.no-acl",
    "iax.guest",
    "iax.weak-secret",
    "ami.exposed",
    "ami.weak-secret",
    "ami.write-all",
    "mysql.exposed",
    "mysql.remote-account",
    "mysql.anonymous",
    "mysql.root-no-password",
    "tls.expiry",
    "tls.chain",
    "net.exposed",
    "fail2ban.not-running",
    "fail2ban.sudo-root",
    "fail2ban.usedns",
];

describe("mor-harden audit", () => {
    let before: AuditJson;

    it("audits unmanaged hosts from a connection-only stack file: each finding on mor-1, none on mor-2, a host not checked (exit 2)", () => {
        // mor-1's fail2ban stopped: fail2ban.not-running; mor-2's runs without the guide's jails.
        assert.equal(sh(lab.host(1), "fail2ban-client stop >/dev/null").code, 0);
        // A third entry: mor-1 over IPv6 with a host key that is not its own.
        const stack = connectionOnlyStack({ "wrong-key": { connection: { address: lab.host(1).v6, hostKey: lab.host(2).hostKey } } });
        const junit = join(lab.state.dir, "audit.xml");
        const html = join(lab.state.dir, "audit.html");
        const json = audit(["--config", stack, "--json", "--junit", junit, "--html", html]);
        assert.equal(json.code, 2, json.stderr);
        before = JSON.parse(json.stdout) as AuditJson;
        const [weak, strong, wrong] = before.hosts;
        assert.equal(weak.status, "checked");
        const weakIds = idsOf(weak.findings);
        for (const id of WEAK_HOST_IDS) assert.ok(weakIds.has(id), `mor-1 lacks ${id}`);
        const evidence = weak.findings.map((finding) => finding.evidence);
        // Peers from the files (an include, a template) and from MOR's devices table.
        for (const expected of [
            "sip.conf:4: allowguest=yes",
            "sip_custom.conf:6 [pbx-hq]: insecure=port,invite",
            "database table devices, device trunk-db: insecure=port,invite",
            "database table devices, device 2001: secret shorter than 12 characters, no special characters",
            "account 'mor'@'%'",
            "account ''@'localhost'",
            "/etc/sudoers.d/asterisk:1: asterisk may run fail2ban-client as root",
        ]) {
            assert.ok(evidence.includes(expected), `mor-1: no evidence "${expected}" in ${JSON.stringify(evidence, null, 1)}`);
        }
        assert.ok(
            evidence.some((text) => /^mysql: tcp 192\.0\.2\.11:3306 \(mariadbd\), IPv4: accepted from any source/.test(text)),
            "net.exposed names MariaDB",
        );
        assert.equal(strong.status, "checked");
        const strongIds = [...idsOf(strong.findings)];
        // Debian's jail.conf: usedns = warn (fail2ban's default), which resolves names in log lines.
        assert.deepEqual(
            strongIds.filter((id) => id !== "fail2ban.jail-missing"),
            ["fail2ban.usedns"],
            `mor-2: ${JSON.stringify(strong.findings, null, 1)}`,
        );
        assert.match(
            strong.findings.find((finding) => finding.id === "fail2ban.usedns")!.evidence,
            /^usedns = warn \(\/etc\/fail2ban\/jail\.conf:\d+\) for jail sshd$/,
        );
        assert.equal(wrong.status, "error");
        assert.match(wrong.reason ?? "", /host key/i);
        assert.equal(before.exitCode, 2);
        // The private option file's directory is gone from the host.
        assert.equal(sh(lab.host(1), "ls -d /tmp/tmp.* 2>/dev/null").stdout, "");

        const text = audit(["--config", stack]);
        assert.equal(text.code, 2);
        assert.match(text.stdout, /^CRITICAL mysql\.root-no-password: /m);
        assert.match(text.stderr, /\[\d\/3\] fleet\/wrong-key .*NOT CHECKED/);
        for (const [format, output] of [
            ["text", text.stdout],
            ["progress", text.stderr + json.stderr],
            ["JSON", json.stdout],
            ["JUnit", readFileSync(junit, "utf8")],
            ["HTML", readFileSync(html, "utf8")],
        ] as const)
            assertNoSecret(format, output);
    });

    it("renders the HTML report in headless Chromium with no network", () => {
        const html = join(lab.state.dir, "audit.html");
        const png = join(lab.state.dir, "audit.png");
        // In the attacker's namespace: the lab's network only, nothing beyond it.
        const result = sh(
            lab.client("attacker"),
            `chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2400 --screenshot=${png} file://${html} 2>&1`,
            90_000,
        );
        assert.ok(existsSync(png), result.stdout);
        assert.ok(statSync(png).size > 50_000, "a page with tables, not a blank one");
        copyFileSync(png, SCREENSHOT);
        console.log(`screenshot of the HTML report: ${SCREENSHOT}`);
    });

    it("after an apply, the firewall's findings are gone and the jails run; only what mor-harden does not manage stays", () => {
        for (const index of [1, 2]) {
            const stack = labStackFile(lab, `audit-${index}`, { apache: { enabled: false } }, index);
            const applied = applyFromWorkstation(lab, stack, 180_000);
            assert.equal(applied.code, 0, applied.stdout + applied.stderr);
            assert.equal(statuses(applied.report).firewall, "applied");
        }
        assert.equal(sh(lab.host(2), "fail2ban-client set ssh-iptables banip 203.0.113.99 >/dev/null").code, 0);
        const after = JSON.parse(audit(["--config", connectionOnlyStack(), "--json", "--fail-on", "low"]).stdout) as AuditJson;
        const [weak, strong] = after.hosts;
        const weakIds = idsOf(weak.findings);
        for (const gone of ["net.exposed", "fail2ban.not-running", "fail2ban.jail-missing", "fail2ban.usedns"] as const)
            assert.ok(!weakIds.has(gone), `mor-1 still has ${gone}`);
        for (const stays of ["mysql.exposed", "sip.weak-secret", "ami.exposed", "fail2ban.sudo-root"] as const)
            assert.ok(weakIds.has(stays), `mor-1 lost ${stays}`);
        assert.deepEqual(
            strong.findings.map((finding) => `${finding.id}: ${finding.evidence}`),
            ["fail2ban.bans: set morh-ban-ssh-iptables-t-4: 1 address banned"],
        );
        assert.equal(after.exitCode, 1, "mor-1's findings");
        // The single-host form: `mor-harden:connection` with the address, and `mor-harden:os`, nothing else.
        const single = join(lab.state.dir, "Pulumi.mor-2.yaml");
        const connection = { address: lab.host(2).v4, hostKey: lab.host(2).hostKey, user: "root", privateKeyFile: lab.state.operatorKey, agent: false };
        writeFileSync(single, stringify({ config: { "mor-harden:os": "debian", "mor-harden:connection": connection } }));
        const strongOnly = audit(["--config", single, "--fail-on", "low"]);
        assert.equal(strongOnly.code, 0, `info never fails the audit: ${strongOnly.stdout}`);
        assert.match(strongOnly.stdout, /^== mor-2 \(192\.0\.2\.12\): 0 critical, 0 high, 0 medium, 0 low, 1 info$/m);
        // The ban set's rule gone from INPUT (a hand flush): the set's bans enforce nothing.
        assert.equal(
            sh(lab.host(2), "iptables -D INPUT -m set --match-set morh-ban-ssh-iptables-t-4 src -j REJECT --reject-with icmp-port-unreachable").code,
            0,
        );
        const unmatched = JSON.parse(audit(["--config", single, "--json"]).stdout) as AuditJson;
        assert.deepEqual(
            unmatched.hosts[0].findings.filter((finding) => finding.severity !== "info").map((finding) => `${finding.id}: ${finding.evidence}`),
            ["fail2ban.ban-set-unmatched: set morh-ban-ssh-iptables-t-4: 1 address banned, but no rule of INPUT (IPv4) matches the set"],
        );
        assert.equal(unmatched.exitCode, 1);
    });
});
