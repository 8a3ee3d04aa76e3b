// The guide's jails banning for real on a lab host: wrong SSH logins from the attacker, log lines
// appended as Asterisk, MOR and Apache write them, sipvicious; bans in mor-harden's ipsets, never
// through the per-jail actions of MOR's jail.conf; bans made before the switch carried over (those
// fail2ban lists, and one only a chain of MOR's actions holds, which fail2ban holds after the switch);
// permanent bans surviving a fail2ban restart and a firewall apply; the trusted workstation never banned.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { needs } from "../helpers/needs";
import { BAN_ACTION, banSets } from "../../src/fail2ban/ban-action";
import { effectiveJails } from "../../src/fail2ban/render";
import { jailDefaults, jailNames, type JailName } from "../../src/fail2ban/schema";
import type { LabNode } from "../../src/lab/lab";
import { findTemplatesDir } from "../../src/render/templates";
import { parseSamples } from "../helpers/fail2ban-regex";
import { minimalConfig, renderInputFor } from "../helpers/fixtures";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, tcpConnect, type TestLab } from "../helpers/lab";
import { actionsByJail, morJailConf } from "../helpers/mor-jails";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const host = () => lab.host(1);
const attacker = () => lab.client("attacker");
const workstation = () => lab.client("workstation");

const SSH_BANTIME = 10;
/**
 * SSH open to everyone (the jail matters most there) and a short SSH ban, so the test sees it lift;
 * the guide's permanent bans for forgeable evidence too (fail2ban.forgeableBantime), so the scanner
 * jail's bans below are permanent ones (forged.test.ts tests the bounded default).
 */
const stackChange = (firewall: Record<string, unknown> = {}) => ({
    firewall: { services: { ssh: "public" }, ...firewall },
    fail2ban: { forgeableBantime: "permanent", jails: { "ssh-iptables": { bantime: SSH_BANTIME } } },
});

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (check()) return;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
    }
}

function banned(jail: string): string[] {
    const status = sh(host(), `fail2ban-client status ${jail}`, 15_000);
    assert.equal(status.code, 0, status.stderr);
    return /Banned IP list:\s*(.*)$/m.exec(status.stdout)?.[1].trim().split(/\s+/).filter(Boolean) ?? [];
}

/** The ban times of the stack below, by jail (the set a ban goes to depends on it). */
const bantimes: Record<string, number> = { "ssh-iptables": SSH_BANTIME, recidive: 604800 };
/** The ipset a ban of `jail` on `address` is in. */
function banSet(jail: string, address: string): string {
    const bantime = jail in bantimes ? bantimes[jail] : jailDefaults[jail as JailName].bantime;
    return `${banSets(jail, bantime === "permanent" ? -1 : bantime).set}-${address.includes(":") ? 6 : 4}`;
}
const inSet = (jail: string, address: string) => sh(host(), `ipset test ${banSet(jail, address)} ${address} 2>/dev/null`).code === 0;

/** Waits until `jail` bans `address` and it is in the jail's ipset (fail2ban lists a ban a moment before its action has run). */
async function waitForBan(jail: string, address: string, timeoutMs: number): Promise<void> {
    await waitFor(`${jail} bans ${address} (ipset ${banSet(jail, address)})`, () => banned(jail).includes(address) && inSet(jail, address), timeoutMs);
}

/** One SSH login attempt with a key the host does not know: what the client printed. */
function wrongKeyLogin(from: LabNode, address: string): string {
    const attempt = sh(
        from,
        `k=$(mktemp -u) && ssh-keygen -q -t ed25519 -N '' -f "$k" && ssh -i "$k" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 root@${address} true; rm -f "$k" "$k.pub"`,
        20_000,
    );
    return attempt.stderr;
}

const connect = (from: LabNode, address: string, port: number) => tcpConnect(from, address, port, 4);

