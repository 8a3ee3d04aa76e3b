// The fault matrix: every way an apply can be interrupted, raced or starved, each tried on a
// fresh lab host of its own (so no test starts from the state another's happy path left), and
// judged from outside: the operator still gets in, and the host holds what the report says.
import assert from "node:assert/strict";
import { needs } from "../helpers/needs";
import { applyFromWorkstation, driftFromWorkstation, labStackFile, sh, sshLoginWorks, startTestLab, statuses, tcpConnect, type TestLab } from "../helpers/lab";
import { applyInBackground, fillOver, hostFingerprint, simulateReboot, slowLossyLink, slowTool, waitFor } from "../helpers/faults";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

/** One fresh host per test, in this order. */
const HOSTS = [
    "lockout",
    "concurrent",
    "full-state",
    "full-etc",
    "reboot-hardened",
    "reboot-fresh",
    "session-killed",
    "timeout",
    "connection-lost",
    "slow-link",
    "port-move",
    "port-taken",
] as const;
const hostOf = (name: (typeof HOSTS)[number]) => HOSTS.indexOf(name) + 1;

let lab: TestLab;
before(async () => {
    lab = await startTestLab(HOSTS.length);
});
after(() => lab?.stop());

const host = (name: (typeof HOSTS)[number]) => lab.host(hostOf(name));
/** A real login from the workstation over IPv4 or IPv6. */
const sshWorks = (name: (typeof HOSTS)[number], ipv6 = false) => sshLoginWorks(lab, ipv6 ? host(name).v6 : host(name).v4);
/** The lab stack of a host, with some keys changed. */
const stackFor = (name: (typeof HOSTS)[number], variant: string, change: Parameters<typeof labStackFile>[2] = {}) =>
    labStackFile(lab, `${name}-${variant}`, change, hostOf(name));
/** Both families' filter tables without counters or comments. */
const liveRules = (name: (typeof HOSTS)[number]) =>
    sh(host(name), "for t in iptables ip6tables; do echo \"== $t\"; $t-save -t filter | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'; done").stdout;
const pendingOn = (name: (typeof HOSTS)[number]) => sh(host(name), "ls /var/lib/mor-harden/tx/*/pending >/dev/null 2>&1").code === 0;
/**
 * A transaction in its confirmation window: pending, and its change activated and verified (the
 * pending file is written before activation, so the timer is armed before anything can lock out).
 */
const confirmWindowOn = (name: (typeof HOSTS)[number]) =>
    sh(host(name), 'for p in /var/lib/mor-harden/tx/*/pending; do [ -e "${p%/pending}/verified" ] && exit 0; done; exit 1').code === 0;
const LOCKOUT = { firewall: { trusted: ["198.51.100.99", "2001:db8:51::99"] } };

