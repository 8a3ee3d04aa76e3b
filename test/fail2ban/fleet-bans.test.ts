// `mor-harden bans` and `mor-harden unban` on an environment of two lab hosts, from the
// workstation: bans listed per host and jail with since and until (or permanent), narrowed by
// --jail and --host; a bad address refused before any host is touched; unbans through fail2ban
// (an IPv6 address however it is written), reported per host, that let the attacker back in over
// IPv4 and IPv6 and that fail2ban's database keeps (gone after a restart too).
import assert from "node:assert/strict";
import { needs } from "../helpers/needs";
import type { HostBans } from "../../src/fail2ban/bans";
import { waitFor } from "../helpers/faults";
import { cliFromWorkstation, labEnvironmentFile, sh, startTestLab, tcpConnect, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
let stack: string;
const attacker = () => lab.client("attacker");
const cli = (...args: string[]) => cliFromWorkstation(lab, args);
const bansJson = (...args: string[]) => {
    const run = cli("bans", "--config", stack, "--json", ...args);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    return JSON.parse(run.stdout) as HostBans[];
};
const banned = (host: number, jail: string) => sh(lab.host(host), `fail2ban-client status ${jail}`).stdout;

before(async () => {
    lab = await startTestLab(2);
    stack = labEnvironmentFile(lab, "bans");
    const apply = cli("apply", "--config", stack, "--concurrency", "2");
    assert.equal(apply.code, 0, apply.stdout + apply.stderr);
    const ban = (host: number, jail: string, ...addresses: string[]) =>
        assert.equal(sh(lab.host(host), `fail2ban-client set ${jail} banip ${addresses.join(" ")}`).code, 0);
    ban(1, "asterisk-manager", attacker().v4, attacker().v6, "198.18.0.9");
    ban(2, "mor_ddos", attacker().v4);
    ban(2, "ast-hgc-200", attacker().v6, "198.18.0.9");
});
after(() => lab?.stop());

describe("fleet ban operations", () => {
    it("lists each host's bans by jail, with since and until or permanent", () => {
        const results = bansJson();
        assert.deepEqual(
            results.map((result) => [result.host, result.error]),
            [
                ["mor-1", undefined],
                ["mor-2", undefined],
            ],
        );
        const [one, two] = results;
        assert.deepEqual(
            one.bans!.map((ban) => `${ban.jail} ${ban.address} ${ban.permanent}`).sort(),
            [`asterisk-manager ${attacker().v4} true`, `asterisk-manager ${attacker().v6} true`, "asterisk-manager 198.18.0.9 true"].sort(),
        );
        const ddos = two.bans!.find((ban) => ban.jail === "mor_ddos")!;
        assert.equal(ddos.address, attacker().v4);
        assert.equal(ddos.permanent, false);
        assert.equal(Date.parse(ddos.until!) - Date.parse(ddos.since), 3600_000, "mor_ddos bans for an hour");
        assert.ok(Math.abs(Date.parse(ddos.since) - Date.now()) < 120_000);
        assert.equal(one.bans![0].until, null);
        const text = cli("bans", "--config", stack);
        assert.match(text.stdout, /^== lab\/mor-2 \(192\.0\.2\.\d+\): 3 ban\(s\)$/m);
        assert.match(text.stdout, /^ {2}mor_ddos +203\.0\.113\.66 +since \S+ {2}until \S+$/m);
    });

    it("narrows to a jail and to a host", () => {
        assert.deepEqual(
            bansJson("--jail", "mor_ddos").map((result) => result.bans!.length),
            [0, 1],
        );
        assert.deepEqual(
            bansJson("--host", "mor-2", "--jail", "ast-hgc-200").map((result) => [result.host, result.bans!.length]),
            [["mor-2", 2]],
        );
        const unknown = cli("bans", "--config", stack, "--json", "--jail", "no-such-jail");
        assert.equal(unknown.code, 1, "a host that could not answer");
        assert.match((JSON.parse(unknown.stdout) as HostBans[])[0].error!, /no jail no-such-jail/);
    });

    it("refuses a bad address before touching any host", () => {
        const run = cli("unban", attacker().v4, "203.0.113.300", "--config", stack);
        assert.equal(run.code, 2, run.stdout + run.stderr);
        assert.match(run.stderr, /"203\.0\.113\.300" is not an IPv4 or IPv6 address/);
        assert.match(banned(1, "asterisk-manager"), new RegExp(attacker().v4.replace(/\./g, "\\.")), "nothing was unbanned");
    });

    it("unbans through fail2ban on every host, reporting per host; the attacker gets back in over IPv4 and IPv6, also after a restart", async () => {
        assert.notEqual(tcpConnect(attacker(), lab.host(1).v4, 443), "open");
        // The IPv6 address written otherwise than fail2ban writes it (upper case, a zero group):
        // still the same address, and reported as fail2ban holds it.
        const otherwise = attacker().v6.toUpperCase().replace("::", ":0::");
        assert.notEqual(otherwise, attacker().v6);
        const run = cli("unban", attacker().v4, otherwise, "--config", stack, "--json");
        assert.equal(run.code, 0, run.stdout + run.stderr);
        const results = JSON.parse(run.stdout) as HostBans[];
        assert.deepEqual(
            results[0].unbanned!.map((ban) => `${ban.jail} ${ban.address}`).sort(),
            [`asterisk-manager ${attacker().v4}`, `asterisk-manager ${attacker().v6}`].sort(),
        );
        assert.deepEqual(
            results[1].unbanned!.map((ban) => `${ban.jail} ${ban.address}`).sort(),
            [`ast-hgc-200 ${attacker().v6}`, `mor_ddos ${attacker().v4}`].sort(),
        );
        for (const host of [1, 2]) {
            assert.equal(tcpConnect(attacker(), lab.host(host).v4, 443), "open", `mor-${host} IPv4`);
            assert.equal(tcpConnect(attacker(), lab.host(host).v6, 443), "open", `mor-${host} IPv6`);
        }
        assert.equal(sh(lab.host(1), "fail2ban-client restart", 60_000).code, 0);
        // fail2ban restores its bans in the jails' threads, after the restart has returned: wait for the one that comes back.
        assert.ok(await waitFor(() => bansJson("--host", "mor-1")[0].bans!.some((ban) => ban.address === "198.18.0.9"), 60_000), "198.18.0.9 is restored");
        const after = bansJson("--host", "mor-1");
        assert.deepEqual(
            after[0].bans!.map((ban) => ban.address),
            ["198.18.0.9"],
            "fail2ban's database agrees: only the other ban comes back",
        );
        assert.equal(tcpConnect(attacker(), lab.host(1).v4, 443), "open", "after the restart");
        const again = cli("unban", attacker().v4, "--config", stack, "--host", "mor-1");
        assert.match(again.stdout, /^lab\/mor-1 \(192\.0\.2\.\d+\): not banned: 203\.0\.113\.66$/m);
    });
});