/** Addresses banned before mor-harden's first apply, through the actions of MOR's jail.conf. */
const earlierBans = () => [
    { jail: "asterisk-manager", address: attacker().v6 },
    { jail: "asterisk-manager", address: "198.18.0.7" },
    { jail: "asterisk-iptables", address: "198.18.0.8" },
];
/** A ban only MOR's chain for asterisk-manager holds (f2b-ASTERISK_AMI, from its action's name=ASTERISK_AMI): fail2ban does not list it before the switch. */
const chainOnlyBan = { jail: "asterisk-manager", chain: "f2b-ASTERISK_AMI", address: "198.18.0.10" };

before(async () => {
    lab = await startTestLab(1);
    // The host as MOR left it: jails with per-jail actions in jail.conf, some bans in their chains.
    const mor = sh(
        host(),
        `printf '%s' '${morJailConf}' >> /etc/fail2ban/jail.conf && fail2ban-client reload >/dev/null && ${earlierBans()
            .map((ban) => `fail2ban-client set ${ban.jail} banip ${ban.address} >/dev/null`)
            .join(" && ")}`,
        60_000,
    );
    assert.equal(mor.code, 0, mor.stderr);
    await waitFor(
        "the earlier bans are in MOR's chains",
        () => /f2b-ASTERISK_AMI .*-j REJECT/.test(sh(host(), "ip6tables -S").stdout) && /f2b-ASTERISK_AMI .*-j REJECT/.test(sh(host(), "iptables -S").stdout),
        15_000,
    );
    assert.equal(sh(host(), `iptables -w -I ${chainOnlyBan.chain} 1 -s ${chainOnlyBan.address} -j REJECT`).code, 0);
    assert.notEqual(connect(attacker(), host().v6, 443), "open", "banned before the switch");
    const run = applyFromWorkstation(lab, labStackFile(lab, "bans", stackChange()));
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.deepEqual(statuses(run.report), { firewall: "applied", sshd: "applied", fail2ban: "applied", apache: "applied" });
});
after(() => lab?.stop());

