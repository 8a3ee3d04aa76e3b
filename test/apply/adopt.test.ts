// The first apply on hosts that already have a firewall: iptables-services' stock rules, a
// hand-made catch-all, ufw's chains, docker's chains with a fail2ban ban. Each state is loaded
// into the live tables of a fresh lab host of its own, then the lab stack is applied from the
// workstation and judged from outside: real logins and nmap over IPv4 and IPv6, iptables-save.
import assert from "node:assert/strict";
import { jailNames } from "../../src/fail2ban/schema";
import { randomBytes } from "node:crypto";
import { needs } from "../helpers/needs";
import { clientAddresses } from "../../src/lab/addresses";
import type { LabHost } from "../../src/lab/lab";
import {
    applyFromWorkstation,
    driftFromWorkstation,
    labStackFile,
    scanPorts,
    sh,
    sshLoginWorks,
    startTestLab,
    statuses,
    tcpConnect,
    type CliRun,
    type TestLab,
} from "../helpers/lab";
import {
    dockerFilterBody,
    dockerNat,
    emptyFilter,
    families,
    filterTables,
    iptablesServicesStock,
    loadTables,
    savedTable,
    ufwChains,
    type Family,
    type Tables,
} from "../helpers/rulesets";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

const attackerBan: Record<Family, string> = { v4: `${clientAddresses.attacker.v4}/32`, v6: `${clientAddresses.attacker.v6}/128` };
const portUnreachable: Record<Family, string> = { v4: "icmp-port-unreachable", v6: "icmp6-port-unreachable" };

interface StartingState {
    name: string;
    tables: Tables;
    /** INPUT rules (of each family) the first apply must name as removed: the catch-all at least. */
    removes: string[];
    /** Whether the attacker is banned (by fail2ban, before the apply). */
    attackerBanned?: boolean;
}

/** One fresh host per state, in this order. */
const STATES = [
    {
        name: "iptables-services' stock ruleset",
        tables: iptablesServicesStock,
        removes: ["-A INPUT -j REJECT --reject-with icmp-host-prohibited", "-A INPUT -j REJECT --reject-with icmp6-adm-prohibited"],
    },
    {
        name: "a catch-all DROP by hand after an SSH accept",
        tables: filterTables(() => `${emptyFilter}\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j DROP`),
        removes: ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", "-A INPUT -j DROP"],
    },
    { name: "ufw's chains jumped to from INPUT", tables: ufwChains, removes: ["-A INPUT -j ufw-before-input", "-A INPUT -j ufw-reject-input"] },
    {
        name: "docker's chains (filter and nat) and a fail2ban ban of the attacker",
        tables: Object.fromEntries(
            families.map((family) => {
                const ban = [
                    ":f2b-sshd - [0:0]",
                    "-A INPUT -j f2b-sshd",
                    `-A f2b-sshd -s ${attackerBan[family]} -j REJECT --reject-with ${portUnreachable[family]}`,
                    "-A f2b-sshd -j RETURN",
                ];
                return [family, `*filter\n${dockerFilterBody}\n${ban.join("\n")}\nCOMMIT\n${dockerNat[family]}`];
            }),
        ) as Tables,
        removes: [],
        attackerBanned: true,
    },
] as const satisfies readonly StartingState[];
const hostIndex = (state: StartingState) => STATES.findIndex((candidate) => candidate.name === state.name) + 1;

/** The filter and nat tables of both families, as iptables-save prints them, counters stripped. */
type Saved = Record<Family, { filter: string[]; nat: string }>;
function saveTables(host: LabHost): Saved {
    const lines = (text: string) => text.split("\n").filter(Boolean);
    return Object.fromEntries(
        families.map((family) => [family, { filter: lines(savedTable(host, family, "filter")), nat: savedTable(host, family, "nat") }]),
    ) as Saved;
}
const ownedLine = (line: string) => /^(:INPUT |-A INPUT |:MORH-|-A MORH-)/.test(line);
// The test's own judgment of what stays in INPUT: fail2ban's jumps and bans (the states above are simple).
const keptInInput = (rule: string) => /^-A INPUT -j f2b-[a-z-]+$/.test(rule) || /^-A INPUT -s [0-9a-f.:]+\/\d+ -j (DROP|REJECT)/.test(rule);
const isBanActionRule = (rule: string) => /^-A INPUT -m set --match-set morh-ban-\S+ src -j REJECT /.test(rule);
const familyName: Record<Family, string> = { v4: "ipv4", v6: "ipv6" };
const removalNotes = (run: CliRun) =>
    (run.report?.concerns.find((concern) => concern.concern === "firewall")?.notes ?? []).filter((note) => note.startsWith("firewall: removed from INPUT"));

let lab: TestLab;
const found = new Map<string, Saved>();
before(async () => {
    lab = await startTestLab(STATES.length);
    for (const state of STATES) {
        const host = lab.host(hostIndex(state));
        loadTables(host, state.tables);
        found.set(state.name, saveTables(host));
    }
});
after(() => lab?.stop());

const stackOf = (state: StartingState) => labStackFile(lab, `adopt-${hostIndex(state)}`, {}, hostIndex(state));

