import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sshRateTable, buildRuleset, renderFirewall, renderRuleset, INPUT_CHAIN } from "../../src/firewall/render";
import { minimalConfig, renderInputFor, SUPPORT_V4, SUPPORT_V6 } from "../helpers/fixtures";
import { guideScannerAgents } from "../../src/fail2ban/schema";

const chain = (ruleset: ReturnType<typeof buildRuleset>, name: string) => ruleset.chains.find((candidate) => candidate.name === name)?.rules ?? [];

describe("firewall renderer", () => {
    it("drops by default and owns only its chains and one jump from INPUT", async () => {
        const text = renderRuleset(await renderInputFor(minimalConfig()), "v4");
        const lines = text.split("\n").filter((line) => line && !line.startsWith("#"));
        assert.equal(lines[0], "*filter");
        assert.ok(lines.includes(":INPUT DROP [0:0]"));
        assert.equal(lines.at(-1), "COMMIT");
        const declared = lines.filter((line) => line.startsWith(":")).map((line) => line.slice(1).split(" ")[0]);
        assert.deepEqual(
            declared.filter((name) => !name.startsWith("MORH-")),
            ["INPUT"],
            "no chain but INPUT and MORH-* is declared (fail2ban's would be flushed)",
        );
        const inputRules = lines.filter((line) => line.startsWith("-A INPUT "));
        assert.deepEqual(inputRules, [`-A INPUT -j ${INPUT_CHAIN}`]);
        assert.ok(!lines.some((line) => /^-[FXZ]/.test(line)), "no flush, delete or zero");
    });

    it("lets the trusted sources reach SSH and the public reach the MOR services", async () => {
        const ruleset = buildRuleset(await renderInputFor(minimalConfig()), "v4");
        const input = chain(ruleset, INPUT_CHAIN);
        assert.ok(input.includes("-s 198.51.100.10 -j MORH-TRUSTED"));
        assert.ok(chain(ruleset, "MORH-TRUSTED").includes("-p tcp -m tcp --dport 22 -j MORH-SSH"));
        for (const port of [
            "-p tcp -m tcp --dport 80",
            "-p tcp -m tcp --dport 443",
            "-p udp -m udp --dport 5060",
            "-p tcp -m tcp --dport 5060",
            "-p udp -m udp --dport 4569",
            "-p udp -m udp --dport 10000:20000",
        ]) {
            assert.ok(input.includes(`${port} -j ACCEPT`), `${port} is public`);
        }
        assert.ok(!input.some((rule) => rule.includes("--dport 22 ")), "SSH is not public");
        assert.ok(
            !ruleset.chains.flatMap((c) => c.rules).some((rule) => /--dport (5038|5039|3306|9200)\b/.test(rule)),
            "AMI, MySQL and Elasticsearch are closed",
        );
    });

    it("rate-limits new SSH connections per source", async () => {
        const ruleset = buildRuleset(
            await renderInputFor(
                minimalConfig({ firewall: { trusted: ["198.51.100.10"], trustKolmisoftSupport: false, sshRateLimit: { perMinute: 6, burst: 3 } } }),
            ),
            "v4",
        );
        assert.match(
            chain(ruleset, "MORH-SSH")[0],
            /--ctstate NEW -m hashlimit --hashlimit-above 6\/minute --hashlimit-burst 3 --hashlimit-mode srcip .* -j DROP$/,
        );
    });

    it("names the rate limit's kernel table after its settings, so that new settings make a new table", async () => {
        const tableOf = async (sshRateLimit: { perMinute: number; burst: number }, family: "v4" | "v6") =>
            /--hashlimit-name (\S+)/.exec(chain(buildRuleset(await renderInputFor(minimalConfig({ firewall: { sshRateLimit } })), family), "MORH-SSH")[0])![1];
        const tables = [
            await tableOf({ perMinute: 20, burst: 20 }, "v4"),
            await tableOf({ perMinute: 20, burst: 21 }, "v4"),
            await tableOf({ perMinute: 21, burst: 20 }, "v4"),
            await tableOf({ perMinute: 20, burst: 20 }, "v6"),
        ];
        assert.equal(new Set(tables).size, tables.length, tables.join(" "));
        assert.equal(sshRateTable("v6", { perMinute: 600, burst: 600 }).length, 15, "the kernel's longest name, at the schema's largest settings");
    });

    it("trusts support.kolmisoft.com by default, by its resolved addresses in each family", async () => {
        const config = minimalConfig({ firewall: { trusted: ["office.example.net"] } });
        const input = await renderInputFor(config);
        assert.ok(chain(buildRuleset(input, "v4"), INPUT_CHAIN).includes(`-s ${SUPPORT_V4} -j MORH-TRUSTED`));
        assert.ok(chain(buildRuleset(input, "v4"), INPUT_CHAIN).includes("-s 198.51.100.20 -j MORH-TRUSTED"));
        assert.ok(chain(buildRuleset(input, "v6"), INPUT_CHAIN).includes(`-s ${SUPPORT_V6} -j MORH-TRUSTED`));
        assert.ok(
            renderFirewall(input).summary[0].includes(`support.kolmisoft.com -> ${SUPPORT_V4}, ${SUPPORT_V6}`),
            "the preview shows what names resolved to",
        );
    });

    it("allows the ICMPv6 a host needs, neighbour discovery from the link only", async () => {
        const input = chain(buildRuleset(await renderInputFor(minimalConfig()), "v6"), INPUT_CHAIN);
        for (const type of ["neighbour-solicitation", "neighbour-advertisement", "router-advertisement"]) {
            assert.ok(input.includes(`-p ipv6-icmp -m icmp6 --icmpv6-type ${type} -m hl --hl-eq 255 -j ACCEPT`), type);
        }
        assert.ok(input.includes("-p ipv6-icmp -m icmp6 --icmpv6-type packet-too-big -j ACCEPT"));
    });

    it("opens no IPv6 service when ipv6 is off, but keeps the default drop", async () => {
        const text = renderRuleset(
            await renderInputFor(minimalConfig({ firewall: { trusted: ["198.51.100.10"], trustKolmisoftSupport: false, ipv6: false } })),
            "v6",
        );
        assert.ok(text.includes(":INPUT DROP [0:0]"));
        assert.ok(!/--dport/.test(text));
    });

    it("sends SIP packets whose User-Agent header starts with a scanner's name to the logging drop", async () => {
        const ruleset = buildRuleset(await renderInputFor(minimalConfig()), "v4");
        assert.ok(chain(ruleset, INPUT_CHAIN).includes("-p udp -m udp --dport 5060 -j MORH-SIPUA"));
        const hex = (text: string) => Buffer.from(text).toString("hex");
        const agents = chain(ruleset, "MORH-SIPUA");
        assert.equal(agents[0], `-m string ! --hex-string "|${hex("\r\nUser-Agent:")}|" --algo bm --icase -j RETURN`, "no User-Agent header: nothing to match");
        assert.ok(
            agents.includes(
                `-m string --hex-string "|${hex("\r\nUser-Agent: friendly-scanner")}|" --algo bm --icase -m comment --comment "User-Agent friendly-scanner" -j MORH-SIPSCAN`,
            ),
        );
        assert.ok(
            agents.every((rule, i) => i === 0 || rule.includes(hex("\r\nUser-Agent:"))),
            "every scanner rule is anchored at the header",
        );
        assert.equal(agents.length, 1 + 2 * guideScannerAgents.length, "with and without the blank after the colon");
        assert.match(chain(ruleset, "MORH-SIPSCAN")[0], /-j LOG --log-prefix "MORH-SIPSCAN "/);
        // Over TCP the User-Agent comes after the handshake: the check precedes the ESTABLISHED
        // accept, sees only established packets (a forged source cannot reach it), and follows
        // the INVALID drop.
        const input = chain(ruleset, INPUT_CHAIN);
        const tcpCheck = input.indexOf("-p tcp -m tcp --dport 5060 -m conntrack --ctstate ESTABLISHED -j MORH-SIPUA");
        assert.ok(tcpCheck > 0, "over TCP only established packets reach the scanner rule");
        assert.ok(tcpCheck < input.indexOf("-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"));
        assert.ok(
            input.indexOf("-m conntrack --ctstate INVALID -j DROP") < input.indexOf("-p udp -m udp --dport 5060 -j MORH-SIPUA"),
            "INVALID is dropped before the scanner rule",
        );
    });

    it("takes the scanners from the stack, and has no scanner rule when ast-cli-attck is disabled", async () => {
        const own = buildRuleset(await renderInputFor(minimalConfig({ fail2ban: { jails: { "ast-cli-attck": { userAgents: ["evil-scan"] } } } })), "v6");
        assert.equal(chain(own, "MORH-SIPUA").length, 3);
        assert.match(chain(own, "MORH-SIPUA")[1], /--comment "User-Agent evil-scan"/);
        const off = buildRuleset(await renderInputFor(minimalConfig({ fail2ban: { jails: { "ast-cli-attck": { enabled: false } } } })), "v4");
        assert.ok(!off.chains.some((c) => c.name === "MORH-SIPUA" || c.name === "MORH-SIPSCAN"));
        assert.ok(!chain(off, INPUT_CHAIN).some((rule) => rule.includes("MORH-SIPUA")));
    });

    it("logs scanners through NFLOG and ulogd when the kernel log is not the host's", async () => {
        const input = await renderInputFor(minimalConfig({ firewall: { trusted: ["198.51.100.10"], trustKolmisoftSupport: false, scannerLog: "nflog" } }));
        assert.match(chain(buildRuleset(input, "v6"), "MORH-SIPSCAN")[0], /-j NFLOG --nflog-group 0 --nflog-prefix "MORH-SIPSCAN"/);
        const plan = renderFirewall(input);
        assert.ok(plan.packages.includes("ulogd2"));
        assert.ok(plan.verify.some((check) => check.includes("pgrep -x ulogd")));
        assert.ok(!renderFirewall(await renderInputFor(minimalConfig())).packages.includes("ulogd2"), "not with the kernel log");
    });

    it("restricts an extra rule to its own sources", async () => {
        const config = minimalConfig({
            firewall: {
                trusted: ["198.51.100.10"],
                trustKolmisoftSupport: false,
                extraRules: [{ name: "node-exporter", protocol: "tcp", ports: 9100, exposure: "trusted", sources: ["198.51.100.20"] }],
            },
        });
        const input = chain(buildRuleset(await renderInputFor(config), "v4"), INPUT_CHAIN);
        assert.ok(input.includes("-s 198.51.100.20 -p tcp -m tcp --dport 9100 -j ACCEPT"));
    });

    it("persists where each OS family restores from at boot, and validates before activating", async () => {
        const debian = renderFirewall(await renderInputFor(minimalConfig()));
        assert.deepEqual(
            debian.artifacts.map((a) => a.path),
            ["/etc/iptables/rules.v4", "/etc/iptables/rules.v6"],
        );
        assert.deepEqual(debian.validate.slice(1), [
            "iptables-restore -w 30 --test --noflush /etc/iptables/rules.v4",
            "ip6tables-restore -w 30 --test --noflush /etc/iptables/rules.v6",
        ]);
        assert.match(debian.validate[0], /the \$other backend also holds rules/);
        // Besides the rules: the sets of blocklists no longer configured are emptied.
        assert.ok(debian.activate.filter((command) => command.includes("iptables")).every((command) => command.includes("--noflush")));
        assert.match(debian.activate.at(-1)!, /^command -v ipset .*ipset flush "\$set"/);
        assert.ok(debian.needsConfirm);
        const rhel = renderFirewall(await renderInputFor(minimalConfig({ os: "rhel" })));
        assert.deepEqual(
            rhel.artifacts.map((a) => a.path),
            ["/etc/sysconfig/iptables", "/etc/sysconfig/ip6tables"],
        );
        assert.deepEqual(rhel.packages, ["iptables-services"]);
    });

    it("accepts multicast listener discovery from the link only (hop limit 1, link-local or unspecified source)", async () => {
        const input = chain(buildRuleset(await renderInputFor(minimalConfig()), "v6"), INPUT_CHAIN);
        for (const type of [130, 131, 132, 143]) {
            for (const source of ["fe80::/10", "::/128"]) {
                assert.ok(
                    input.includes(`-s ${source} -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -m hl --hl-eq 1 -j ACCEPT`),
                    `MLD type ${type} from ${source}`,
                );
            }
        }
        assert.ok(!input.some((rule) => /--icmpv6-type 1(30|31|32|43) /.test(rule) && !/--hl-eq 1 /.test(rule)), "never from further than the link");
        assert.ok(!chain(buildRuleset(await renderInputFor(minimalConfig()), "v4"), INPUT_CHAIN).some((rule) => rule.includes("icmpv6")));
    });

    it("rhel: touches firewalld only at activation, after validation and the snapshot, and puts it back on rollback and delete", async () => {
        const rhel = renderFirewall(await renderInputFor(minimalConfig({ os: "rhel" })));
        const touchesUnits = (command: string) => /systemctl/.test(command);
        assert.deepEqual(rhel.prepare, [], "nothing before validation");
        assert.ok(!rhel.validate.some(touchesUnits));
        // The state of the units is saved with the rules, before anything changes.
        assert.ok(rhel.snapshot.some((command) => command.includes('unit_states > "$MORH_STATE/units.new"')));
        assert.ok(touchesUnits(rhel.activate[0]) && rhel.activate[0].includes("systemctl mask firewalld"), "firewalld is stopped before our rules load");
        assert.ok(rhel.activate.slice(1).every((command) => !touchesUnits(command)));
        for (const commands of [rhel.rollback, rhel.deactivate]) {
            const restore = commands.findIndex((command) => command.includes('done < "$MORH_STATE/units"'));
            assert.equal(restore, commands.length - 1, "the units are put back after the rules");
            assert.match(commands[restore], /systemctl unmask "\$unit" && systemctl enable "\$unit"/);
            assert.match(commands[restore], /systemctl \$\{MORH_BOOT:\+--no-block\} start firewalld/);
        }
        assert.ok(
            rhel.rollbackCheck.some((command) => command.includes("unit_states")),
            "the check covers the units",
        );
        const debian = renderFirewall(await renderInputFor(minimalConfig()));
        assert.ok(
            ![...debian.prepare, ...debian.snapshot, ...debian.activate, ...debian.rollback, ...debian.rollbackCheck, ...debian.deactivate].some(touchesUnits),
            "no systemctl on debian",
        );
    });

    it("snapshots each family's filter table and restores only the part it owns, in one transaction", async () => {
        const plan = renderFirewall(await renderInputFor(minimalConfig()));
        assert.deepEqual(
            plan.snapshot.map((command) => command.split(" ")[0]),
            ["rules=$(iptables-save", "rules=$(ip6tables-save"],
        );
        assert.match(plan.snapshot[0], /> "\$MORH_STATE\/live.v4".new && mv -f "\$MORH_STATE\/live.v4".new "\$MORH_STATE\/live.v4"$/);
        for (const command of [
            ...plan.activate.filter((command) => command.includes("iptables")),
            ...plan.rollback,
            ...plan.deactivate.map((text) => text.split("\nelse\n")[0]),
        ]) {
            assert.equal(command.match(/-restore -w --noflush/g)?.length, 1, "one iptables-restore per family");
            assert.ok(!/\beval\b/.test(command), "no eval");
        }
        assert.match(plan.deactivate[0], /^if \[ -n "\$\{MORH_STATE:-\}" \] && \[ -e "\$MORH_STATE\/live.v4" \]; then/);
        assert.equal(plan.rollbackCheck.length, 2);
    });
});
