// How fail2ban takes mor-harden's files, from the states a host is in before mor-harden: a stock
// Debian host (fail2ban running Debian's own sshd jail, which ssh-iptables replaces), MOR's own
// jails with their iptables actions, and a fail2ban transaction rolled back on a stock host.
// The switch restarts the jails in the running server (`reload --restart`), where a plain reload
// would join the removed sshd jail's idle threads (up to seconds) or never start the ipset action
// in MOR's jails; a rollback or a later change must not wait for sets the restored files never make.
import assert from "node:assert/strict";
import { needs } from "../helpers/needs";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, type CliRun, type TestLab } from "../helpers/lab";
import type { LabHost } from "../../src/lab/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const stock = () => lab.host(1);
const failing = () => lab.host(2);
const mor = () => lab.host(3);
const undone = () => lab.host(4);
const operators = () => lab.host(5);

before(async () => {
    lab = await startTestLab(5, { profile: ["plain", "plain", "mor", "plain", "plain"] });
});
after(() => lab?.stop());

const serverPid = (host: LabHost) => sh(host, "cat /run/fail2ban/fail2ban.pid").stdout.trim();
const runningJails = (host: LabHost) =>
    (/Jail list:\s*(.*)/.exec(sh(host, "fail2ban-client status", 15_000).stdout)?.[1] ?? "")
        .split(",")
        .map((jail) => jail.trim())
        .filter(Boolean)
        .sort();
/** mor-harden's ban sets (banSets: morh-ban-<jail>[-t]-<family>). */
const ourSets = (host: LabHost) =>
    sh(host, "ipset list -n")
        .stdout.split("\n")
        .filter((set) => set.startsWith("morh-ban-"));

/** fail2ban's log lines about jails starting and stopping since the last "Reload all jails". */
function lastReload(host: LabHost): string[] {
    const log = sh(host, "grep -E \"Reload all jails|Jail '[^']+' (started|stopped)\" /var/log/fail2ban.log").stdout.trim().split("\n");
    const start = log.map((line) => line.includes("Reload all jails")).lastIndexOf(true);
    assert.ok(start >= 0, `${host.name}: fail2ban logged a reload`);
    return log.slice(start + 1).map((line) => /Jail '([^']+)' (started|stopped)/.exec(line)!.slice(1, 3).join(" "));
}

/** The fail2ban transaction's notes that say it restarted fail2ban or its jails. */
function restartNotes(run: CliRun): string[] {
    return (run.report?.concerns.find((concern) => concern.concern === "fail2ban")?.notes ?? []).filter((note) => /restart/.test(note));
}

describe("fail2ban's switch to mor-harden's jails", () => {
    it("on a stock Debian host: Debian's sshd jail stops before the new jails start, in the same server", () => {
        const pid = serverPid(stock());
        assert.deepEqual(runningJails(stock()), ["sshd"], "the stock host runs Debian's sshd jail");
        const run = applyFromWorkstation(lab, labStackFile(lab, "stock", {}, 1));
        assert.equal(run.code, 0, run.stderr);
        assert.equal(statuses(run.report).fail2ban, "applied");
        const events = lastReload(stock());
        assert.ok(events.indexOf("sshd stopped") >= 0, events.join("; "));
        assert.ok(events.indexOf("sshd stopped") < events.indexOf("ssh-iptables started"), `sshd stopped first: ${events.join("; ")}`);
        assert.equal(serverPid(stock()), pid, "the server was not restarted");
        assert.ok(!runningJails(stock()).includes("sshd"));
        assert.equal(ourSets(stock()).length > 0, true);
        assert.deepEqual(restartNotes(run), [], "no second restart was needed");
    });

    it("a later change reloads without restarting the jails: a ban stays in its set throughout", () => {
        const banned = "198.18.0.44";
        const inSet = () => sh(stock(), `ipset save | grep -cE '^add morh-ban-ssh-iptables(-t)?-4 ${banned}( |$)'`).stdout.trim();
        assert.equal(sh(stock(), `fail2ban-client set ssh-iptables banip ${banned}`).code, 0);
        assert.equal(inSet(), "1", "banned into ssh-iptables' set");
        const run = applyFromWorkstation(lab, labStackFile(lab, "stock-changed", { fail2ban: { jails: { mor_api: { maxretry: 4 } } } }, 1));
        assert.equal(run.code, 0, run.stderr);
        assert.equal(statuses(run.report).fail2ban, "applied");
        assert.deepEqual(
            lastReload(stock()).filter((event) => event.endsWith("stopped")),
            [],
            "no jail stopped",
        );
        assert.equal(inSet(), "1", "the ban is still in the set");
        sh(stock(), `fail2ban-client set ssh-iptables unbanip ${banned}`);
    });

    it("from MOR's jails (iptables actions): the ipset action starts at once, in the same server", () => {
        const pid = serverPid(mor());
        const run = applyFromWorkstation(lab, labStackFile(lab, "mor", { firewall: { services: { ssh: "public" } } }, 3));
        assert.equal(run.code, 0, run.stderr);
        assert.equal(statuses(run.report).fail2ban, "applied");
        assert.deepEqual(restartNotes(run), [], "the jails did not have to be restarted after a reload");
        assert.equal(serverPid(mor()), pid, "the server was not restarted");
        assert.equal(sh(mor(), "fail2ban-client get ssh-iptables actions").stdout.includes("mor-harden-ipset"), true);
    });
});

