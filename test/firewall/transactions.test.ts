// The firewall's snapshot, activate, rollback, rollbackCheck and deactivate commands, run exactly
// as rendered against the real iptables (nft and legacy backends, IPv4 and IPv6) in scratch network
// namespaces, from the starting states found on MOR hosts. Judged with iptables-save.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { renderFirewall } from "../../src/firewall/render";
import type { ConcernPlan } from "../../src/render/artifact";
import { minimalConfig, renderInputFor } from "../helpers/fixtures";
import { dockerChains, emptyFilter, families, filterTables, iptablesServicesStock, ufwChains, type Family, type Tables, tools } from "../helpers/rulesets";
import { netnsAvailable, startNetns, type Backend, type Netns } from "./netns";
import { requires } from "../helpers/needs";

const familyName: Record<Family, string> = { v4: "ipv4", v6: "ipv6" };

const pwned = join(tmpdir(), `pwned-${randomBytes(6).toString("hex")}`);

/** A starting state: the filter table of each family in iptables-restore format (none: no table at all). */
interface StartingState {
    name: string;
    tables?: Tables;
}

const address = {
    v4: { ban: "203.0.113.66/32", blocked: "198.18.0.9/32", later: "203.0.113.77/32", laterBan: "203.0.113.88/32" },
    v6: { ban: "2001:db8:66::66/128", blocked: "2001:db8:9::9/128", later: "2001:db8:77::77/128", laterBan: "2001:db8:88::88/128" },
};
const portUnreachable = { v4: "icmp-port-unreachable", v6: "icmp6-port-unreachable" };

const startingStates: StartingState[] = [
    { name: "no tables at all (a fresh host)" },
    { name: "empty chains, policy ACCEPT", tables: filterTables(() => emptyFilter) },
    { name: "iptables-services' stock ruleset", tables: iptablesServicesStock },
    { name: "a catch-all DROP by hand", tables: filterTables(() => `${emptyFilter}\n-A INPUT -j DROP`) },
    { name: "ufw's chains jumped to from INPUT", tables: ufwChains },
    { name: "docker's chains jumped to from FORWARD", tables: dockerChains },
    {
        name: "fail2ban's chain with a ban, its jump first in INPUT, and a blocked IP of MOR",
        tables: filterTables((family) =>
            [
                emptyFilter,
                ":f2b-ssh-iptables - [0:0]",
                "-A INPUT -p tcp -m multiport --dports 22 -j f2b-ssh-iptables",
                `-A INPUT -s ${address[family].blocked} -j DROP`,
                "-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT",
                `-A f2b-ssh-iptables -s ${address[family].ban} -j REJECT --reject-with ${portUnreachable[family]}`,
                "-A f2b-ssh-iptables -j RETURN",
            ].join("\n"),
        ),
    },
    {
        // iptables quotes comments but does not escape $(...): text a shell must never see.
        name: "an ACCEPT disguised by a comment",
        tables: filterTables(
            () => `${emptyFilter}\n-A INPUT -p tcp -m tcp --dport 3306 -m comment --comment " -j DROP $(touch ${pwned}) \\" -j REJECT" -j ACCEPT`,
        ),
    },
];

/** iptables-save output without comments and counters, as lines. */
function saved(netns: Netns, family: Family): string[] {
    return netns
        .ok(`${tools[family].save} -t filter`)
        .split("\n")
        .filter((line) => line && !line.startsWith("#"))
        .map((line) => line.replace(/ \[\d+:\d+\]$/, ""));
}

const inputRules = (lines: string[]) => lines.filter((line) => line.startsWith("-A INPUT "));
const policy = (lines: string[]) => lines.find((line) => line.startsWith(":INPUT "));
const ownedLine = (line: string) => /^(:INPUT |-A INPUT |:MORH-|-A MORH-)/.test(line);
/** Everything the firewall does not own: other chains and their rules, FORWARD, OUTPUT. */
const foreign = (lines: string[]) => lines.filter((line) => !ownedLine(line));
const morhChains = (lines: string[]) => lines.filter((line) => line.startsWith(":MORH-"));
// The test's own judgment of what may stay in INPUT (the states above are simple enough for it).
const fail2banJump = (rule: string) => /^-A INPUT (-p tcp -m multiport --dports 22 )?-j f2b-[a-z-]+$/.test(rule);
const ban = (rule: string) => /^-A INPUT -s [0-9a-f.:]+\/\d+ -j (DROP|REJECT)( --reject-with [a-z6-]+)?$/.test(rule);

