// Lab hosts of the MOR profile look as a MOR install leaves them (MOR's jails with their own
// actions and mail, MOR's filters reading MOR-format Asterisk lines, the GUI under /billing, on
// rhel iptables-services' stock firewall), and mor-harden's jails win over MOR's once applied.
import { BAN_ACTION } from "../../src/fail2ban/ban-action";
import assert from "node:assert/strict";
import { needs } from "../helpers/needs";
import { jailNames } from "../../src/fail2ban/schema";
import { LAB_MAILBOX, morJails } from "../../src/lab/mor-profile";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, tcpConnect, type TestLab } from "../helpers/lab";
import { inputChain } from "../helpers/rulesets";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const mor = () => lab.host(1);
const rhel = () => lab.host(2);

before(async () => {
    lab = await startTestLab(2, { profile: ["mor", "mor-rhel"] });
});
after(() => lab?.stop());

/** `fail2ban-client -d`'s action lines of one jail: [action name, its parameters as fail2ban resolved them]. */
/** The actions a jail RUNS (what the server has loaded, not what its config says). */
function jailActions(host = mor(), jail: string): string[] {
    const out = sh(host, `fail2ban-client get ${jail} actions`, 30_000).stdout.trim().split("\n");
    return out[0].startsWith("The jail")
        ? out
              .slice(1)
              .join(",")
              .split(",")
              .map((name) => name.trim())
              .filter(Boolean)
        : [];
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
    }
}

describe("MOR profile hosts before mor-harden", () => {
    it("run MOR's jails from jail.conf, each with its own action and MOR's mail", () => {
        for (const host of [mor(), rhel()]) {
            const status = sh(host, "fail2ban-client status", 15_000).stdout;
            for (const jail of morJails) assert.match(status, new RegExp(`\\b${jail.name}\\b`), `${host.name} runs ${jail.name}`);
        }
        // fail2ban names an action with a `name` parameter after both.
        assert.deepEqual(jailActions(mor(), "ssh-iptables"), ["iptables-SSH", "sendmail-whois-SSH"]);
        assert.deepEqual(jailActions(mor(), "asterisk-manager"), ["iptables-multiport-AST_MANAGER", "sendmail-whois-AST_MANAGER"]);
    });

    it("have MOR's filters, which read the MOR-format lines in Asterisk's messages log", () => {
        for (const [filter, wanted] of [
            ["asterisk_hgc_200", 1],
            ["asterisk_cli", 1],
            ["asterisk_manager", 1],
        ] as const) {
            const result = sh(mor(), `fail2ban-regex -o ip /var/log/asterisk/messages /etc/fail2ban/filter.d/${filter}.conf`, 30_000);
            assert.equal(result.code, 0, result.stderr);
            assert.deepEqual(result.stdout.trim().split("\n").filter(Boolean), Array(wanted).fill("203.0.113.9"), filter);
        }
    });

    it("serve MOR's GUI under /billing and keep MOR's log directory", () => {
        assert.match(sh(lab.client("workstation"), `curl -sk https://${mor().v4}/billing/callc/login/`, 15_000).stdout, /MOR login/);
        assert.match(sh(mor(), "cat /home/mor/log/production.log").stdout, /Started GET "\/billing/);
    });

    it("boot the rhel-like variant with iptables-services' stock firewall, SSH's log in /var/log/secure", () => {
        for (const family of ["v4", "v6"] as const) {
            const { rules } = inputChain(rhel(), family);
            assert.match(rules.at(-1) ?? "", /-j REJECT --reject-with icmp6?-(host|adm)-prohibited/, family);
        }
        assert.equal(sh(rhel(), "test -s /etc/sysconfig/iptables && test -s /etc/sysconfig/ip6tables && test -e /var/log/secure").code, 0);
        // icmp-host-prohibited: the client sees "No route to host", not a refusal.
        assert.notEqual(tcpConnect(lab.client("attacker"), rhel().v4, 443), "open", "the stock REJECT answers for ports it does not open");
    });

    it("ban by MOR's own ssh-iptables on port 22 only, and mail root", async () => {
        const attacker = lab.client("attacker");
        // A user that does not exist: MOR's stock sshd filter (normal mode) counts "Invalid user" lines.
        for (let attempt = 1; attempt <= 5; attempt++) {
            sh(
                attacker,
                `ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 admin${attempt}@${mor().v4} true`,
                20_000,
            );
        }
        await waitFor("MOR's ssh-iptables bans the attacker", () => sh(mor(), "iptables -S f2b-SSH 2>/dev/null").stdout.includes(attacker.v4), 20_000);
        assert.match(sh(mor(), "iptables -S INPUT").stdout, /-p tcp -m tcp --dport 22 -j f2b-SSH/, "MOR's ban covers SSH only");
        assert.equal(tcpConnect(attacker, mor().v4, 443), "open", "other ports stay open to the banned attacker");
        await waitFor(
            "root is mailed about the ban",
            () => sh(mor(), `grep -c 'banned ${attacker.v4.replace(/\./g, "\\.")}' ${LAB_MAILBOX}`).stdout.trim() !== "0",
            10_000,
        );
        assert.equal(sh(mor(), `fail2ban-client set ssh-iptables unbanip ${attacker.v4}`).code, 0);
    });
});

describe("mor-harden applied over MOR's jails", () => {
    before(() => {
        for (const index of [1, 2]) {
            const run = applyFromWorkstation(lab, labStackFile(lab, `mor-${index}`, { firewall: { services: { ssh: "public" } } }, index));
            assert.equal(run.code, 0, run.stderr);
            assert.deepEqual(statuses(run.report), { firewall: "applied", sshd: "applied", fail2ban: "applied", apache: "applied" });
        }
    });

    it("every guide jail bans with mor-harden's all-ports action alone (no MOR port list, no MOR mail)", () => {
        for (const host of [mor(), rhel()]) {
            for (const jail of jailNames) assert.deepEqual(jailActions(host, jail), [BAN_ACTION], `${host.name} ${jail}`);
        }
    });

    it("replaces iptables-services' stock REJECT on the rhel-like host", () => {
        for (const family of ["v4", "v6"] as const)
            assert.ok(!inputChain(rhel(), family).rules.some((rule) => /icmp6?-(host|adm)-prohibited/.test(rule)), family);
        assert.equal(tcpConnect(lab.client("workstation"), rhel().v4, 22), "open");
    });
});