describe("fail2ban bans live on a lab host", () => {
    it("bans through mor-harden's ipset action only: fail2ban-client -d on a host whose jail.conf has per-jail actions", async () => {
        const dump = sh(host(), "fail2ban-client -d 2>/dev/null", 30_000);
        assert.equal(dump.code, 0, dump.stderr);
        assert.match(
            sh(host(), "cat /etc/fail2ban/jail.conf").stdout,
            /^action {3}= iptables\[name=SSH, port=ssh, protocol=tcp\]$/m,
            "MOR's per-jail actions are still in jail.conf",
        );
        const actions = actionsByJail(dump.stdout);
        for (const jail of [...jailNames, "recidive"]) assert.deepEqual(actions[jail], [BAN_ACTION], jail);
        const input = sh(host(), "iptables -S INPUT; ip6tables -S INPUT").stdout;
        assert.doesNotMatch(input, /f2b-/, "no chain of the earlier actions is left");
        for (const jail of effectiveJails(await renderInputFor(minimalConfig())).map((jail) => jail.name)) {
            for (const family of [4, 6])
                assert.match(
                    input,
                    new RegExp(`^-A INPUT -m set --match-set ${banSet(jail, family === 4 ? "0.0.0.0" : "::")} src -j REJECT`, "m"),
                    `${jail} IPv${family}`,
                );
        }
    });

    it("carries the bans made before the switch into the sets, and lifts one through fail2ban", async () => {
        for (const { jail, address } of earlierBans()) {
            assert.ok(banned(jail).includes(address), `fail2ban still lists ${address} in ${jail}`);
            assert.ok(inSet(jail, address), `${address} is in ${banSet(jail, address)}`);
        }
        // Only in MOR's chain before the switch: the ban action handed it to fail2ban, which can lift it.
        await waitForBan(chainOnlyBan.jail, chainOnlyBan.address, 15_000);
        assert.notEqual(connect(attacker(), host().v6, 443), "open", "the attacker's earlier IPv6 ban holds after the switch");
        assert.equal(sh(host(), `fail2ban-client set asterisk-manager unbanip ${attacker().v6}`).code, 0);
        assert.ok(!inSet("asterisk-manager", attacker().v6));
        assert.equal(connect(attacker(), host().v6, 443), "open", "unbanned");
    });

    it("bans the attacker at the third wrong SSH login (the fourth connection is refused) and lifts the ban after its time", async () => {
        const address = host().v4;
        for (let attempt = 1; attempt <= 3; attempt++) assert.match(wrongKeyLogin(attacker(), address), /Permission denied/, `attempt ${attempt} reaches sshd`);
        await waitForBan("ssh-iptables", attacker().v4, 15_000);
        assert.match(wrongKeyLogin(attacker(), address), /Connection refused/, "the fourth connection is refused");
        assert.equal(connect(attacker(), address, 443), "refused", "the ban covers every port");
        await waitFor(
            "the SSH ban lifts",
            () => !banned("ssh-iptables").includes(attacker().v4) && !inSet("ssh-iptables", attacker().v4),
            (SSH_BANTIME + 15) * 1000,
        );
        assert.match(wrongKeyLogin(attacker(), address), /Permission denied/, "sshd answers again after the ban time");
    });

    it("never bans the trusted workstation, whatever it gets wrong", async () => {
        for (let attempt = 1; attempt <= 4; attempt++) assert.match(wrongKeyLogin(workstation(), host().v4), /Permission denied/);
        await new Promise((resolve) => setTimeout(resolve, 3000));
        assert.ok(!banned("ssh-iptables").includes(workstation().v4));
        assert.equal(connect(workstation(), host().v4, 22), "open");
    });

    it("bans the address named in appended Asterisk, AMI, HGC, API and Apache log lines, over IPv4 and IPv6", async () => {
        // Each jail's own sample lines (templates/fail2ban/filter.d/*.sample.log), stamped now,
        // naming an address of their own; one AMI line names the trusted workstation.
        assert.equal(connect(attacker(), host().v6, 443), "open", "before the AMI lines");
        const now = sh(host(), "date '+%Y-%m-%d %H:%M:%S|%b %e %H:%M:%S|%d/%b/%Y:%H:%M:%S %z'").stdout.trim().split("|");
        const restamp = (line: string) =>
            line
                .replace(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]/, `[${now[0]}]`)
                .replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, now[0])
                .replace(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d/, now[1])
                .replace(/\[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]/, `[${now[2]}]`);
        const cases: { jail: JailName; from: string; as: string; log: string }[] = [
            { jail: "asterisk-iptables", from: "203.0.113.66", as: "203.0.113.101", log: "/var/log/asterisk/messages" },
            { jail: "asterisk-manager", from: "2001:db8:113::66", as: attacker().v6, log: "/var/log/asterisk/messages" },
            { jail: "asterisk-manager", from: "203.0.113.66", as: workstation().v4, log: "/var/log/asterisk/messages" },
            { jail: "ast-hgc-200", from: "203.0.113.66", as: "203.0.113.103", log: "/var/log/asterisk/messages" },
            { jail: "mor_api", from: "203.0.113.66", as: "203.0.113.104", log: "/var/log/apache2/access.log" },
            { jail: "mor_ddos", from: "203.0.113.66", as: "203.0.113.105", log: "/var/log/apache2/access.log" },
        ];
        for (const { jail, from, as, log } of cases) {
            const sample = parseSamples(readFileSync(join(findTemplatesDir(), "fail2ban", "filter.d", `${jail}.sample.log`), "utf8"));
            const failing = sample.sections[0].lines.filter((line) => line.expect.match && line.expect.host === from).map((line) => line.text);
            assert.ok(failing.length > 0, `${jail}.sample.log has failures of ${from}`);
            const count = jailDefaults[jail].maxretry;
            const lines = Array.from({ length: count }, (_, i) =>
                restamp(failing[i % failing.length])
                    .split(from)
                    .join(as),
            );
            const write = sh(host(), `printf '%s\\n' ${lines.map((line) => `'${line.replace(/'/g, `'\\''`)}'`).join(" ")} >> ${log}`, 10_000);
            assert.equal(write.code, 0, write.stderr);
        }
        for (const { jail, as } of cases.filter((c) => c.as !== workstation().v4)) await waitForBan(jail, as, 20_000);
        // Refused or unanswered: the ban also drops the on-link attacker's neighbour advertisements,
        // so the host may not get its ICMPv6 error out.
        assert.notEqual(connect(attacker(), host().v6, 443), "open", "the AMI ban covers every port over IPv6");
        assert.ok(!banned("asterisk-manager").includes(workstation().v4), "the workstation is in ignoreip");
        assert.equal(connect(workstation(), host().v4, 22), "open");
    });

    it("bans sipvicious from the attacker permanently, through the firewall's User-Agent match", async () => {
        assert.equal(connect(attacker(), host().v4, 443), "open");
        const scan = sh(attacker(), `timeout 20 svmap -p5060 ${host().v4} 2>&1`, 30_000);
        assert.notEqual(scan.code, 124, "svmap ends by itself");
        await waitForBan("ast-cli-attck", attacker().v4, 20_000);
        assert.equal(sh(host(), "fail2ban-client get ast-cli-attck bantime").stdout.trim(), "-1", "permanently");
        assert.match(sh(host(), "cat /var/log/ulog/syslogemu.log").stdout, new RegExp(`MORH-SIPSCAN .*SRC=${attacker().v4.replace(/\./g, "\\.")} .*DPT=5060`));
        assert.equal(connect(attacker(), host().v4, 443), "refused");
    });

    it("keeps a permanent ban across a fail2ban restart (loaded in bulk, no command a ban) and a firewall apply", async () => {
        const restart = sh(host(), "fail2ban-client restart", 60_000);
        assert.equal(restart.code, 0, restart.stderr);
        await waitForBan("ast-cli-attck", attacker().v4, 30_000);
        assert.ok(inSet("asterisk-manager", "198.18.0.7"), "a carried-over ban too");
        assert.match(sh(host(), "cat /var/log/fail2ban.log").stdout, /\[ast-cli-attck\] Restore Ban 203\.0\.113\.66/, "fail2ban restored it from its database");
        assert.equal(connect(attacker(), host().v4, 443), "refused", "after the restart");

        const run = applyFromWorkstation(lab, labStackFile(lab, "bans-no-ping", stackChange({ allowPing: false })));
        assert.equal(run.code, 0, run.stderr);
        assert.equal(statuses(run.report).firewall, "applied");
        assert.ok(banned("ast-cli-attck").includes(attacker().v4));
        assert.equal(connect(attacker(), host().v4, 443), "refused", "after the firewall apply");
        assert.equal(connect(workstation(), host().v4, 22), "open");
    });

    it("restarts without the ban of an address the jails ignore since, and enforces a restored ban the journal missed", async () => {
        const [ignored, missed] = ["198.18.0.50", "198.18.0.51"];
        const journal = "/var/lib/mor-harden/fail2ban/ast-cli-attck.bans";
        assert.equal(sh(host(), `fail2ban-client set ast-cli-attck banip ${ignored} ${missed}`, 15_000).code, 0);
        await waitForBan("ast-cli-attck", ignored, 15_000);
        await waitForBan("ast-cli-attck", missed, 15_000);
        // The journal loses one ban (as one written by another version, or restored from a backup, might).
        assert.equal(sh(host(), `sed -i '/ ${missed.replace(/\./g, "\\.")}$/d' ${journal}`).code, 0);
        // The operator has the jails ignore the other one (fail2ban.ignoreip), then fail2ban restarts.
        const run = applyFromWorkstation(
            lab,
            labStackFile(lab, "bans-ignore", { ...stackChange({ allowPing: false }), fail2ban: { ...stackChange().fail2ban, ignoreip: [ignored] } }),
        );
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.equal(statuses(run.report).fail2ban, "applied");
        assert.equal(sh(host(), "fail2ban-client restart", 60_000).code, 0);
        await waitForBan("ast-cli-attck", missed, 30_000);
        assert.ok(!banned("ast-cli-attck").includes(ignored), "fail2ban does not restore an ignored address");
        assert.ok(!inSet("ast-cli-attck", ignored), "nor does the set");
        const kept = sh(host(), `cat ${journal}`).stdout;
        assert.match(kept, new RegExp(`^0 ${missed.replace(/\./g, "\\.")}$`, "m"), "the restored ban is in the journal again");
    });
});