interface Host {
    netns: Netns;
    etc: string;
    stateDirs: string[];
}

async function startHost(backend: Backend, state: StartingState): Promise<Host> {
    const etc = mkdtempSync(join(tmpdir(), "morh-etc-iptables-"));
    const netns = await startNetns(backend, { "/etc/iptables": etc });
    for (const family of families) {
        if (state.tables) netns.ok(`printf '%s' "$TABLE" | ${tools[family].restore} -w`, { TABLE: state.tables[family] });
    }
    return { netns, etc, stateDirs: [] };
}

function stopHost(host: Host): void {
    host.netns.stop();
    rmSync(host.etc, { recursive: true, force: true });
    for (const dir of host.stateDirs) rmSync(dir, { recursive: true, force: true });
}

/** Runs a command list of the plan in order, each as rendered; returns the joined stdout. */
function runAll(host: Host, commands: string[], env: Record<string, string>): string {
    return commands.map((command) => host.netns.ok(command, env)).join("");
}

/** What the engine does up to activation: write the files, validate, snapshot, activate. */
function apply(host: Host, plan: ConcernPlan): { state: string; notes: string[] } {
    const state = mkdtempSync(join(tmpdir(), "morh-state-"));
    host.stateDirs.push(state);
    for (const artifact of plan.artifacts) writeFileSync(join(host.etc, artifact.path.replace("/etc/iptables/", "")), artifact.content);
    runAll(host, plan.validate, {});
    runAll(host, plan.snapshot, { MORH_STATE: state });
    const output = runAll(host, plan.activate, { MORH_STATE: state });
    return { state, notes: output.split("\n").filter((line) => line.startsWith("MORH-NOTE ")) };
}

/** The engine's rollback and delete put back the files first (here: there were none). */
function restoreOriginalFiles(host: Host, plan: ConcernPlan): void {
    for (const artifact of plan.artifacts) rmSync(join(host.etc, artifact.path.replace("/etc/iptables/", "")), { force: true });
}

/** fail2ban and MOR at work during the confirm window: a new jail's chain and jump, a ban, a blocked IP. */
function meanwhile(host: Host): void {
    for (const family of families) {
        const tool = tools[family].cli;
        host.netns.ok(
            `${tool} -w -N f2b-asterisk && ${tool} -w -A f2b-asterisk -s ${address[family].laterBan} -j REJECT && ${tool} -w -A f2b-asterisk -j RETURN && ${tool} -w -I INPUT 1 -j f2b-asterisk && ${tool} -w -I INPUT 2 -s ${address[family].later} -j DROP`,
        );
    }
}

/** INPUT as the owned part of `before` must come back: fail2ban's jumps now, the ban added meanwhile, the rest of before. */
function expectedInputAfterRestore(before: string[], family: Family): string[] {
    const beforeInput = inputRules(before);
    return [
        "-A INPUT -j f2b-asterisk",
        ...beforeInput.filter(fail2banJump),
        `-A INPUT -s ${address[family].later} -j DROP`,
        ...beforeInput.filter((rule) => !fail2banJump(rule)),
    ];
}

