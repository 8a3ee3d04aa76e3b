// Blocklists on a lab host, judged from outside: the listed attacker dropped on every port over
// IPv4 and IPv6, the trusted workstation exempt although listed; sets loaded at boot before the
// rules (Debian's netfilter-persistent plugins, in a scratch namespace on the host); drift by
// digest with counts and first entries; a one-line change applied by the blocklists concern alone;
// the lists removed.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { needs } from "../helpers/needs";
import { labExec } from "../../src/lab/lab";
import { applyFromWorkstation, driftFromWorkstation, labStackFile, sh, sshLoginWorks, startTestLab, statuses, tcpConnect, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const host = () => lab.host(1);
const attacker = () => lab.client("attacker");
const workstation = () => lab.client("workstation");

/** A stack whose blocklist file (next to it) holds `lines`. */
function stackWithList(name: string, lines: string[]): string {
    const stack = labStackFile(lab, name, { firewall: { blocklists: [{ name: "scanners", file: "scanners.list" }] } });
    writeFileSync(join(dirname(stack), "scanners.list"), `# lab list\n${lines.join("\n")}\n`);
    return stack;
}

const bulk = Array.from({ length: 20000 }, (_, i) => `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`);
let firstApplyBytes = 0;
const listed = () => [...bulk, attacker().v4, attacker().v6, "2001:db8:feed::/48", workstation().v4];

// The CLI's caches (compiled sets, parsed lists, contents for deltas) in the lab's own directory, not root's.
before(async () => {
    lab = await startTestLab(1, { ownCaches: true });
});
after(() => lab?.stop());

describe("blocklists on a lab host", () => {
    it("drops the listed attacker on every port over IPv4 and IPv6; the listed but trusted workstation still gets in", async () => {
        const run = applyFromWorkstation(lab, stackWithList("listed", listed()));
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.equal(statuses(run.report).blocklists, "applied");
        firstApplyBytes = run.report!.bytes;
        assert.equal(statuses(run.report).firewall, "applied");
        for (const port of [22, 443]) {
            assert.equal(tcpConnect(attacker(), host().v4, port), "filtered", `IPv4 ${port}`);
            assert.equal(tcpConnect(attacker(), host().v6, port), "filtered", `IPv6 ${port}`);
        }
        assert.ok(sshLoginWorks(lab, host().v4), "trusted wins over the list");
        assert.equal(tcpConnect(workstation(), host().v4, 443), "open");
        assert.equal(sh(host(), "ipset list -t morh-bl-scanners-4 | sed -n 's/Number of entries: //p'").stdout.trim(), String(bulk.length + 2));
    });

    it("persists the sets where the boot loader reads them, before the rules (netfilter-persistent's plugins in a scratch namespace)", () => {
        const boot = sh(
            host(),
            "unshare --net sh -c '/usr/share/netfilter-persistent/plugins.d/10-ipset start && /usr/share/netfilter-persistent/plugins.d/15-ip4tables start && /usr/share/netfilter-persistent/plugins.d/25-ip6tables start && iptables -S MORH-BLOCKLISTS && ipset list -t morh-bl-scanners-6'",
            30_000,
        );
        assert.equal(boot.code, 0, boot.stderr);
        assert.match(boot.stdout, /-A MORH-BLOCKLISTS -m set --match-set morh-bl-scanners-4 src -j DROP/);
        assert.match(boot.stdout, /Number of entries: 2/);
    });

    it("finds no drift when clean, also through the listing an apply remembered, and names the entries added by hand with their count", () => {
        const stack = stackWithList("listed", listed());
        assert.equal(driftFromWorkstation(lab, stack).code, 0, "clean, the set sorted and hashed");
        // A no-change apply's read remembers each set's listing beside the digest it sorted to.
        const again = applyFromWorkstation(lab, stack);
        assert.equal(again.code, 0, again.stderr + again.stdout);
        assert.equal(statuses(again.report).blocklists, "unchanged");
        const remembered = sh(host(), "cat /var/lib/mor-harden/views/blocklist-listings").stdout;
        assert.match(remembered, new RegExp(`^morh-bl-scanners-4 [0-9a-f]{64} [0-9a-f]{64} ${bulk.length + 2}$`, "m"));
        // Drift reads it (a forged count shows), and never writes it.
        assert.equal(sh(host(), `sed -i 's/ ${bulk.length + 2}$/ 7/' /var/lib/mor-harden/views/blocklist-listings`).code, 0);
        const forged = driftFromWorkstation(lab, stack);
        assert.equal(forged.code, 1, forged.stdout + forged.stderr);
        assert.match(forged.stdout, /morh-bl-scanners-4 7 /);
        assert.equal(labExec(host(), ["sh", "-c", "cat > /var/lib/mor-harden/views/blocklist-listings"], { input: remembered }).code, 0);
        const clean = driftFromWorkstation(lab, stack);
        assert.equal(clean.code, 0, clean.stdout + clean.stderr);
        assert.equal(sh(host(), "cat /var/lib/mor-harden/views/blocklist-listings").stdout, remembered, "drift wrote nothing");
        // A hand edit changes the listing: the remembered one no longer vouches for it.
        assert.equal(
            sh(host(), "ipset add morh-bl-scanners-4 198.18.99.1 && ipset add morh-bl-scanners-4 198.18.99.2 && ipset del morh-bl-scanners-4 198.18.0.1").code,
            0,
        );
        const drift = driftFromWorkstation(lab, stack);
        assert.equal(drift.code, 1, drift.stdout + drift.stderr);
        assert.match(drift.stdout, /2 in the set but not listed \(added\), first: 198\.18\.99\.1 198\.18\.99\.2/);
        assert.match(drift.stdout, /1 listed but not in the set \(removed\), first: 198\.18\.0\.1/);
    });

    it("applies a one-line change through the blocklists concern alone, sending only the changed line; the attacker is let back in", () => {
        const run = applyFromWorkstation(
            lab,
            stackWithList(
                "unlisted",
                listed().filter((line) => line !== attacker().v4),
            ),
        );
        assert.equal(run.code, 0, run.stderr + run.stdout);
        const changes = sh(host(), 'cd "$(ls -td /var/lib/mor-harden/tx/*-blocklists-* | head -n 1)" && wc -l < removed.0 && wc -l < added.0');
        assert.equal(changes.stdout, "1\n0\n", "the transaction got one removed line and nothing else");
        assert.ok(run.report!.bytes < firstApplyBytes / 2, `${run.report!.bytes} bytes for one line, ${firstApplyBytes} for the first apply`);
        assert.deepEqual(statuses(run.report), { blocklists: "applied", firewall: "unchanged", sshd: "unchanged", fail2ban: "unchanged", apache: "unchanged" });
        assert.equal(tcpConnect(attacker(), host().v4, 443), "open", "no longer listed");
        assert.equal(tcpConnect(attacker(), host().v6, 443), "filtered", "still listed over IPv6");
        assert.equal(
            driftFromWorkstation(
                lab,
                stackWithList(
                    "unlisted",
                    listed().filter((line) => line !== attacker().v4),
                ),
            ).code,
            0,
        );
    });

    it("keeps one file whatever the lists' order: reordering them applies nothing", () => {
        const lists = (order: string[]) => {
            const stack = labStackFile(lab, `order-${order.join("-")}`, { firewall: { blocklists: order.map((name) => ({ name, file: `${name}.list` })) } });
            writeFileSync(
                join(dirname(stack), "scanners.list"),
                `${listed()
                    .filter((line) => line !== attacker().v4)
                    .join("\n")}\n`,
            );
            writeFileSync(join(dirname(stack), "extra.list"), "2001:db8:beef::/48\n");
            return stack;
        };
        const first = applyFromWorkstation(lab, lists(["scanners", "extra"]));
        assert.equal(first.code, 0, first.stderr + first.stdout);
        assert.equal(statuses(first.report).blocklists, "applied");
        const reordered = applyFromWorkstation(lab, lists(["extra", "scanners"]));
        assert.equal(reordered.code, 0, reordered.stderr + reordered.stdout);
        assert.equal(statuses(reordered.report).blocklists, "unchanged");
    });

    it("takes the rule away and empties the sets when the lists are removed", () => {
        const run = applyFromWorkstation(lab, labStackFile(lab, "none"));
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.equal(statuses(run.report).firewall, "applied");
        assert.equal(tcpConnect(attacker(), host().v6, 443), "open");
        assert.doesNotMatch(sh(host(), "iptables -S; ip6tables -S").stdout, /MORH-BLOCKLISTS|morh-bl-/);
        assert.equal(sh(host(), "ipset list -t morh-bl-scanners-6 | sed -n 's/Number of entries: //p'").stdout.trim(), "0");
    });
});
