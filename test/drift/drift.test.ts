// `mor-harden drift` against lab hosts: clean after an apply, every hand change reported with
// its diff and exit 1, clean again after a re-apply, never writing on the host, and hosts that
// cannot be checked reported without hiding the others.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { needs } from "../helpers/needs";
import type { DriftResult } from "../../src/drift/check";
import { labExec } from "../../src/lab/lab";
import { applyFromWorkstation, labStackFile, sh, startTestLab, type TestLab } from "../helpers/lab";
import { CLI_FILE as CLI } from "../../src/cli/bin";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
let stack: string;
before(async () => {
    lab = await startTestLab(2);
    stack = labStackFile(lab, "drift");
    const applied = applyFromWorkstation(lab, stack);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
});
after(() => lab?.stop());

function drift(...args: string[]): { code: number; results: DriftResult[]; stderr: string } {
    const run = labExec(lab.client("workstation"), ["node", CLI, "drift", "--json", ...args], { timeoutMs: 120_000 });
    return { code: run.code, results: JSON.parse(run.stdout) as DriftResult[], stderr: run.stderr };
}

/** Everything drift could touch on a host: managed and state files, and the rules without counters. */
const fingerprint = () =>
    sh(
        lab.host(),
        "find /etc /var/lib/mor-harden /root/.ssh -xdev -path /etc/netns -prune -o -type f -exec sha256sum {} + | sort; iptables-save | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'; ip6tables-save | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'",
    ).stdout;

/**
 * Waits (60 s at most) until every jail's ban action has started, each putting its set's rule in
 * INPUT, IPv4 and IPv6: fail2ban starts its jails' actions after `fail2ban-client start` returns.
 */
const jailsStarted = `timeout 60 sh -c 'until [ "$(iptables -S INPUT | grep -c "match-set morh-ban-")" -ge 8 ] && [ "$(ip6tables -S INPUT | grep -c "match-set morh-ban-")" -ge 8 ]; do sleep 0.2; done'`;

const handChanges: [string, string, string, RegExp][] = [
    [
        "an added ACCEPT rule",
        "iptables -I INPUT 1 -p tcp --dport 3306 -j ACCEPT",
        "iptables -D INPUT -p tcp --dport 3306 -j ACCEPT",
        /-- firewall: iptables rules\n[\s\S]*^\+-A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT$/m,
    ],
    [
        "a changed ip6tables policy",
        "ip6tables -P INPUT ACCEPT",
        "ip6tables -P INPUT DROP",
        /-- firewall: ip6tables rules\n[\s\S]*^-:INPUT DROP\n\+:INPUT ACCEPT$/m,
    ],
    [
        "PasswordAuthentication yes in an sshd drop-in",
        "echo 'PasswordAuthentication yes' > /etc/ssh/sshd_config.d/00-aaa.conf",
        "rm /etc/ssh/sshd_config.d/00-aaa.conf",
        /-- sshd: sshd effective settings \(sshd -T\)\n[\s\S]*^-passwordauthentication no\n\+passwordauthentication yes$/m,
    ],
    [
        "a jail's maxretry changed",
        "sed -i 's/^maxretry = 3$/maxretry = 30/' /etc/fail2ban/jail.d/mor-harden.local",
        "sed -i 's/^maxretry = 30$/maxretry = 3/' /etc/fail2ban/jail.d/mor-harden.local",
        /-- fail2ban: \/etc\/fail2ban\/jail\.d\/mor-harden\.local\n[\s\S]*^-maxretry = 3\n\+maxretry = 30$/m,
    ],
    [
        "fail2ban stopped",
        "fail2ban-client stop >/dev/null",
        `fail2ban-client start >/dev/null && ${jailsStarted}`,
        /-- fail2ban: service\nnot running as configured: fail2ban is not running/,
    ],
    [
        "the vhost's certificate replaced",
        "cp /etc/ssl/mor-harden/server.crt /var/tmp/server.crt.saved && cp /etc/ssl/certs/ssl-cert-snakeoil.pem /etc/ssl/mor-harden/server.crt",
        "mv /var/tmp/server.crt.saved /etc/ssl/mor-harden/server.crt",
        /-- apache: \/etc\/ssl\/mor-harden\/server\.crt\n--- \/etc\/ssl\/mor-harden\/server\.crt \(desired\)\n\+\+\+ \/etc\/ssl\/mor-harden\/server\.crt \(live\)\n@@/,
    ],
];

