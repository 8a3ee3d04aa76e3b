// The system concern on a fresh lab host, judged by Lynis (Debian's 3.0.8): its hardening index
// before an apply and after it, the sysctls of the host's network namespace live, the kernel's
// own untouched (the lab's hosts share this machine's kernel), and a sysctl changed by hand is
// drift until the next apply.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { needs } from "../helpers/needs";
import { applyFromWorkstation, driftFromWorkstation, labStackFile, sh, startTestLab, statuses, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces) and lynis");

let lab: TestLab;
let stack: string;
before(async () => {
    lab = await startTestLab(2);
    // The lab's stacks leave the system concern off (src/lab/stacks.ts): on here, render-only as there.
    stack = labStackFile(lab, "system", { system: { enabled: true } });
});
after(() => lab?.stop());

/** Lynis' hardening index and suggestions on the lab host (a quick audit, without its version check, which needs the network). */
function lynis(): { index: number; suggestions: string[] } {
    const run = sh(
        lab.host(),
        "mkdir -p /etc/lynis && echo skip-upgrade-test=yes > /etc/lynis/custom.prf && lynis audit system --quick --no-colors --report-file /var/tmp/lynis-report.dat >/dev/null 2>&1; cat /var/tmp/lynis-report.dat",
        300_000,
    );
    const index = /^hardening_index=(\d+)$/m.exec(run.stdout);
    assert.ok(index, `no hardening_index in Lynis' report:\n${run.stdout.slice(-2000)}\n${run.stderr}`);
    return { index: Number(index[1]), suggestions: [...run.stdout.matchAll(/^suggestion\[\]=(.*)$/gm)].map((match) => match[1]) };
}

describe("system concern judged by Lynis", { timeout: 900_000 }, () => {
    const machine = () =>
        ["kernel/kptr_restrict", "kernel/dmesg_restrict", "fs/protected_fifos", "net/ipv4/conf/all/log_martians"].map((key) =>
            readFileSync(`/proc/sys/${key}`, "utf8"),
        );
    const machineBefore = machine();

    it("Lynis' hardening index is at least 75 after an apply (it was lower before)", () => {
        const plain = lynis();
        const applied = applyFromWorkstation(lab, stack, 300_000);
        assert.equal(applied.code, 0, applied.stdout + applied.stderr);
        const afterApply = lynis();
        console.log(`Lynis hardening index: ${plain.index} before, ${afterApply.index} after; suggestions left:\n  ${afterApply.suggestions.join("\n  ")}`);
        assert.ok(plain.index < 75, `a plain lab host already scores ${plain.index}`);
        assert.ok(afterApply.index >= 75, `hardening index ${afterApply.index} after the apply:\n  ${afterApply.suggestions.join("\n  ")}`);
    });

    it("leaves sshd clean for ssh-audit, with Lynis' SSH settings that lock nobody out", () => {
        const audit = sh(lab.client("workstation"), `ssh-audit -n ${lab.host().v4}`, 60_000);
        assert.match(audit.stdout, /# key exchange algorithms/, "ssh-audit read the server");
        assert.deepEqual(
            audit.stdout.split("\n").filter((line) => line.includes("[fail]")),
            [],
        );
        assert.match(
            sh(lab.host(), "sshd -T | grep -E '^(tcpkeepalive|compression|maxsessions|maxauthtries) ' | sort").stdout,
            /^compression no\nmaxauthtries 6\nmaxsessions 4\ntcpkeepalive no\n$/,
        );
    });

    it("writes the network namespace's sysctls, and never the machine's kernel-wide ones", () => {
        assert.equal(
            sh(lab.host(), "sysctl -n net.ipv4.conf.all.log_martians net.ipv4.conf.all.rp_filter net.ipv4.conf.all.accept_redirects").stdout,
            "1\n2\n0\n",
        );
        assert.match(sh(lab.host(), "cat /etc/sysctl.d/90-mor-harden-kernel.conf").stdout, /^kernel\.kptr_restrict = 2$/m);
        // This machine's kernel-wide values and its own namespace's are as they were.
        assert.deepEqual(machine(), machineBefore);
    });

    it("a sysctl changed by hand is drift, and the next apply puts it back", () => {
        assert.equal(driftFromWorkstation(lab, stack).code, 0);
        sh(lab.host(), "sysctl -q -w net.ipv4.conf.all.accept_redirects=1");
        const drift = driftFromWorkstation(lab, stack);
        assert.equal(drift.code, 1, drift.stdout + drift.stderr);
        assert.match(
            drift.stdout,
            /-- system: sysctl values\n[\s\S]*^-net\.ipv4\.conf\.all\.accept_redirects = 0\n\+net\.ipv4\.conf\.all\.accept_redirects = 1$/m,
        );
        const applied = applyFromWorkstation(lab, stack, 300_000);
        assert.equal(applied.code, 0, applied.stdout + applied.stderr);
        assert.equal(sh(lab.host(), "sysctl -n net.ipv4.conf.all.accept_redirects").stdout, "0\n");
        assert.equal(driftFromWorkstation(lab, stack).code, 0);
    });

    it("rolls back the values it wrote when a later one is refused by the kernel, on a host it never hardened", () => {
        // Host 2 is fresh: the rollback must write back the values it found, since no old drop-in
        // exists to apply again.
        const fresh = lab.host(2);
        const live = () => sh(fresh, "sysctl -n net.ipv4.conf.all.rp_filter net.ipv4.conf.all.log_martians net.ipv4.ip_default_ttl").stdout;
        const plain = live();
        // rp_filter strict and martians logged are written first; the kernel refuses a TTL of 0
        // after them (EINVAL). The change replaces the lab's whole system.sysctl, so it says
        // render-only again: this machine's kernel must never be written.
        const broken = labStackFile(
            lab,
            "system-broken",
            { system: { enabled: true, sysctl: { kernelWide: "render-only", reversePathFilter: "strict", settings: { "net.ipv4.ip_default_ttl": 0 } } } },
            2,
        );
        const applied = applyFromWorkstation(lab, broken, 300_000);
        assert.notEqual(applied.code, 0, applied.stdout);
        assert.equal(statuses(applied.report).system, "rolled-back", applied.stdout);
        assert.doesNotMatch(plain, /^1\n1\n/, "the host did not have the values already");
        assert.equal(live(), plain);
        assert.equal(sh(fresh, "ls /etc/sysctl.d/ | grep -c mor-harden").stdout, "0\n");
        assert.deepEqual(machine(), machineBefore);
    });
});
