// The activation step that carries bans made before the switch to mor-harden's ban action into the
// jails' journals, run as rendered against a stand-in fail2ban (its socket client) and stand-in
// iptables/ip6tables printing a MOR host's rules: a chain is read as the jail's whose action bans
// into it, as the running fail2ban names it (MOR's iptables[name=SSH] is f2b-SSH), not by its name.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { carryOverBans } from "../../src/fail2ban/render";
import { fail2banStandIn } from "../helpers/fail2ban-socket";

const iptablesBan = (chain: string) => `<iptables> -I ${chain} 1 -s <ip> -j <blocktype>`;

/** fail2ban running MOR's jail.conf: per-jail actions with names of their own. */
const running = {
    "ssh-iptables": {
        bans: ["203.0.113.5"],
        actions: {
            // fail2ban 1.0's client fills <name> in itself; older ones leave the tag to the server.
            "iptables-SSH": { actionban: iptablesBan("f2b-SSH"), name: "SSH" },
            "sendmail-whois-SSH": { actionban: "printf %b 'Subject: banned <ip>' | sendmail root", name: "SSH" },
        },
    },
    "asterisk-manager": { bans: [], actions: { "iptables-allports-AST_MANAGER": { actionban: iptablesBan("f2b-<name>"), name: "AST_MANAGER" } } },
    // An action that bans straight into INPUT: INPUT is never read as one jail's.
    "asterisk-iptables": { bans: [], actions: { "iptables-new": { actionban: "<iptables> -I INPUT 1 -s <ip> -j DROP" } } },
    // Two jails banning into one chain: its bans go to the one with the shorter ban time.
    mor_api: { bans: [], actions: { "iptables-multiport-WEB": { actionban: iptablesBan("f2b-WEB"), name: "WEB" } } },
    mor_ddos: { bans: [], actions: { "iptables-multiport-WEB": { actionban: iptablesBan("f2b-WEB"), name: "WEB" } } },
    // mor-harden's own action is a Python one: no actionban.
    "ast-cli-attck": { bans: [], actions: { "mor-harden-ipset": { settimeout: "0" } } },
};

const rules = {
    iptables: [
        "-P INPUT ACCEPT",
        "-N f2b-SSH",
        "-N f2b-WEB",
        "-N f2b-ast-hgc-200",
        "-A INPUT -p tcp -m tcp --dport 22 -j f2b-SSH",
        "-A INPUT -s 198.18.0.99/32 -j DROP",
        "-A f2b-SSH -s 198.18.0.1/32 -j REJECT --reject-with icmp-port-unreachable",
        "-A f2b-SSH -j RETURN",
        "-A f2b-WEB -s 198.18.0.3/32 -j REJECT --reject-with icmp-port-unreachable",
        // No running jail bans into it: read by its name, f2b-<jail>.
        "-A f2b-ast-hgc-200 -s 198.18.0.4/32 -j DROP",
    ],
    ip6tables: ["-P INPUT ACCEPT", "-N f2b-AST_MANAGER", "-A f2b-AST_MANAGER -s 2001:db8::5/128 -j REJECT --reject-with icmp6-port-unreachable"],
};

const jails = [
    { name: "ssh-iptables", bantime: 600 },
    { name: "asterisk-iptables", bantime: 600 },
    { name: "ast-cli-attck", bantime: -1 },
    { name: "asterisk-manager", bantime: -1 },
    { name: "ast-hgc-200", bantime: -1 },
    { name: "mor_api", bantime: -1 },
    { name: "mor_ddos", bantime: 3600 },
];

describe("carrying earlier bans over", () => {
    it("reads each chain as the jail's whose action bans into it, as the running fail2ban names it", () => {
        const standIn = fail2banStandIn(running);
        try {
            for (const [tool, lines] of Object.entries(rules)) {
                writeFileSync(join(standIn.dir, "bin", tool), `#!/bin/sh\nprintf '%s\\n' ${lines.map((line) => `'${line}'`).join(" ")}\n`);
                chmodSync(join(standIn.dir, "bin", tool), 0o755);
            }
            const journals = join(standIn.dir, "journals");
            mkdirSync(journals);
            const started = Math.floor(Date.now() / 1000);
            const run = spawnSync("sh", ["-c", carryOverBans(jails, journals)], { encoding: "utf8", timeout: 30_000, env: standIn.env });
            assert.equal(run.status, 0, run.stderr);
            assert.equal(run.stdout, "MORH-NOTE fail2ban: 5 earlier ban(s) carried over into the ipsets\n");
            const read = (name: string) => (existsSync(join(journals, name)) ? readFileSync(join(journals, name), "utf8") : "");
            const journal = (jail: string) => read(`${jail}.bans`);
            /** A journal's lines, the ban's end as "permanent" (0) or "full ban time" (the jail's from the run). */
            const entries = (jail: string) => {
                const bantime = jails.find((candidate) => candidate.name === jail)!.bantime;
                return journal(jail)
                    .split("\n")
                    .filter(Boolean)
                    .map((line) => line.split(" "))
                    .map(([until, address]) => {
                        const left = Number(until) - started;
                        return `${until === "0" ? "permanent" : left >= bantime && left <= bantime + 5 ? "full ban time" : until} ${address}`;
                    });
            };
            assert.deepEqual(entries("ssh-iptables"), ["full ban time 203.0.113.5", "full ban time 198.18.0.1"], "fail2ban's list and MOR's f2b-SSH");
            assert.deepEqual(entries("asterisk-manager"), ["permanent 2001:db8::5"], "f2b-<name> filled with the action's name");
            assert.deepEqual(entries("mor_ddos"), ["full ban time 198.18.0.3"]);
            assert.deepEqual(entries("mor_api"), []);
            assert.deepEqual(entries("ast-hgc-200"), ["permanent 198.18.0.4"]);
            assert.deepEqual(entries("asterisk-iptables"), [], "a rule in INPUT is nobody's");
            for (const { name } of jails) {
                const journaled = entries(name).map((entry) => entry.split(" ").at(-1));
                assert.deepEqual(
                    read(`${name}.carried`).split("\n").filter(Boolean),
                    journaled,
                    `${name}: each carried ban listed for the ban action to hand to fail2ban`,
                );
            }
        } finally {
            standIn.cleanup();
        }
    });
});
