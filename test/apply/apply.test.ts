// `mor-harden apply` against a real (lab) host, from the workstation, judged from outside.
import assert from "node:assert/strict";
import { banSets } from "../../src/fail2ban/ban-action";
import { spawn } from "node:child_process";
import { needs } from "../helpers/needs";
import { execArgv } from "../../src/lab/lab";
import { waitFor } from "../helpers/faults";
import { applyFromWorkstation, labStackFile, operatorSshOptions, scanPorts, sh, sshLoginWorks, startTestLab, statuses, type TestLab } from "../helpers/lab";
import { CLI_FILE } from "../../src/cli/bin";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
let stack: string;
before(async () => {
    lab = await startTestLab(1);
    stack = labStackFile(lab, "hardened");
});
after(() => lab?.stop());

const host = () => lab.host();
const workstation = () => lab.client("workstation");
const attacker = () => lab.client("attacker");
const sshOptions = () => operatorSshOptions(lab);
const sshWorks = () => sshLoginWorks(lab, host().v4);
const scan = (from: "workstation" | "attacker", address: string, ports: string, ipv6 = false) => scanPorts(lab, from, address, ports, ipv6);

/** `count` new TCP connections to the host's SSH, one after another, each given 1 s: how many were answered, in how many seconds. */
function newSshConnections(count: number): [connected: number, seconds: number] {
    const attempts = sh(
        workstation(),
        `start=$(date +%s); ok=0; for i in $(seq 1 ${count}); do timeout 1 bash -c 'exec 3<>/dev/tcp/${host().v4}/22' 2>/dev/null && ok=$((ok+1)); done; echo $ok $(( $(date +%s) - start ))`,
        90_000,
    );
    const [connected, seconds] = attempts.stdout.trim().split(" ").map(Number);
    return [connected, seconds];
}

/** The IPv4 set of ssh-iptables' bans (its default ban time: a timed set). */
const sshBanSet = `${banSets("ssh-iptables", 600).set}-4`;