describe("drift check", () => {
    it("finds no drift right after an apply, in one connection and one round trip, writing nothing", () => {
        const before_ = fingerprint();
        const { code, results } = drift("--config", stack);
        assert.equal(code, 0, JSON.stringify(results, null, 1));
        assert.equal(results[0].status, "clean");
        assert.equal(results[0].roundTrips, 1);
        assert.equal(fingerprint(), before_, "the host's files and rules are byte-identical");
    });

    it("compares the live rules with the form the apply cached, and a stale or missing cache is no drift", () => {
        const views = sh(lab.host(), "ls /var/lib/mor-harden/views").stdout.trim().split("\n");
        assert.deepEqual(views.map((name) => name.replace(/-[0-9a-f]{32}$/, "")).sort(), ["firewall-0", "firewall-1"], "one cached form per family");
        // Garbage in one entry, the other gone: both recomputed, still clean, and nothing written.
        const entry = (name: string) => `/var/lib/mor-harden/views/${name}`;
        assert.equal(
            sh(
                lab.host(),
                `cp ${entry(views[0])} /var/tmp/view0 && cp ${entry(views[1])} /var/tmp/view1 && echo stale > ${entry(views[0])} && rm ${entry(views[1])}`,
            ).code,
            0,
        );
        try {
            const { code, results } = drift("--config", stack);
            assert.equal(code, 0, JSON.stringify(results, null, 1));
            assert.equal(sh(lab.host(), `cat ${entry(views[0])}`).stdout.trim(), "stale", "drift wrote nothing");
        } finally {
            sh(lab.host(), `mv /var/tmp/view0 ${entry(views[0])} && mv /var/tmp/view1 ${entry(views[1])}`);
        }
    });

    for (const [what, change, revert, expected] of handChanges) {
        it(`reports ${what} with its diff, exit 1, and is clean after the revert`, () => {
            assert.equal(sh(lab.host(), change).code, 0);
            try {
                const before_ = fingerprint();
                const run = labExec(lab.client("workstation"), ["node", CLI, "drift", "--config", stack], { timeoutMs: 120_000 });
                assert.equal(run.code, 1, run.stdout + run.stderr);
                assert.match(run.stdout, expected);
                assert.equal(fingerprint(), before_, "read-only");
            } finally {
                assert.equal(sh(lab.host(), revert).code, 0);
            }
            const { code, results } = drift("--config", stack);
            assert.equal(code, 0, JSON.stringify(results[0].findings, null, 1));
        });
    }

    it("is clean again after a re-apply repairs hand changes to files and to the live rules", () => {
        sh(lab.host(), "sed -i 's/^maxretry = 3$/maxretry = 30/' /etc/fail2ban/jail.d/mor-harden.local");
        sh(lab.host(), "iptables -I INPUT 1 -p tcp --dport 3306 -j ACCEPT; iptables -I MORH-INPUT 1 -p tcp --dport 5038 -j ACCEPT; ip6tables -P INPUT ACCEPT");
        assert.equal(drift("--config", stack).code, 1);
        const repair = applyFromWorkstation(lab, stack);
        assert.equal(repair.code, 0, repair.stdout + repair.stderr);
        assert.equal(repair.report!.concerns.find((c) => c.concern === "firewall")!.status, "applied", "the live rules count, not only the files");
        const { code, results } = drift("--config", stack);
        assert.equal(code, 0, JSON.stringify(results[0].findings, null, 1));
    });

    it("reports an unreachable host and a wrong host key with exit 2, without hiding the others", () => {
        const unreachable = labStackFile(lab, "unreachable", { connection: { address: "192.0.2.99", connectTimeout: 3 } });
        const wrongKey = labStackFile(lab, "wrong-key", { connection: { hostKey: lab.host(2).hostKey } });
        const junit = join(lab.state.dir, "drift.xml");
        const { code, results, stderr } = drift("--config", stack, "--config", unreachable, "--config", wrongKey, "--junit", junit);
        assert.equal(code, 2);
        assert.deepEqual(
            results.map((result) => result.status),
            ["clean", "error", "error"],
        );
        assert.match(results[1].reason!, /192\.0\.2\.99/);
        assert.match(
            results[2].reason!,
            new RegExp(
                `host key mismatch for ${lab.host().v4.replace(/\./g, "\\.")}: expected ${lab.host(2).hostKey.replace(/[+/]/g, ".")}, the host presented ${lab.host().hostKey.replace(/[+/]/g, ".")}`,
            ),
        );
        assert.equal(stderr.trim().split("\n").length, 3, "one progress line per host");
        assert.match(readFileSync(junit, "utf8"), /tests="3" failures="0" errors="2"/);
    });
});