function assertRestored(host: Host, before: Record<Family, string[]>): void {
    for (const family of families) {
        const now = saved(host.netns, family);
        assert.equal(policy(now), policy(before[family]), `${family}: INPUT's policy is back`);
        assert.deepEqual(
            inputRules(now),
            expectedInputAfterRestore(before[family], family),
            `${family}: INPUT is back, with fail2ban's new jump and the ban added meanwhile`,
        );
        assert.deepEqual(morhChains(now), morhChains(before[family]), `${family}: no chain of ours is left`);
        const newChain = [
            ":f2b-asterisk -",
            `-A f2b-asterisk -s ${address[family].laterBan} -j REJECT --reject-with ${portUnreachable[family]}`,
            "-A f2b-asterisk -j RETURN",
        ];
        assert.deepEqual(
            foreign(now).filter((line) => !newChain.includes(line)),
            foreign(before[family]),
            `${family}: other chains untouched`,
        );
        assert.ok(
            newChain.every((line) => now.includes(line)),
            `${family}: fail2ban's new chain and its ban stay`,
        );
    }
}

const hosts: Host[] = [];
after(() => hosts.forEach(stopHost));
const skip = requires("root, unshare and both iptables backends", netnsAvailable);

for (const backend of ["nft", "legacy"] as Backend[]) {
    describe(`firewall transactions on iptables-${backend}`, { skip }, () => {
        for (const state of startingStates) {
            it(`activates after fail2ban's jumps and bans, and rolls back exactly: ${state.name}`, async () => {
                const plan = renderFirewall(await renderInputFor(minimalConfig()));
                const host = await startHost(backend, state);
                hosts.push(host);
                const before = { v4: saved(host.netns, "v4"), v6: saved(host.netns, "v6") };

                const { state: stateDir, notes } = apply(host, plan);
                for (const family of families) {
                    const now = saved(host.netns, family);
                    const input = inputRules(now);
                    assert.equal(input.at(-1), "-A INPUT -j MORH-INPUT", `${family}: our jump is last in INPUT`);
                    assert.deepEqual(
                        input.slice(0, -1),
                        inputRules(before[family]).filter((rule) => fail2banJump(rule) || ban(rule)),
                        `${family}: only fail2ban's jumps and bans precede it, in their order`,
                    );
                    assert.equal(policy(now), ":INPUT DROP");
                    assert.deepEqual(foreign(now), foreign(before[family]), `${family}: other chains, FORWARD and OUTPUT untouched`);
                    const removed = inputRules(before[family]).filter((rule) => !fail2banJump(rule) && !ban(rule));
                    assert.deepEqual(
                        notes.filter((note) => note.includes(`(${familyName[family]})`)),
                        removed.map((rule) => `MORH-NOTE firewall: removed from INPUT (${familyName[family]}): ${rule}`),
                    );
                }
                // The drift check sees exactly what was rendered.
                plan.liveViews.forEach((view, index) => {
                    const live = host.netns.ok(view.live);
                    const expected =
                        "artifact" in view.expected
                            ? host.netns.ok(`printf '%s' "$CONTENT" | ${view.expected.command}`, { CONTENT: plan.artifacts[view.expected.artifact].content })
                            : "";
                    assert.equal(live, expected, view.name);
                });
                // Applied again, nothing changes and nothing is reported.
                const once = { v4: saved(host.netns, "v4"), v6: saved(host.netns, "v6") };
                assert.deepEqual(apply(host, plan).notes, []);
                assert.deepEqual({ v4: saved(host.netns, "v4"), v6: saved(host.netns, "v6") }, once);

                meanwhile(host);
                restoreOriginalFiles(host, plan);
                runAll(host, plan.rollback, { MORH_STATE: stateDir });
                assertRestored(host, before);
                assert.equal(runAll(host, plan.rollbackCheck, { MORH_STATE: stateDir }), "", "the check passes silently");

                // A rule added after the rollback is seen by the check, which names it.
                host.netns.ok("iptables -w -I INPUT 1 -p tcp --dport 5038 -j ACCEPT");
                const v4Check = host.netns.run(plan.rollbackCheck[0], { MORH_STATE: stateDir });
                assert.notEqual(v4Check.code, 0);
                assert.match(v4Check.stdout, /^\+-A INPUT -p tcp -m tcp --dport 5038 -j ACCEPT$/m);
                host.netns.ok(`ip6tables -w -P INPUT ${policy(before.v6) === ":INPUT DROP" ? "ACCEPT" : "DROP"}`);
                const v6Check = host.netns.run(plan.rollbackCheck[1], { MORH_STATE: stateDir });
                assert.notEqual(v6Check.code, 0);
                assert.match(v6Check.stdout, /^\+:INPUT (ACCEPT|DROP)$/m);
                assert.ok(!existsSync(pwned), "no text of a rule ever ran");
            });

            it(`deletes back to the firewall found before the first apply: ${state.name}`, async () => {
                // The first apply has a knocking chain the second no longer renders.
                const first = renderFirewall(
                    await renderInputFor(
                        minimalConfig({ knocking: { mode: "sequence", sequence: [7001, 8002, 9003, 6004], protocol: "udp", guards: ["ssh"] } }),
                    ),
                );
                const second = renderFirewall(await renderInputFor(minimalConfig()));
                const host = await startHost(backend, state);
                hosts.push(host);
                const before = { v4: saved(host.netns, "v4"), v6: saved(host.netns, "v6") };

                const { state: firstState } = apply(host, first);
                assert.ok(saved(host.netns, "v4").includes(":MORH-KNOCK -"));
                meanwhile(host);
                const { notes } = apply(host, second);
                assert.deepEqual(notes, [], "the second apply finds nothing foreign in INPUT");
                for (const family of families) {
                    const now = saved(host.netns, family);
                    assert.ok(!now.includes(":MORH-KNOCK -"), `${family}: the chain no longer rendered is gone`);
                    assert.deepEqual(
                        morhChains(now).sort(),
                        morhChains(second.artifacts[families.indexOf(family)].content.split("\n").map((line) => line.replace(/ \[0:0\]$/, ""))).sort(),
                    );
                    assert.equal(inputRules(now).at(-1), "-A INPUT -j MORH-INPUT");
                }

                restoreOriginalFiles(host, second);
                runAll(host, second.deactivate, { MORH_STATE: firstState });
                assertRestored(host, before);
                assert.ok(!existsSync(pwned), "no text of a rule ever ran");
            });
        }

        it("deletes without a first snapshot (hosts applied by older versions): INPUT open, our chains gone, fail2ban's kept", async () => {
            const plan = renderFirewall(await renderInputFor(minimalConfig()));
            const host = await startHost(
                backend,
                startingStates.find((state) => state.name.startsWith("fail2ban"))!,
            );
            hosts.push(host);
            apply(host, plan);
            restoreOriginalFiles(host, plan);
            runAll(host, plan.deactivate, {});
            for (const family of families) {
                const now = saved(host.netns, family);
                assert.equal(policy(now), ":INPUT ACCEPT");
                assert.deepEqual(morhChains(now), []);
                assert.deepEqual(inputRules(now), [
                    "-A INPUT -p tcp -m multiport --dports 22 -j f2b-ssh-iptables",
                    `-A INPUT -s ${address[family].blocked} -j DROP`,
                ]);
            }
        });

        it("deletes back from a first snapshot taken by the previous version (every table; nothing where none existed)", async () => {
            const plan = renderFirewall(await renderInputFor(minimalConfig()));
            const host = await startHost(
                backend,
                startingStates.find((state) => state.name.startsWith("iptables-services"))!,
            );
            hosts.push(host);
            // Tables beside filter, each with an INPUT chain of its own that must not be read as filter's.
            host.netns.ok(
                "iptables -w -t mangle -P INPUT DROP && iptables -w -t mangle -A INPUT -j ACCEPT && iptables -w -t nat -A POSTROUTING -o lo -j RETURN",
            );
            const before = saved(host.netns, "v4");
            const firstState = mkdtempSync(join(tmpdir(), "morh-state-"));
            host.stateDirs.push(firstState);
            host.netns.ok(`iptables-save > "${firstState}/live.v4" && : > "${firstState}/live.v6" && ip6tables -w -F INPUT && ip6tables -w -F FORWARD`);
            apply(host, plan);
            restoreOriginalFiles(host, plan);
            runAll(host, plan.deactivate, { MORH_STATE: firstState });
            assert.deepEqual(saved(host.netns, "v4"), before, "iptables-services' ruleset is back");
            assert.equal(policy(saved(host.netns, "v6")), ":INPUT ACCEPT", "an empty snapshot is the empty default table");
            assert.deepEqual(morhChains(saved(host.netns, "v6")), []);
        });

        it("moves its jump after a ban appended behind it, in the same transaction", async () => {
            const plan = renderFirewall(await renderInputFor(minimalConfig()));
            const host = await startHost(backend, startingStates[0]);
            hosts.push(host);
            apply(host, plan);
            host.netns.ok("iptables -w -A INPUT -s 198.18.0.10/32 -j DROP");
            assert.deepEqual(apply(host, plan).notes, []);
            assert.deepEqual(inputRules(saved(host.netns, "v4")), ["-A INPUT -s 198.18.0.10/32 -j DROP", "-A INPUT -j MORH-INPUT"]);
        });

        it("keeps fail2ban's set bans first through apply and rollback, also when a set the snapshot names is gone", async () => {
            const plan = renderFirewall(await renderInputFor(minimalConfig()));
            const host = await startHost(backend, startingStates[0]);
            hosts.push(host);
            const setBan = (family: Family, set: string) =>
                `-A INPUT -m set --match-set ${set}-${family} src -j REJECT --reject-with ${portUnreachable[family]}`;
            const addSetBan = (family: Family, set: string) =>
                host.netns.ok(
                    `ipset create ${set}-${family} hash:ip family ${family === "v4" ? "inet" : "inet6"} && ${tools[family].cli} -w -I INPUT 1 ${setBan(family, set).slice("-A INPUT ".length)}`,
                );
            for (const family of families) addSetBan(family, "morh-ban-old");
            const { state: stateDir } = apply(host, plan);
            for (const family of families)
                assert.deepEqual(
                    inputRules(saved(host.netns, family)),
                    [setBan(family, "morh-ban-old"), "-A INPUT -j MORH-INPUT"],
                    `${family}: the set ban stays before our jump`,
                );
            // fail2ban restarted with other jails in the confirm window: the old set is gone.
            for (const family of families) {
                host.netns.ok(
                    `${tools[family].cli} -w -D INPUT ${setBan(family, "morh-ban-old").slice("-A INPUT ".length)} && ipset destroy morh-ban-old-${family}`,
                );
                addSetBan(family, "morh-ban-new");
            }
            restoreOriginalFiles(host, plan);
            runAll(host, plan.rollback, { MORH_STATE: stateDir });
            for (const family of families)
                assert.deepEqual(inputRules(saved(host.netns, family)), [setBan(family, "morh-ban-new")], `${family}: the live set ban, not the snapshot's`);
            assert.equal(runAll(host, plan.rollbackCheck, { MORH_STATE: stateDir }), "");
        });

        it("shows a disguised ACCEPT added after activation as drift, and removes it at the next apply", async () => {
            const plan = renderFirewall(await renderInputFor(minimalConfig()));
            const host = await startHost(backend, startingStates[0]);
            hosts.push(host);
            apply(host, plan);
            const disguised = `-A INPUT -p tcp -m tcp --dport 3306 -m comment --comment " -j DROP $(touch ${pwned})" -j ACCEPT`;
            host.netns.ok(`printf '*filter\\n%s\\nCOMMIT\\n' "$RULE" | iptables-restore -w --noflush`, { RULE: disguised.replace("-A INPUT", "-I INPUT 1") });
            const view = plan.liveViews[0];
            assert.ok(host.netns.ok(view.live).split("\n").includes(disguised), "the live view shows it");
            const notes = apply(host, plan).notes;
            assert.deepEqual(notes, [`MORH-NOTE firewall: removed from INPUT (ipv4): ${disguised}`]);
            assert.deepEqual(inputRules(saved(host.netns, "v4")), ["-A INPUT -j MORH-INPUT"]);
            assert.ok(!existsSync(pwned), "no text of a rule ever ran");
        });
    });
}