describe("apply over SSH", () => {
    it("hardens a fresh host, each lockout-prone change confirmed by a new login", () => {
        const run = applyFromWorkstation(lab, stack);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.deepEqual(statuses(run.report), { firewall: "applied", sshd: "applied", fail2ban: "applied", apache: "applied" });
        assert.equal(run.report!.connections, 3, "the firewall and sshd changes each confirmed over a new connection");
    });

    it("lets the attacker reach only the public MOR ports, over IPv4 and IPv6", () => {
        for (const [address, ipv6] of [
            [host().v4, false],
            [host().v6, true],
        ] as const) {
            const seen = scan("attacker", address, "22,80,443,3306,5038,5060,9200", ipv6);
            assert.equal(seen["22"], "filtered", `SSH is hidden from the attacker (${address})`);
            assert.equal(seen["80"], "open");
            assert.equal(seen["443"], "open");
            assert.equal(seen["5060"], "closed", "SIP is let through (nothing listens in the lab)");
            for (const port of ["3306", "5038", "9200"]) assert.equal(seen[port], "filtered", `${port} is closed to the attacker`);
        }
    });

    it("lets the workstation reach SSH and the GUI", () => {
        for (const [address, ipv6] of [
            [host().v4, false],
            [host().v6, true],
        ] as const) {
            const seen = scan("workstation", address, "22,443", ipv6);
            assert.deepEqual(seen, { "22": "open", "443": "open" }, address);
        }
    });

    it("refuses passwords and accepts the operator's key", () => {
        const password = sh(
            workstation(),
            `ssh ${sshOptions()} -o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive root@${host().v4} true`,
            15_000,
        );
        assert.notEqual(password.code, 0);
        assert.match(password.stderr, /Permission denied \(publickey\)/);
        assert.ok(sshWorks());
    });

    it("passes ssh-audit with no failure", () => {
        const audit = sh(workstation(), `ssh-audit -n ${host().v4}`, 60_000);
        assert.match(audit.stdout, /# key exchange algorithms/, "ssh-audit read the server");
        // Debian 12's ssh-audit (2.5) exits 2 on algorithms newer than itself (kex-strict), so its
        // verdict is read from its lines: no algorithm or setting is marked as a failure.
        const failures = audit.stdout.split("\n").filter((line) => line.includes("[fail]"));
        assert.deepEqual(failures, []);
    });

    it("serves the stack's certificate over TLS 1.2/1.3 only, and redirects HTTP", () => {
        const name = `${host().name}.lab.example`;
        const https = sh(
            attacker(),
            `curl -sS -o /dev/null -D - --cacert ${lab.state.caCertificate} --resolve ${name}:443:${host().v4} https://${name}/`,
            15_000,
        );
        assert.match(https.stdout, /^HTTP\/1\.1 200 /, `the chain verifies against the lab CA and names the host: ${https.stderr}`);
        assert.match(https.stdout, /strict-transport-security: max-age=63072000/i);
        const http = sh(attacker(), `curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://${host().v4}/`, 15_000);
        assert.equal(http.stdout, `301 https://${name}/`);
        const handshake = (flags: string) => sh(attacker(), `openssl s_client -connect ${host().v4}:443 -servername ${name} ${flags} </dev/null`, 15_000).code;
        assert.equal(handshake("-tls1_3"), 0);
        assert.equal(handshake("-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256"), 0);
        assert.notEqual(handshake("-tls1_1"), 0, "TLS 1.1 is refused");
        assert.notEqual(handshake("-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256"), 0, "CBC ciphers are refused");
    });

    it("changes nothing on a second apply: no file written, no service reloaded", () => {
        const files =
            "/etc/iptables/rules.v4 /etc/ssh/sshd_config.d/00-mor-harden.conf /etc/fail2ban/jail.d/mor-harden.local /etc/apache2/sites-available/00-mor-harden.conf";
        const before = sh(
            host(),
            `stat -c '%n %Y %i' ${files}; cat /run/sshd.pid /run/apache2/apache2.pid; grep -c 'Reload finished' /var/log/fail2ban.log`,
        ).stdout;
        const run = applyFromWorkstation(lab, stack);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.deepEqual(statuses(run.report), { firewall: "unchanged", sshd: "unchanged", fail2ban: "unchanged", apache: "unchanged" });
        assert.equal(run.report!.roundTrips, 1);
        assert.equal(run.report!.connections, 1);
        const after_ = sh(
            host(),
            `stat -c '%n %Y %i' ${files}; cat /run/sshd.pid /run/apache2/apache2.pid; grep -c 'Reload finished' /var/log/fail2ban.log`,
        ).stdout;
        assert.equal(after_, before);
    });

    it("keeps a banned address banned through a firewall apply", () => {
        assert.equal(sh(host(), `fail2ban-client set ssh-iptables banip ${attacker().v4}`).code, 0);
        const reachable = () => sh(attacker(), `curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://${host().v4}/`, 10_000).stdout;
        assert.equal(reachable(), "000", "the ban blocks every port");
        const changed = labStackFile(lab, "extra-rule", {
            firewall: { extraRules: [{ name: "node-exporter", protocol: "tcp", ports: 9100, exposure: "trusted" }] },
        });
        const run = applyFromWorkstation(lab, changed);
        assert.equal(statuses(run.report).firewall, "applied", run.stdout + run.stderr);
        assert.equal(sh(host(), `ipset test ${sshBanSet} ${attacker().v4}`).code, 0, "the ban is still in its set");
        assert.equal(reachable(), "000", "still banned");
        sh(host(), `fail2ban-client set ssh-iptables unbanip ${attacker().v4}`);
        assert.equal(reachable(), "301");
        assert.equal(applyFromWorkstation(lab, stack).code, 0);
    });

    it("rolls back by itself a trusted list that leaves the workstation out", () => {
        const rulesBefore = sh(host(), "iptables-save -t filter | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'").stdout;
        const run = applyFromWorkstation(lab, labStackFile(lab, "lockout-firewall", { firewall: { trusted: ["198.51.100.99"] } }));
        assert.equal(run.code, 1);
        assert.equal(statuses(run.report).firewall, "rolled-back");
        assert.match(run.report!.concerns[0].message!, /a new SSH login failed after activation/);
        assert.ok(sshWorks(), "the workstation still gets in");
        assert.equal(sh(host(), "iptables-save -t filter | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'").stdout, rulesBefore);
    });

    it("rolls back an sshd option that breaks login", () => {
        // Passes `sshd -t` and the effective-config check, but no client of mor-harden speaks it.
        const run = applyFromWorkstation(lab, labStackFile(lab, "lockout-sshd", { sshd: { ciphers: ["aes192-ctr"] } }));
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.deepEqual(statuses(run.report), { firewall: "unchanged", sshd: "rolled-back" });
        assert.ok(sshWorks());
        assert.ok(!sh(host(), "sshd -T").stdout.includes("ciphers aes192-ctr\n"));
    });

    it("refuses a certificate that does not match its key, leaving Apache serving", () => {
        sh(workstation(), `openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -out ${lab.state.dir}/wrong.key`);
        const run = applyFromWorkstation(lab, labStackFile(lab, "wrong-key", { apache: { keyFile: `${lab.state.dir}/wrong.key` } }));
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.equal(statuses(run.report).apache, "rolled-back");
        assert.match(run.report!.concerns.at(-1)!.message!, /validate failed.*the certificate does not match its private key/s);
        assert.ok(!JSON.stringify(run.report).includes("PRIVATE KEY"));
        assert.equal(sh(attacker(), `curl -sk -o /dev/null -w '%{http_code}' https://${host().v4}/`, 10_000).stdout, "200");
    });

    it("rolls back by itself when the operator's connection dies mid-apply, and the next apply converges", async () => {
        const lockout = labStackFile(lab, "killed", { firewall: { trusted: ["198.51.100.99"] }, connection: { confirmTimeout: 6, connectTimeout: 30 } });
        const [command, ...args] = execArgv(workstation(), ["node", CLI_FILE, "apply", "--config", lockout]);
        const child = spawn(command, args, { detached: true, stdio: "ignore" });
        try {
            // Wait (bounded) for the change to be live and waiting for its confirmation, then cut the operator off.
            const deadline = Date.now() + 30_000;
            const badRulesLive = () =>
                sh(host(), "ls /var/lib/mor-harden/tx/*/pending >/dev/null 2>&1 && iptables -S MORH-INPUT | grep -q 198.51.100.99").code === 0;
            while (Date.now() < deadline && !badRulesLive()) await new Promise((r) => setTimeout(r, 100));
            assert.ok(badRulesLive(), "the apply reached its confirmation step");
        } finally {
            process.kill(-child.pid!, "SIGKILL");
        }
        assert.ok(!sshWorks(), "while unconfirmed, the bad rules are live");
        await new Promise((r) => setTimeout(r, 8_000));
        assert.ok(sshWorks(), "the host rolled itself back within the confirm timeout");
        const next = applyFromWorkstation(lab, stack);
        assert.equal(next.code, 0, next.stdout + next.stderr);
        assert.equal(statuses(next.report).firewall, "unchanged");
    });

    it("finds no protocol or cipher below Mozilla intermediate (testssl.sh)", () => {
        const name = `${host().name}.lab.example`;
        const report = sh(attacker(), `testssl --quiet --color 0 --nodns none --protocols --std --ip ${host().v4} https://${name}/`, 180_000).stdout;
        for (const protocol of ["SSLv2", "SSLv3", "TLS 1 ", "TLS 1.1"])
            assert.match(report, new RegExp(`^ ${protocol.replace(".", "\\.")}\\s+not offered`, "m"), protocol);
        assert.match(report, /^ TLS 1\.2\s+offered \(OK\)/m);
        assert.match(report, /^ TLS 1\.3\s+offered \(OK\)/m);
        for (const category of ["NULL ciphers", "Export ciphers", "LOW: 64 Bit", "Triple DES Ciphers", "Obsolete CBC ciphers"]) {
            assert.match(report, new RegExp(`^ ${category.replace(/[()+]/g, ".")}.*not offered`, "m"), category);
        }
        assert.match(report, /^ Strong encryption \(AEAD ciphers\)\s+offered \(OK\)/m);
    });

    it("trusts a source given by host name, resolved where mor-harden runs", () => {
        const byName = labStackFile(lab, "trusted-by-name", { firewall: { trusted: ["workstation.lab.example"] } });
        const run = applyFromWorkstation(lab, byName);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        // The name resolves to exactly the workstation's two addresses, which the stack so far named
        // directly: the same ruleset, so nothing to change.
        assert.equal(statuses(run.report).firewall, "unchanged");
        assert.match(sh(host(), "iptables -S MORH-INPUT").stdout, /-s 198\.51\.100\.10\/32 -j MORH-TRUSTED/);
        assert.match(sh(host(), "ip6tables -S MORH-INPUT").stdout, /-s 2001:db8:51::10\/128 -j MORH-TRUSTED/);
        assert.equal(applyFromWorkstation(lab, stack).code, 0);
    });

    it("refuses to add rules when the other iptables backend holds some", () => {
        sh(host(), "iptables-legacy -A INPUT -s 192.0.2.250 -j DROP");
        try {
            const run = applyFromWorkstation(lab, labStackFile(lab, "backends", { firewall: { allowPing: false } }));
            assert.equal(statuses(run.report).firewall, "rolled-back");
            assert.match(run.report!.concerns[0].message!, /the legacy backend also holds rules/);
        } finally {
            sh(host(), "iptables-legacy -F INPUT");
        }
        assert.ok(sshWorks());
    });

    it("comes back after a reboot: netfilter-persistent loads the rules, fail2ban its sets and their rules", async () => {
        const rules = () =>
            sh(host(), "iptables-save -t filter | grep -E '^(:|-A)' | grep -v -e f2b -e 'match-set morh-ban-' | sed 's/\\[[0-9:]*\\]//' | sort").stdout;
        const before_ = rules();
        // A reboot's firewall: nothing loaded, then the boot scripts.
        sh(host(), "iptables -P INPUT ACCEPT; iptables -F; iptables -X; ip6tables -P INPUT ACCEPT; ip6tables -F; ip6tables -X");
        assert.equal(
            sh(host(), "/usr/share/netfilter-persistent/plugins.d/15-ip4tables start && /usr/share/netfilter-persistent/plugins.d/25-ip6tables start").code,
            0,
        );
        assert.equal(rules(), before_);
        sh(host(), "fail2ban-client restart >/dev/null");
        // fail2ban's ban action makes its sets at start, and puts their rules before mor-harden's
        // jump: one jail after another, after fail2ban-client restart has returned.
        const setRules = /^(-A INPUT -m set --match-set morh-ban-\S+ src -j REJECT --reject-with icmp-port-unreachable\n){8}-A INPUT -j MORH-INPUT$/m;
        assert.ok(
            await waitFor(() => setRules.test(sh(host(), "iptables -S INPUT").stdout), 60_000),
            `the eight jails' set rules come first in INPUT:\n${sh(host(), "iptables -S INPUT").stdout}`,
        );
        assert.equal(sh(host(), "fail2ban-client set ssh-iptables banip 203.0.113.99").code, 0);
        // banip runs the ban's action before it answers (fail2ban's Actions.addBannedIP).
        assert.equal(sh(host(), `ipset test ${sshBanSet} 203.0.113.99`).code, 0);
        sh(host(), "fail2ban-client set ssh-iptables unbanip 203.0.113.99");
        assert.ok(sshWorks());
    });

    it("takes a changed SSH rate limit into the kernel, raised and lowered again", () => {
        // The kernel keeps a hashlimit table's settings while a rule names it: with the same name
        // the old 20 a minute went on dropping after the raise.
        const raised = applyFromWorkstation(lab, labStackFile(lab, "rate-raised", { firewall: { sshRateLimit: { perMinute: 50, burst: 50 } } }));
        assert.equal(raised.code, 0, raised.stdout + raised.stderr);
        const [connected] = newSshConnections(40);
        assert.equal(connected, 40, "all 40 within the raised burst of 50 (the apply's own logins took at most 3)");
        // Lowered again for the next test, which judges the default limit from a fresh table.
        const lowered = applyFromWorkstation(lab, stack);
        assert.equal(lowered.code, 0, lowered.stdout + lowered.stderr);
    });

    it("drops too many new SSH connections per minute from one source", () => {
        // Last: it spends the workstation's SSH budget for the minute.
        const [connected, seconds] = newSshConnections(40);
        // hashlimit lets a burst of 20 through, then refills at 20 a minute.
        const allowed = 20 + Math.ceil((20 * seconds) / 60);
        assert.ok(connected >= 1, "the first connections get through");
        assert.ok(connected <= allowed, `${connected} of 40 new connections got through in ${seconds} s (at most ${allowed} allowed)`);
        assert.ok(connected < 40 - 10, `${connected} of 40: the excess was dropped`);
    });
});