/** Applies the lab stack to the state's host and judges it from outside. */
function adoptsAndHardens(state: StartingState): void {
    const host = lab.host(hostIndex(state));
    const before_ = found.get(state.name)!;
    const run = applyFromWorkstation(lab, stackOf(state));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(statuses(run.report).firewall, "applied", run.stdout);

    const now = saveTables(host);
    const expectedNotes = families.flatMap((family) =>
        before_[family].filter
            .filter((line) => line.startsWith("-A INPUT ") && !keptInInput(line))
            .map((rule) => `firewall: removed from INPUT (${familyName[family]}): ${rule}`),
    );
    assert.deepEqual(removalNotes(run), expectedNotes, "every removed INPUT rule is named, as iptables-save printed it");
    for (const rule of state.removes)
        assert.ok(
            removalNotes(run).some((note) => note.endsWith(`: ${rule}`)),
            `a note names ${rule}`,
        );
    for (const family of families) {
        const input = now[family].filter.filter((line) => line.startsWith("-A INPUT "));
        // fail2ban's ipset bans (mor-harden's ban action, one rule a jail) go first, where it puts them.
        const setBans = input.filter(isBanActionRule);
        assert.equal(setBans.length, jailNames.length + 1, `${family}: one set rule for each jail and recidive`);
        assert.deepEqual(input.slice(0, setBans.length), setBans, `${family}: the set rules come first`);
        assert.deepEqual(
            input.slice(setBans.length),
            [...before_[family].filter.filter((line) => line.startsWith("-A INPUT ") && keptInInput(line)), "-A INPUT -j MORH-INPUT"],
            `${family}: then only fail2ban's jump and bans found before, then ours`,
        );
        assert.deepEqual(
            now[family].filter.filter((line) => !ownedLine(line)),
            before_[family].filter.filter((line) => !ownedLine(line)),
            `${family}: FORWARD, OUTPUT and other tools' chains untouched`,
        );
        assert.equal(now[family].nat, before_[family].nat, `${family}: the nat table is untouched`);
    }

    for (const address of [host.v4, host.v6]) assert.ok(sshLoginWorks(lab, address), `the workstation logs in over ${address}`);
    for (const [address, ipv6] of [
        [host.v4, false],
        [host.v6, true],
    ] as const) {
        if (state.attackerBanned) {
            // The ban still comes first, on every port: over IPv4 its REJECT answers (80 and 443
            // would be open, 22 and 3306 silent, without it); over IPv6 it also drops the
            // attacker's neighbour discovery, so the host's ICMPv6 error may not get out.
            for (const port of [22, 80, 443, 3306]) {
                const seen = tcpConnect(lab.client("attacker"), address, port);
                if (ipv6) assert.notEqual(seen, "open", `${address}:${port}: the banned attacker gets nothing`);
                else assert.equal(seen, "refused", `${address}:${port}: the banned attacker is refused`);
            }
        } else {
            const seen = scanPorts(lab, "attacker", address, "22,80,443,3306", ipv6);
            assert.deepEqual(seen, { "22": "filtered", "80": "open", "443": "open", "3306": "filtered" }, address);
        }
    }
    const drift = driftFromWorkstation(lab, stackOf(state));
    assert.equal(drift.code, 0, drift.stdout + drift.stderr);
}

describe("the first apply on a host with a firewall of its own", () => {
    for (const state of STATES) it(`adopts ${state.name}, over IPv4 and IPv6`, () => adoptsAndHardens(state));

    it("reports a disguised ACCEPT added by hand as drift, removes it at the next apply, never running its text", () => {
        const state = STATES[1];
        const host = lab.host(hostIndex(state));
        const pwned = `/tmp/pwned-${randomBytes(6).toString("hex")}`;
        assert.equal(sh(host, `iptables -I INPUT -s 0.0.0.0/0 -p tcp --dport 3306 -m comment --comment 'x -j DROP $(touch ${pwned})' -j ACCEPT`).code, 0);
        const rule = `-A INPUT -p tcp -m tcp --dport 3306 -m comment --comment "x -j DROP $(touch ${pwned})" -j ACCEPT`;
        assert.match(sh(host, "iptables -S INPUT").stdout, new RegExp(`^${rule.replace(/[$()[\]./*+?]/g, "\\$&")}$`, "m"), "the rule as iptables prints it");

        const drift = driftFromWorkstation(lab, stackOf(state));
        assert.equal(drift.code, 1, drift.stdout + drift.stderr);
        assert.ok(drift.stdout.includes(rule), `drift shows the rule:\n${drift.stdout}`);

        const run = applyFromWorkstation(lab, stackOf(state));
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.equal(statuses(run.report).firewall, "applied", run.stdout);
        assert.deepEqual(removalNotes(run), [`firewall: removed from INPUT (ipv4): ${rule}`]);
        assert.doesNotMatch(sh(host, "iptables -S INPUT").stdout, /3306/);

        assert.equal(driftFromWorkstation(lab, stackOf(state)).code, 0, "no drift once removed");
        assert.equal(sh(host, `test -e ${pwned}`).code, 1, "the comment's text never ran on the host");
        assert.equal(sh(lab.client("workstation"), `test -e ${pwned}`).code, 1, "nor on the workstation");
    });
});
