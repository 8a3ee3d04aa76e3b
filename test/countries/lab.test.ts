// Countries on a lab host, judged from outside, with a fixture database (lab-countries.csv) that
// gives the lab's documentation ranges countries: bad codes refused before the host is touched;
// the attacker's country blocked on every port over IPv4 and IPv6; the trusted workstation kept
// although its country is blocked; https open to support's country only (its IPv4), not to its
// IPv6 (another country); the sets loaded at boot before the rules; drift when the database
// changes, and an apply that sends only the changed lines; the rules gone when countries go.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { needs } from "../helpers/needs";
import { findTemplatesDir } from "../../src/render/templates";
import { applyFromWorkstation, driftFromWorkstation, labStackFile, sh, sshLoginWorks, startTestLab, statuses, tcpConnect, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

const FIXTURE = join(findTemplatesDir(), "..", "test", "countries", "lab-countries.csv");

let lab: TestLab;
const host = () => lab.host(1);
const attacker = () => lab.client("attacker");
const workstation = () => lab.client("workstation");
const support = () => lab.client("support");

/** A stack with these countries; its database (the fixture, or `csv`) beside it. */
function stackWithCountries(name: string, countries: Record<string, unknown>, csv = readFileSync(FIXTURE, "utf8")): string {
    const stack = labStackFile(lab, name, { firewall: { countries: { database: "countries.csv", ...countries } } });
    writeFileSync(join(dirname(stack), "countries.csv"), csv);
    return stack;
}

const rules = { block: ["CN", "FI"], services: { https: ["DE"] } };

// The CLI's caches (compiled sets, parsed lists, contents for deltas) in the lab's own directory, not root's.
before(async () => {
    lab = await startTestLab(1, { ownCaches: true });
});
after(() => lab?.stop());

describe("countries on a lab host", () => {
    it("refuses bad codes before the host is touched, naming them", () => {
        // The rules (without iptables-save's time stamps), the sets, and mor-harden's state directory.
        const hostState = "{ iptables-save -t filter; ip6tables-save -t filter; } | grep -v '^#'; ipset list -n; ls -R /var/lib/mor-harden 2>&1";
        const before = sh(host(), hostState).stdout;
        const run = applyFromWorkstation(lab, stackWithCountries("bad", { block: ["CN", "XX"], services: { https: ["de"] } }));
        assert.notEqual(run.code, 0);
        assert.match(run.stderr + run.stdout, /firewall\.countries\.block\[1\]: "XX" is not an ISO 3166-1 alpha-2 country code/);
        assert.match(run.stderr + run.stdout, /firewall\.countries\.services\.https\[0\]: "de" is not an ISO 3166-1 alpha-2 country code/);
        assert.equal(sh(host(), hostState).stdout, before, "the host's rules, sets and state as they were");
    });

    it("blocks the attacker's country on every port over IPv4 and IPv6, keeps the trusted workstation, opens https to one country only", () => {
        const run = applyFromWorkstation(lab, stackWithCountries("block", rules));
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.equal(statuses(run.report).blocklists, "applied");
        for (const port of [80, 443]) {
            assert.equal(tcpConnect(attacker(), host().v4, port), "filtered", `attacker IPv4 ${port}`);
            assert.equal(tcpConnect(attacker(), host().v6, port), "filtered", `attacker IPv6 ${port}`);
        }
        // The workstation's country (FI) is blocked; it is trusted, and trusted sources win.
        assert.ok(sshLoginWorks(lab, host().v4), "trusted over IPv4");
        assert.ok(sshLoginWorks(lab, host().v6), "trusted over IPv6");
        assert.equal(tcpConnect(workstation(), host().v6, 443), "open");
        // https only from DE (support's IPv4); support's IPv6 is SE: http, open to all, answers it.
        assert.equal(tcpConnect(support(), host().v4, 443), "open", "support IPv4, DE");
        assert.equal(tcpConnect(support(), host().v6, 443), "filtered", "support IPv6, SE");
        assert.equal(tcpConnect(support(), host().v6, 80), "open", "http is open to every country");
    });

    it("persists the country sets where the boot loader reads them, before the rules", () => {
        const boot = sh(
            host(),
            "unshare --net sh -c '/usr/share/netfilter-persistent/plugins.d/10-ipset start && /usr/share/netfilter-persistent/plugins.d/15-ip4tables start && /usr/share/netfilter-persistent/plugins.d/25-ip6tables start && ip6tables -S && ipset list morh-cc-block-6'",
            30_000,
        );
        assert.equal(boot.code, 0, boot.stderr);
        assert.match(boot.stdout, /-A MORH-BLOCKLISTS -m set --match-set morh-cc-block-6 src -j DROP/);
        assert.match(boot.stdout, /-A MORH-INPUT -p tcp -m tcp --dport 443 -m set --match-set morh-cc-in-https-6 src -j ACCEPT/);
        assert.match(boot.stdout, /^2001:db8:113::\/48$/m);
        // A sets file that does not load (here: its loader skipped): mor-harden's plugin creates the
        // sets empty, so the rules still load and the firewall holds.
        const unloaded = sh(
            host(),
            "unshare --net sh -c 'P=/usr/share/netfilter-persistent/plugins.d; $P/14-mor-harden-sets start && $P/15-ip4tables start && $P/25-ip6tables start && iptables -S && ipset list -t morh-cc-in-https-4'",
            30_000,
        );
        assert.equal(unloaded.code, 0, unloaded.stderr + unloaded.stdout);
        assert.match(unloaded.stdout, /-A MORH-INPUT -p tcp -m tcp --dport 443 -m set --match-set morh-cc-in-https-4 src -j ACCEPT/);
        assert.match(unloaded.stdout, /-P INPUT DROP|-A INPUT -j MORH-INPUT/, "our rules, not an open host");
        assert.match(unloaded.stdout, /Number of entries: 0/);
        // Without the plugin the same boot loads no rules at all (what it guards against).
        const bare = sh(host(), "unshare --net sh -c '/usr/share/netfilter-persistent/plugins.d/15-ip4tables start; iptables -S'", 30_000);
        assert.doesNotMatch(bare.stdout, /MORH-INPUT/);
    });

    it("shows drift when the database changes, and applies only the changed lines through the blocklists concern", () => {
        assert.equal(driftFromWorkstation(lab, stackWithCountries("block", rules)).code, 0, "clean");
        // Support's IPv4 range moves from DE to SE: https closes to it.
        const moved = readFileSync(FIXTURE, "utf8").replace("198.51.100.16,198.51.100.31,DE", "198.51.100.16,198.51.100.31,SE");
        const stack = stackWithCountries("moved", rules, moved);
        const drift = driftFromWorkstation(lab, stack);
        assert.equal(drift.code, 1, drift.stdout + drift.stderr);
        assert.match(drift.stdout, /content differs/, "the sets file, by its digest");
        assert.match(drift.stdout, /^-morh-cc-in-https-4 0 [0-9a-f]{64}\n\+morh-cc-in-https-4 1 [0-9a-f]{64}$/m, "the set support's range left");
        const run = applyFromWorkstation(lab, stack);
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.deepEqual(statuses(run.report), { blocklists: "applied", firewall: "unchanged", sshd: "unchanged", fail2ban: "unchanged", apache: "unchanged" });
        const changes = sh(host(), 'cd "$(ls -td /var/lib/mor-harden/tx/*-blocklists-* | head -n 1)" && wc -l < removed.0 && wc -l < added.0');
        assert.equal(changes.stdout, "1\n0\n", "one line removed, nothing else sent");
        assert.equal(tcpConnect(support(), host().v4, 443), "filtered", "DE no longer holds support's IPv4");
        assert.equal(driftFromWorkstation(lab, stack).code, 0);
    });

    it("rolls back a change of the sets alone that shuts the operator out (ssh narrowed to a country the workstation is not in)", () => {
        // The workstation is not trusted here: ssh is public, open to FI (the workstation's country) only.
        const untrusted = { trusted: ["198.51.100.99", "2001:db8:51::99"], services: { ssh: { exposure: "public" } } };
        const stack = (name: string, ssh: string[], connection = {}) => {
            const file = labStackFile(lab, name, { firewall: { ...untrusted, countries: { database: "countries.csv", services: { ssh } } }, connection });
            writeFileSync(join(dirname(file), "countries.csv"), readFileSync(FIXTURE, "utf8"));
            return file;
        };
        const open = applyFromWorkstation(lab, stack("ssh-fi", ["FI"]));
        assert.equal(open.code, 0, open.stderr + open.stdout);
        assert.ok(sshLoginWorks(lab, host().v4), "FI reaches ssh");
        const members = () => sh(host(), "ipset list morh-cc-in-ssh-4 | sed -n '/^Members:/,$p'").stdout;
        const setsBefore = members();
        // Only the set changes (the rules name the same set): the firewall's transaction is unchanged.
        const narrowed = applyFromWorkstation(lab, stack("ssh-se", ["SE"], { connectTimeout: 3 }));
        assert.equal(narrowed.code, 1, narrowed.stderr + narrowed.stdout);
        assert.equal(statuses(narrowed.report).blocklists, "rolled-back", narrowed.stdout);
        assert.equal(statuses(narrowed.report).firewall, undefined, "stopped before the firewall");
        assert.ok(sshLoginWorks(lab, host().v4), "the operator still gets in");
        assert.equal(members(), setsBefore, "the set as it was");
    });

    it("takes the rules away and destroys or empties the country sets when countries are removed", () => {
        const run = applyFromWorkstation(lab, labStackFile(lab, "none"));
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.equal(tcpConnect(attacker(), host().v6, 443), "open");
        assert.doesNotMatch(sh(host(), "iptables -S; ip6tables -S").stdout, /MORH-BLOCKLISTS|morh-cc-/);
        // Gone, or empty where a rule still named it when it was retired.
        for (const set of ["morh-cc-block-4", "morh-cc-in-https-4", "morh-cc-in-ssh-4"]) {
            const entries = sh(host(), `ipset list -t ${set} 2>/dev/null | sed -n 's/Number of entries: //p'`).stdout.trim();
            assert.ok(entries === "" || entries === "0", `${set}: ${entries} entries`);
        }
    });
});
