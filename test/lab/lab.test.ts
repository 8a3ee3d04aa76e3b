// The lab itself: two hosts reachable over SSH with their pinned keys, firewalls that act
// inside a host only, and nothing left behind.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { needs } from "../helpers/needs";
import { isRunning, knownHostsPath, labExec, listLabNamespaces, readHostFile } from "../../src/lab/lab";
import { sh, startTestLab, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const machineRules = () => execFileSync("sh", ["-c", "iptables-save -t filter | grep -v '^#'; ip6tables-save -t filter | grep -v '^#'"], { encoding: "utf8" });
let rulesBefore: string;

before(async () => {
    rulesBefore = machineRules();
    lab = await startTestLab(2);
});
after(() => lab?.stop());

function sshFromWorkstation(address: string, knownHosts: string, command: string) {
    const options = [
        "-i",
        lab.state.operatorKey,
        "-o",
        `UserKnownHostsFile=${knownHosts}`,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
    ];
    return sh(lab.client("workstation"), `ssh ${options.join(" ")} root@${address} ${command}`, 20_000);
}

describe("the lab", () => {
    it("runs sshd, apache2, fail2ban and rsyslog in each host", () => {
        for (const host of lab.state.hosts) {
            const result = sh(host, 'for p in sshd apache2 fail2ban-server rsyslogd; do pgrep -x $p >/dev/null || echo "$p is not running"; done');
            assert.equal(result.stdout, "", host.name);
            assert.equal(readHostFile(host, "/etc/hostname").trim(), host.name);
        }
    });

    it("lets the workstation log in to both hosts with the pinned host keys, over IPv4 and IPv6", () => {
        for (const host of lab.state.hosts) {
            const v4 = sshFromWorkstation(host.v4, knownHostsPath(lab.state.dir), "hostname");
            assert.equal(v4.stdout.trim(), host.name, v4.stderr);
            const v6 = sshFromWorkstation(host.v6, knownHostsPath(lab.state.dir), "hostname");
            assert.equal(v6.stdout.trim(), host.name, v6.stderr);
        }
    });

    it("gives each host its own host key, so a key pinned for one host is refused by the other", () => {
        const [first, second] = lab.state.hosts;
        assert.notEqual(first.hostKey, second.hostKey);
        const wrong = join(lab.state.dir, "wrong_known_hosts");
        writeFileSync(wrong, `${second.v4} ${first.publicKey}\n`);
        const result = sshFromWorkstation(second.v4, wrong, "hostname");
        assert.notEqual(result.code, 0);
        assert.match(result.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    });

    it("keeps a host's firewall inside that host", () => {
        const [first, second] = lab.state.hosts;
        const attacker = lab.client("attacker");
        const fetch = (address: string) => sh(attacker, `curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://${address}/`, 10_000);
        assert.equal(fetch(first.v4).stdout, "200", "the attacker reaches port 80 before the rule");
        assert.equal(sh(first, `iptables -I INPUT -s ${attacker.v4} -p tcp --dport 80 -j DROP`).code, 0);
        try {
            assert.equal(fetch(first.v4).stdout, "000", "the attacker no longer reaches the firewalled port");
            assert.equal(
                sh(lab.client("workstation"), `curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://${first.v4}/`).stdout,
                "200",
                "the workstation still does",
            );
            assert.equal(fetch(second.v4).stdout, "200", "the other host is not affected");
            assert.equal(machineRules(), rulesBefore, "the machine's own rules are untouched");
        } finally {
            sh(first, `iptables -D INPUT -s ${attacker.v4} -p tcp --dport 80 -j DROP`);
        }
    });

    it("gives a command's output of any size, captured (labExec) and relayed (lab exec's labRelay), with its exit code", () => {
        const [host] = lab.state.hosts;
        // 5 MiB of numbered lines, then exit 3: more than spawnSync's default buffer of 1 MiB.
        const print = ["sh", "-c", "seq 1 700000 | sed 's/$/ mor-harden/'; exit 3"];
        const expected = execFileSync("sh", ["-c", "seq 1 700000 | sed 's/$/ mor-harden/'"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
        assert.ok(expected.length > 5 * 1024 * 1024, `${expected.length} bytes`);
        const captured = labExec(host, print);
        assert.equal(captured.code, 3, captured.stderr);
        assert.equal(captured.stdout.length, expected.length);
        assert.ok(captured.stdout === expected, "the captured output is whole");
        const relay = `require(${JSON.stringify(join(__dirname, "..", "..", "src", "lab", "lab.js"))}).labRelay(${JSON.stringify(host)}, ${JSON.stringify(print)}) === 3 || process.exit(9)`;
        const relayed = spawnSync("node", ["-e", relay], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
        assert.equal(relayed.status, 0, `labRelay gave the command's exit code: ${relayed.stderr}`);
        assert.ok(relayed.stdout === expected, `the relayed output is whole (${relayed.stdout.length} of ${expected.length} bytes)`);
    });

    it("leaves nothing behind when stopped", () => {
        const { prefix, hosts, dir } = lab.state;
        const pids = hosts.flatMap((host) => [host.ownerPid, host.initPid]);
        lab.stop();
        assert.deepEqual(listLabNamespaces(prefix), []);
        for (const pid of pids) assert.ok(!isRunning(pid), `process ${pid} is gone`);
        assert.ok(!existsSync(dir));
        assert.equal(machineRules(), rulesBefore);
        assert.ok(!execFileSync("cat", ["/proc/mounts"], { encoding: "utf8" }).includes(dir));
    });
});

describe("lab start-up", () => {
    it("is harmless twice, and cleans up after a failed start", async () => {
        const { mkdtempSync, rmSync } = await import("node:fs");
        const { tmpdir } = await import("node:os");
        const { labUp, labDown } = await import("../../src/lab/lab");
        const dir = mkdtempSync(join(tmpdir(), "mor-harden-lab-"));
        const prefix = `mhu${process.pid % 100000}-`;
        try {
            const first = await labUp(dir, 1, prefix);
            const second = await labUp(dir, 1, prefix);
            assert.equal(second.hosts[0].initPid, first.hosts[0].initPid, "the running host was kept");
            labDown(dir, prefix);
            // A host that cannot be ready in 1 ms: the start fails after the switch, the clients and
            // the host's namespaces were made, and must take them all down with it.
            await assert.rejects(labUp(dir, 1, prefix, { startTimeoutMs: 1 }), /did not start within 0\.001 s/);
            assert.deepEqual(listLabNamespaces(prefix), []);
        } finally {
            labDown(dir, prefix);
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
