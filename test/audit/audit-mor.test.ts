// mor-harden audit on a MOR-profile lab host with old MOR's fail2ban files put on it as MOR's own
// scripts put them (test/audit/samples/mor-fail2ban, from pionert/mor): its asterisk.conf over
// fail2ban's (fail2ban_patches.sh), its sendmail-banned action in ast-cli-attck's section, its
// global_grid_defense cron job and script. Audited before any apply, then after mor-harden's
// apply: what goes, what stays, and why. The lab runs no cron daemon: the job never runs.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { needs } from "../helpers/needs";
import { labExec } from "../../src/lab/lab";
import type { AuditFinding } from "../../src/audit/checks";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, type TestLab } from "../helpers/lab";
import { CLI_FILE as CLI } from "../../src/cli/bin";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

const SAMPLES = join(__dirname, "..", "..", "..", "test", "audit", "samples", "mor-fail2ban");

let lab: TestLab;
before(async () => {
    lab = await startTestLab(1, { profile: "mor" });
});
after(() => lab?.stop());

/** MOR's files, written on the host through base64 (no quoting of their text). */
const MOR_FILES: [sample: string, path: string, mode: string][] = [
    ["asterisk.conf", "/etc/fail2ban/filter.d/asterisk.conf", "644"],
    ["sendmail-banned.conf", "/etc/fail2ban/action.d/sendmail-banned.conf", "644"],
    ["global_grid_defense.cron", "/etc/cron.d/global_grid_defense", "644"],
    ["global_grid_defense.sh", "/usr/local/mor/global_grid_defense.sh", "744"],
];

function auditFindings(stack: string): AuditFinding[] {
    const run = labExec(lab.client("workstation"), ["node", CLI, "audit", "--config", stack, "--json"], { timeoutMs: 60_000 });
    const report = JSON.parse(run.stdout) as { hosts: { status: string; reason?: string; findings: AuditFinding[] }[] };
    assert.equal(report.hosts[0].status, "checked", report.hosts[0].reason);
    return report.hosts[0].findings;
}
const evidenceOf = (findings: AuditFinding[], id: string) => findings.filter((finding) => finding.id === id).map((finding) => finding.evidence);