describe("the fault matrix", () => {
    it("rolls back a lockout on a host that had no rules at all, over IPv4 and IPv6, and says so only once checked", () => {
        const before_ = liveRules("lockout");
        const run = applyFromWorkstation(lab, stackFor("lockout", "lockout", LOCKOUT));
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.equal(statuses(run.report).firewall, "rolled-back", run.stdout);
        assert.ok(sshWorks("lockout"), "IPv4 login after the rollback");
        assert.ok(sshWorks("lockout", true), "IPv6 login after the rollback");
        assert.equal(liveRules("lockout"), before_, "the filter tables are as they were (absent tables included)");
        assert.equal(sh(host("lockout"), "test -e /etc/iptables/rules.v4 || test -e /etc/iptables/rules.v6").code, 1, "no rules file is left to load at boot");
    });

    it("serializes concurrent applies: none rolls back, every one ends applied or unchanged", async () => {
        const good = stackFor("concurrent", "good");
        const two = await Promise.all([applyInBackground(lab, good).done, applyInBackground(lab, good).done]);
        for (const run of two) {
            assert.equal(run.code, 0, run.stdout + run.stderr);
            for (const status of Object.values(statuses(run.report))) assert.match(status, /^(applied|unchanged)$/, run.stdout);
        }
        const changed = stackFor("concurrent", "extra", {
            firewall: { extraRules: [{ name: "node-exporter", protocol: "tcp", ports: 9100, exposure: "trusted" }] },
            sshd: { maxAuthTries: 5 },
        });
        const three = await Promise.all([applyInBackground(lab, changed).done, applyInBackground(lab, changed).done, applyInBackground(lab, changed).done]);
        for (const run of three) {
            assert.equal(run.code, 0, run.stdout + run.stderr);
            for (const status of Object.values(statuses(run.report))) assert.match(status, /^(applied|unchanged)$/, run.stdout);
        }
        assert.ok(sshWorks("concurrent"));
        assert.equal(
            sh(host("concurrent"), "ls /var/lib/mor-harden/tx/*/pending /var/lib/mor-harden/tx/*/open 2>/dev/null | wc -l").stdout.trim(),
            "0",
            "nothing left pending or open",
        );
    });

    it("changes nothing when the state directory is full, and applies once there is room", () => {
        const full = fillOver(host("full-state"), "/var/lib/mor-harden");
        try {
            const before_ = hostFingerprint(host("full-state"));
            const run = applyFromWorkstation(lab, stackFor("full-state", "good"));
            assert.equal(run.code, 1, run.stdout + run.stderr);
            assert.equal(statuses(run.report).firewall, "failed", run.stdout);
            assert.match(run.report!.concerns[0].message!, /^nothing was changed: /);
            assert.equal(hostFingerprint(host("full-state")), before_, "/etc and the live rules are byte-identical");
            assert.ok(sshWorks("full-state"));
        } finally {
            full.unmount();
        }
        assert.equal(applyFromWorkstation(lab, stackFor("full-state", "good")).code, 0);
    });

    it("changes nothing when /etc is full, and applies once there is room", () => {
        const full = fillOver(host("full-etc"), "/etc");
        try {
            const before_ = hostFingerprint(host("full-etc"), full.filler);
            const run = applyFromWorkstation(lab, stackFor("full-etc", "good"));
            assert.equal(run.code, 1, run.stdout + run.stderr);
            assert.equal(statuses(run.report).firewall, "failed", run.stdout);
            assert.match(run.report!.concerns[0].message!, /^nothing was changed: cannot write \/etc\/iptables\/rules\.v4/);
            assert.equal(hostFingerprint(host("full-etc"), full.filler), before_, "/etc and the live rules are byte-identical");
            assert.ok(sshWorks("full-etc"));
        } finally {
            full.unmount();
        }
        assert.equal(applyFromWorkstation(lab, stackFor("full-etc", "good")).code, 0);
    });

    /** Starts a lockout change with a long confirm timeout and kills the operator once it is pending. */
    async function leavePending(name: (typeof HOSTS)[number]): Promise<void> {
        const run = applyInBackground(lab, stackFor(name, "lockout", { ...LOCKOUT, connection: { confirmTimeout: 300, connectTimeout: 5 } }));
        try {
            assert.ok(await waitFor(() => confirmWindowOn(name), 60_000), "the change reached its confirmation window");
        } finally {
            run.kill();
        }
        assert.ok(!sshWorks(name), "while unconfirmed, the lockout is live");
    }

    it("comes back from a reboot during the confirm window with the old files and rules (a hardened host)", async () => {
        assert.equal(applyFromWorkstation(lab, stackFor("reboot-hardened", "good")).code, 0);
        const files = () => sh(host("reboot-hardened"), "sha256sum /etc/iptables/rules.v4 /etc/iptables/rules.v6").stdout;
        const rulesBefore = liveRules("reboot-hardened");
        const filesBefore = files();
        await leavePending("reboot-hardened");
        simulateReboot(host("reboot-hardened"));
        assert.equal(files(), filesBefore, "the boot hook put the old rules files back before they were loaded");
        assert.equal(
            liveRules("reboot-hardened").replace(/^-A INPUT (-j f2b-|-m set --match-set morh-ban-).*\n/gm, ""),
            rulesBefore.replace(/^-A INPUT (-j f2b-|-m set --match-set morh-ban-).*\n/gm, ""),
        );
        assert.ok(sshWorks("reboot-hardened"));
        assert.ok(sshWorks("reboot-hardened", true));
        assert.match(sh(host("reboot-hardened"), "cat /var/lib/mor-harden/tx/*-firewall-*/result").stdout, /rolled-back at boot/);
        assert.equal(applyFromWorkstation(lab, stackFor("reboot-hardened", "good")).code, 0, "the next apply converges");
    });

    it("comes back from a reboot during the confirm window with no rules (a fresh host)", async () => {
        await leavePending("reboot-fresh");
        simulateReboot(host("reboot-fresh"));
        assert.equal(
            sh(host("reboot-fresh"), "test -e /etc/iptables/rules.v4 || test -e /etc/iptables/rules.v6").code,
            1,
            "the files that were not there are gone",
        );
        assert.ok(sshWorks("reboot-fresh"));
        assert.ok(sshWorks("reboot-fresh", true));
    });

    it("rolls back by itself when the SSH session's processes are killed, and drift says a change is pending meanwhile", async () => {
        assert.equal(applyFromWorkstation(lab, stackFor("session-killed", "good")).code, 0);
        const rulesBefore = liveRules("session-killed");
        // iptables-restore made slow: the operator is cut off while the firewall activates.
        const undo = slowTool(host("session-killed"), "iptables-restore", "/usr/sbin/iptables-restore", 3);
        const run = applyInBackground(
            lab,
            stackFor("session-killed", "extra", {
                firewall: { extraRules: [{ name: "node-exporter", protocol: "tcp", ports: 9100, exposure: "trusted" }] },
                connection: { confirmTimeout: 25 },
            }),
        );
        try {
            assert.ok(await waitFor(() => pendingOn("session-killed"), 60_000), "the change reached its confirmation window");
        } finally {
            run.kill();
            // Every process of every SSH session on the host, as a session scope's stop would.
            sh(
                host("session-killed"),
                "for sid in $(ps -eo sid=,args= | awk '$2 ~ /^sshd:/ && $3 ~ /@/ { print $1 }' | sort -u); do pkill -KILL -s \"$sid\"; done",
            );
            undo();
        }
        const drift = driftFromWorkstation(lab, stackFor("session-killed", "extra"), 60_000);
        assert.equal(drift.code, 1, drift.stdout + drift.stderr);
        assert.match(drift.stdout, /waiting for its confirmation/);
        assert.ok(
            await waitFor(
                () => !pendingOn("session-killed") && /rolled-back unconfirmed/.test(sh(host("session-killed"), "cat /var/lib/mor-harden/tx/*/result").stdout),
                40_000,
            ),
            "the timer rolled the change back",
        );
        assert.equal(
            liveRules("session-killed").replace(/^-A INPUT (-j f2b-|-m set --match-set morh-ban-).*\n/gm, ""),
            rulesBefore.replace(/^-A INPUT (-j f2b-|-m set --match-set morh-ban-).*\n/gm, ""),
        );
        assert.ok(sshWorks("session-killed"));
    });

    it("reports a command time-out honestly: the transaction is followed to its end, not called 'nothing tried'", () => {
        const undo = slowTool(host("timeout"), "iptables-restore", "/usr/sbin/iptables-restore", 4);
        try {
            const run = applyFromWorkstation(lab, stackFor("timeout", "short", { connection: { commandTimeout: 3 } }), 240_000);
            assert.notEqual(run.code, 2, run.stdout + run.stderr);
            assert.equal(statuses(run.report).firewall, "applied", run.stdout + run.stderr);
            assert.match(run.report!.concerns[0].message!, /timed out after 3 s \(connection\.commandTimeout\).*completed on the host/);
        } finally {
            undo();
        }
        assert.ok(sshWorks("timeout"));
    });

    it("follows a transaction whose connection was lost to its end over a new connection", async () => {
        const undo = slowTool(host("connection-lost"), "iptables-restore", "/usr/sbin/iptables-restore", 4);
        try {
            const run = applyInBackground(lab, stackFor("connection-lost", "good"));
            // (pgrep -x: the shell running pgrep must not match itself.)
            const inTransaction = () =>
                sh(host("connection-lost"), "ls -d /var/lib/mor-harden/tx/*-firewall-* >/dev/null 2>&1 && pgrep -fx 'sleep 4' >/dev/null").code === 0;
            assert.ok(await waitFor(inTransaction, 60_000), "the firewall transaction is running");
            // The operator's connection is cut mid-transaction (its sshd session killed on the host).
            sh(host("connection-lost"), "pkill -KILL -f '^sshd: root'");
            const result = await run.done;
            assert.equal(statuses(result.report).firewall, "applied", result.stdout + result.stderr);
            assert.match(result.report!.concerns[0].message ?? "", /connection was lost.*completed on the host/, result.stdout + result.stderr);
        } finally {
            undo();
        }
        assert.ok(sshWorks("connection-lost"));
    });

    it("applies and checks drift correctly over a 200 ms round trip with 3% packet loss", () => {
        const link = slowLossyLink(lab, host("slow-link"), { delayMs: 100, lossPercent: 3, listenPort: 2222 });
        try {
            const stack = stackFor("slow-link", "slow", { connection: { address: link.address, port: link.port, connectTimeout: 30, confirmTimeout: 60 } });
            const run = applyFromWorkstation(lab, stack, 300_000);
            assert.equal(run.code, 0, run.stdout + run.stderr);
            assert.deepEqual(new Set(Object.values(statuses(run.report))), new Set(["applied"]));
            const clean = driftFromWorkstation(lab, stack, 120_000);
            assert.equal(clean.code, 0, clean.stdout + clean.stderr);
            sh(host("slow-link"), "iptables -I MORH-INPUT -p tcp --dport 3306 -j ACCEPT");
            const drift = driftFromWorkstation(lab, stack, 120_000);
            assert.equal(drift.code, 1, drift.stdout + drift.stderr);
            assert.match(drift.stdout, /dport 3306/);
            // A time-out names the setting to change.
            const impatient = driftFromWorkstation(
                lab,
                stackFor("slow-link", "impatient", { connection: { address: link.address, port: link.port, connectTimeout: 1 } }),
                60_000,
            );
            assert.equal(impatient.code, 2);
            assert.match(impatient.stdout + impatient.stderr, /connection\.connectTimeout 1 s/);
        } finally {
            link.stop();
        }
    });

    it("moves SSH to a new port in two applies, never losing the way in", () => {
        const listening = () => sh(host("port-move"), "ss -Hltn | awk '{ print $4 }' | sed 's/.*://' | sort -un | tr '\\n' ' '").stdout;
        const moving = applyFromWorkstation(lab, stackFor("port-move", "moving", { sshd: { port: 2222 } }));
        assert.equal(moving.code, 0, moving.stdout + moving.stderr);
        assert.match(listening(), /(^| )22 .*2222 /, "sshd listens on the old port and the new one");
        const moved = applyFromWorkstation(lab, stackFor("port-move", "moved", { sshd: { port: 2222 }, connection: { port: 2222 } }));
        assert.equal(moved.code, 0, moved.stdout + moved.stderr);
        assert.doesNotMatch(listening(), /(^| )22 /, "the old port is closed once connection.port followed");
        assert.ok(sshLoginWorks(lab, host("port-move").v4, 2222));
        assert.ok(sshLoginWorks(lab, host("port-move").v6, 2222));
        assert.equal(tcpConnect(lab.client("attacker"), host("port-move").v4, 2222), "filtered", "the new port is trusted-only too");
    });

    it("starts again an sshd its change killed (the new port held by another program), with the old settings", () => {
        // A port another program holds passes sshd -t; the re-exec then cannot bind it and sshd
        // exits. connection.forwarded (a NAT maps 22 to sshd.port) makes sshd listen on 2222
        // alone; an extra rule keeps 22 open, so the firewall's own change confirms first.
        const holder = sh(
            host("port-taken"),
            "setsid timeout 150 socat TCP6-LISTEN:2222,reuseaddr SYSTEM:true </dev/null >/dev/null 2>&1 & echo $!",
        ).stdout.trim();
        try {
            assert.match(holder, /^\d+$/);
            const stack = stackFor("port-taken", "taken", {
                sshd: { port: 2222 },
                connection: { forwarded: true },
                firewall: { extraRules: [{ name: "ssh-old", protocol: "tcp", ports: 22, exposure: "trusted" }] },
            });
            const run = applyFromWorkstation(lab, stack);
            assert.notEqual(run.code, 0, run.stdout);
            assert.equal(statuses(run.report).sshd, "rolled-back", run.stdout + run.stderr);
            assert.match(run.report?.concerns.find((concern) => concern.concern === "sshd")?.message ?? "", /not running after the reload/);
            assert.ok(sshLoginWorks(lab, host("port-taken").v4), "sshd listens on 22 again");
            assert.equal(sh(host("port-taken"), "cat /etc/ssh/sshd_config.d/00-mor-harden.conf 2>/dev/null | grep -c '^Port'").stdout.trim(), "0");
        } finally {
            if (/^\d+$/.test(holder)) sh(host("port-taken"), `kill ${holder} 2>/dev/null; true`);
        }
        const after = applyFromWorkstation(lab, stackFor("port-taken", "after"));
        assert.equal(after.code, 0, after.stdout + after.stderr);
    });
});