/** A stand-in first in root's PATH that makes `tool` refuse when its arguments are `args`, and run as itself otherwise. */
function refuse(host: LabHost, tool: string, real: string, args: string, output = "echo forced refusal"): void {
    const script = `#!/bin/sh\n[ "$*" = '${args}' ] && { ${output}; exit 1; }\nexec ${real} "$@"\n`;
    sh(host, `printf '%s' '${script.replace(/'/g, "'\\''")}' > /usr/local/sbin/${tool} && chmod 755 /usr/local/sbin/${tool}`);
}

describe("fail2ban's transaction rolled back", () => {
    it("before activation on a stock host: rolled back and checked, the server untouched", () => {
        // fail2ban-client -t refuses (as for a broken jail file of the operator's).
        refuse(failing(), "fail2ban-client", "/usr/bin/fail2ban-client", "-t");
        try {
            const run = applyFromWorkstation(lab, labStackFile(lab, "failing", {}, 2));
            const fail2ban = run.report?.concerns.find((concern) => concern.concern === "fail2ban");
            assert.equal(fail2ban?.status, "rolled-back", JSON.stringify(fail2ban));
            assert.match(fail2ban?.message ?? "", /forced refusal/);
        } finally {
            sh(failing(), "rm -f /usr/local/sbin/fail2ban-client");
        }
        assert.deepEqual(runningJails(failing()), ["sshd"], "Debian's sshd jail runs");
        assert.equal(sh(failing(), "grep -c 'Reload all jails' /var/log/fail2ban.log").stdout.trim(), "0", "fail2ban was not reloaded");
        assert.deepEqual(ourSets(failing()), []);
        assert.equal(sh(failing(), "test -e /etc/fail2ban/jail.d/mor-harden.local").code, 1);
    });

    it("after activation on a stock host (the switch undone): Debian's sshd jail runs again, checked", () => {
        // The sets' rules seem missing from INPUT: the activation fails after it reloaded fail2ban.
        refuse(undone(), "iptables", "/usr/sbin/iptables", "-w -S INPUT", "/usr/sbin/iptables -w -S INPUT | grep -v morh-ban-mor_ddos; exit 0");
        let run: CliRun;
        try {
            run = applyFromWorkstation(lab, labStackFile(lab, "undone", {}, 4));
        } finally {
            sh(undone(), "rm -f /usr/local/sbin/iptables");
        }
        const fail2ban = run.report?.concerns.find((concern) => concern.concern === "fail2ban");
        assert.equal(fail2ban?.status, "rolled-back", JSON.stringify(fail2ban));
        assert.deepEqual(runningJails(undone()), ["sshd"], "Debian's sshd jail runs again");
        assert.deepEqual(ourSets(undone()), [], "mor-harden's jails stopped, their sets gone");
    });

    it("a later change refused on a hardened host: every jail keeps running and a ban stays in its set", () => {
        const banned = "198.18.0.45";
        assert.equal(sh(stock(), `fail2ban-client set ssh-iptables banip ${banned}`).code, 0);
        const reloads = () => sh(stock(), "grep -c 'Reload all jails' /var/log/fail2ban.log").stdout.trim();
        const before = reloads();
        refuse(stock(), "fail2ban-client", "/usr/bin/fail2ban-client", "-t");
        try {
            const run = applyFromWorkstation(lab, labStackFile(lab, "stock-refused", { fail2ban: { jails: { mor_api: { maxretry: 5 } } } }, 1));
            assert.equal(statuses(run.report).fail2ban, "rolled-back");
        } finally {
            sh(stock(), "rm -f /usr/local/sbin/fail2ban-client");
        }
        assert.equal(reloads(), before, "fail2ban was not reloaded");
        assert.equal(sh(stock(), `ipset save | grep -cE '^add morh-ban-ssh-iptables(-t)?-4 ${banned}( |$)'`).stdout.trim(), "1");
        sh(stock(), `fail2ban-client set ssh-iptables unbanip ${banned}`);
    });
});

describe("fail2ban running an operator's own jail", () => {
    it("keeps that jail running and its ban in its chain through the switch", () => {
        const banned = "198.18.0.46";
        sh(
            operators(),
            "printf '[operator-ssh]\\nenabled = true\\nfilter = sshd\\nlogpath = /var/log/auth.log\\naction = iptables-multiport[name=operator-ssh, port=ssh]\\n' > /etc/fail2ban/jail.d/zz-operator.local && fail2ban-client reload >/dev/null",
        );
        assert.equal(sh(operators(), `fail2ban-client set operator-ssh banip ${banned}`).code, 0);
        const run = applyFromWorkstation(lab, labStackFile(lab, "operators", {}, 5));
        assert.equal(statuses(run.report).fail2ban, "applied", run.stderr);
        assert.ok(runningJails(operators()).includes("operator-ssh"));
        assert.ok(!lastReload(operators()).includes("operator-ssh stopped"), lastReload(operators()).join("; "));
        assert.match(sh(operators(), "iptables -S f2b-operator-ssh").stdout, new RegExp(banned.replace(/\./g, "\\.")));
    });
});