describe("mor-harden audit of a MOR host's own fail2ban", () => {
    let stack: string;

    it("reports MOR's injectable filters, its ban-reporting action, its cron rules per address and usedns, each with file and line", () => {
        const host = lab.host(1);
        for (const [sample, path, mode] of MOR_FILES) {
            const content = Buffer.from(readFileSync(join(SAMPLES, sample))).toString("base64");
            assert.equal(sh(host, `mkdir -p "$(dirname ${path})" && echo ${content} | base64 -d > ${path} && chmod ${mode} ${path}`).code, 0, path);
        }
        // MOR's jail.conf names sendmail-banned under ast-cli-attck's ban action (pionert/mor jail.conf).
        assert.equal(
            sh(
                host,
                `sed -i '/^action   = iptables-allports\\[name=AST_CLI_Attack/a\\           sendmail-banned[name=AST_CLI_Attack]' /etc/fail2ban/jail.conf && grep -c 'sendmail-banned\\[name=AST_CLI_Attack\\]' /etc/fail2ban/jail.conf`,
            ).stdout.trim(),
            "1",
        );
        stack = labStackFile(lab, "audit-mor", { apache: { enabled: false } });
        const findings = auditFindings(stack);
        const injectable = evidenceOf(findings, "fail2ban.filter-injectable");
        assert.ok(
            injectable.some((evidence) =>
                evidence.startsWith(
                    "jail asterisk-iptables, filter asterisk (/etc/fail2ban/filter.d/asterisk.conf:9): NOTICE.* .*: Failed to authenticate user .*@<HOST>.*: takes the address after '@'",
                ),
            ),
            injectable.join("\n"),
        );
        for (const jail of ["ast-cli-attck", "asterisk-manager", "ast-hgc-200"])
            assert.ok(
                injectable.some((evidence) => evidence.startsWith(`jail ${jail}, filter `)),
                `${jail}: ${injectable.join("\n")}`,
            );
        assert.deepEqual(evidenceOf(findings, "fail2ban.action-reports-bans"), [
            "jail ast-cli-attck (/etc/fail2ban/jail.conf:" +
                sh(host, "grep -n '^\\[ast-cli-attck\\]' -A4 /etc/fail2ban/jail.conf | grep 'action' | cut -d- -f1").stdout.trim() +
                "): action sendmail-banned requests http://fail2ban.kolmisoft.com/?ip=<ip> on every ban (/etc/fail2ban/action.d/sendmail-banned.conf:7)",
        ]);
        assert.deepEqual(evidenceOf(findings, "fail2ban.cron-iptables-per-address"), [
            `/usr/local/mor/global_grid_defense.sh:9 (run by /etc/cron.d/global_grid_defense:2): iptables -A INPUT -s "$ADDRESS_TO_BAN" -j DROP, for each line of a downloaded list`,
        ]);
        const usedns = findings.filter((finding) => finding.id === "fail2ban.usedns");
        assert.equal(usedns.length, 1);
        assert.equal(usedns[0].severity, "low");
        assert.match(usedns[0].evidence, /^usedns = warn \(\/etc\/fail2ban\/jail\.conf:\d+\) for jails /, "Debian's jail.conf says warn");
    });

    it("after mor-harden's apply: the action, usedns and MOR's own filters are gone; what mor-harden's filters still inherit and the cron job stay", () => {
        const applied = applyFromWorkstation(lab, stack, 180_000);
        assert.equal(applied.code, 0, applied.stdout + applied.stderr);
        assert.equal(statuses(applied.report).fail2ban, "applied");
        const findings = auditFindings(stack);
        assert.deepEqual(evidenceOf(findings, "fail2ban.action-reports-bans"), [], "every guide jail names its own actions");
        assert.deepEqual(evidenceOf(findings, "fail2ban.usedns"), [], "jail.d/mor-harden.local: usedns = no");
        assert.equal(evidenceOf(findings, "fail2ban.cron-iptables-per-address").length, 1, "mor-harden leaves cron alone");
        const injectable = evidenceOf(findings, "fail2ban.filter-injectable");
        // Every guide jail reads its mor-harden-<jail> filter now, never MOR's filter by MOR's name.
        for (const evidence of injectable) assert.match(evidence, /^jail [\w-]+, filter mor-harden-[\w-]+ \(/, evidence);
        // mor-harden-asterisk-iptables.local includes asterisk.conf: without patterns of its own it
        // keeps asterisk.conf's, MOR's on this host, and the finding must say so.
        const ownPatterns = /^failregex\s*=/m.test(sh(lab.host(1), "cat /etc/fail2ban/filter.d/mor-harden-asterisk-iptables.local").stdout);
        const inherited = injectable.filter((evidence) =>
            evidence.startsWith("jail asterisk-iptables, filter mor-harden-asterisk-iptables (/etc/fail2ban/filter.d/asterisk.conf:"),
        );
        if (ownPatterns) assert.deepEqual(inherited, []);
        else
            assert.ok(
                inherited.some((evidence) => evidence.includes(".*@<HOST>")),
                `MOR's asterisk.conf patterns reach mor-harden's jail: ${injectable.join("\n")}`,
            );
        // The running fail2ban agrees: the jail's patterns as fail2ban-server holds them.
        const running = sh(lab.host(1), "fail2ban-client get asterisk-iptables failregex", 15_000);
        assert.equal(running.code, 0, running.stderr);
        assert.equal(running.stdout.includes("Failed to authenticate user .*@"), !ownPatterns, running.stdout);
        console.log(`filter findings after the apply:\n${injectable.join("\n")}`);
    });
});
