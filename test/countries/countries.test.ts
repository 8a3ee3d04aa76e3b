// Countries without a host: codes and their named errors, database lines with file:line errors,
// ranges as the fewest CIDRs (judged by Python's ipaddress.summarize_address_range), the shipped
// database (pinned, special-purpose ranges never a country's), the rules and the sets file, and
// the sets in a scratch network namespace (real ipset restore, digests as ipset prints them,
// real iptables-restore --test of the rules naming them).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { renderBlocklists } from "../../src/blocklists/render";
import { ConfigError } from "../../src/config/schema";
import { loadEnvironment } from "../../src/config/stack-file";
import { COUNTRY_CODES, isCountryCode } from "../../src/countries/codes";
import { compileCountries, SPECIAL_PURPOSE } from "../../src/countries/database";
import { countryBlockSet, countryServiceSet } from "../../src/countries/render";
import { addressNumber, cidrRange, mergeRanges, parseCountryCsv, rangeToCidrs, subtractRanges } from "../../src/countries/source";
import { buildRuleset, renderFirewall } from "../../src/firewall/render";
import { findTemplatesDir } from "../../src/render/templates";
import { minimalRaw, renderInputFor } from "../helpers/fixtures";
import { requires } from "../helpers/needs";
import { netnsAvailable, startNetns, type Netns } from "../firewall/netns";

const FIXTURE = join(findTemplatesDir(), "..", "test", "countries", "lab-countries.csv");
const dirs: string[] = [];
const namespaces: Netns[] = [];
const previousCache = process.env.XDG_CACHE_HOME;
// The compiled sets this run keeps: the test's own cache, never the user's.
process.env.XDG_CACHE_HOME = mkdtempSync(join(tmpdir(), "morh-countries-cache-"));
dirs.push(process.env.XDG_CACHE_HOME);
after(() => {
    namespaces.forEach((netns) => netns.stop());
    dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
    if (previousCache === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = previousCache;
});
const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "morh-countries-"));
    dirs.push(dir);
    return dir;
};

/** A stack file with these `firewall.countries` (and files beside it); returns its path. */
function stackWithCountries(countries: unknown, files: Record<string, string> = {}, firewallExtra: Record<string, unknown> = {}): string {
    const dir = tempDir();
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const raw = minimalRaw();
    const firewall = { ...(raw.firewall as object), countries, ...firewallExtra };
    const config = Object.fromEntries(Object.entries({ ...raw, firewall }).map(([key, value]) => [`mor-harden:${key}`, value]));
    const path = join(dir, "Pulumi.cc.yaml");
    writeFileSync(path, stringify({ config }));
    return path;
}

const configError = (stack: string, pattern: RegExp) =>
    assert.throws(
        () => loadEnvironment({ file: stack }),
        (error: unknown) => error instanceof ConfigError && pattern.test(error.message),
    );

describe("country codes", () => {
    it("are ISO 3166-1 alpha-2 (Debian's iso-codes) and XK", () => {
        assert.equal(COUNTRY_CODES.size, 250);
        for (const code of ["DE", "FI", "CN", "US", "XK", "AX"]) assert.ok(isCountryCode(code), code);
        for (const code of ["XX", "de", "UK", "EU", "D", "DEU", ""]) assert.ok(!isCountryCode(code), code);
    });

    it("refuse a bad code, a twice-listed one, a service not public or unknown, by name and path, before the database is read", () => {
        configError(stackWithCountries({ block: ["CN", "XX"] }), /firewall\.countries\.block\[1\]: "XX" is not an ISO 3166-1 alpha-2 country code/);
        configError(stackWithCountries({ block: ["de"] }), /firewall\.countries\.block\[0\]: "de" is not an ISO 3166-1 alpha-2/);
        configError(stackWithCountries({ block: ["CN", "CN"] }), /firewall\.countries\.block\[1\]: CN is listed twice/);
        configError(stackWithCountries({ services: { https: ["ZZ"] } }), /firewall\.countries\.services\.https\[0\]: "ZZ" is not an ISO/);
        configError(stackWithCountries({ services: { https: [] } }), /firewall\.countries\.services\.https: names no country/);
        configError(stackWithCountries({ database: FIXTURE, services: { ssh: ["DE"] } }), /firewall\.countries\.services\.ssh: ssh is trusted, not public/);
        configError(stackWithCountries({ database: FIXTURE, services: { ftp: ["DE"] } }), /firewall\.countries\.services\.ftp: "ftp" is not a service/);
        // A bad code with a database that does not exist: the code is named, the database never opened.
        configError(stackWithCountries({ database: "nowhere.csv", block: ["QQ"] }), /"QQ" is not an ISO/);
        assert.throws(
            () => loadEnvironment({ file: stackWithCountries({ database: "nowhere.csv", block: ["QQ"] }) }),
            (error: Error) => !/nowhere/.test(error.message),
        );
    });
});

describe("country databases", () => {
    it("name each bad line by file and line", () => {
        const text = [
            "# comment",
            "198.51.100.0,198.51.100.255,DE",
            "198.51.100.0,198.51.100.255",
            "198.51.100.300,198.51.100.255,DE",
            "198.51.100.0,2001:db8::1,DE",
            "198.51.100.9,198.51.100.1,DE",
            "2001:db8::,2001:db8::ff,de",
            "::fffe:ffff:ffff,::ffff:0:1,DE",
            "fe80::%1,fe80::ff,DE",
            "::1.2.3.4,::1.2.3.7,DE",
            "",
        ].join("\n");
        const { problems } = parseCountryCsv(text);
        assert.deepEqual(
            problems.map((problem) => problem.line),
            [3, 4, 5, 6, 7, 8, 9, 10],
        );
        assert.match(problems[6].message, /zone index/);
        assert.match(problems[7].message, /IPv4-compatible/);
        assert.match(problems[5].message, /IPv4-mapped/);
        assert.match(problems[3].message, /comes after/);
        const stack = stackWithCountries({ database: "own.csv", block: ["DE"] }, { "own.csv": text });
        configError(stack, /firewall\.countries\.database: .*own\.csv:3: "198\.51\.100\.0,198\.51\.100\.255" is not first,last,country/);
        configError(stackWithCountries({ database: "nowhere.csv", block: ["DE"] }), /cannot read the country database ".*nowhere\.csv" \(ENOENT\)/);
    });

    it("covers a whole family with two /1 blocks (ipset's hash:net takes no /0)", () => {
        assert.deepEqual(rangeToCidrs("v4", { first: 0n, last: 2n ** 32n - 1n }), ["0.0.0.0/1", "128.0.0.0/1"]);
        assert.deepEqual(rangeToCidrs("v6", { first: 0n, last: 2n ** 128n - 1n }), ["::/1", "8000::/1"]);
        assert.deepEqual(rangeToCidrs("v4", { first: 2n ** 31n, last: 2n ** 32n - 1n }), ["128.0.0.0/1"]);
    });

    it("refuses a stack's own compiled sets (they come from the database only) and countries on a service spa knocking opens to anyone", () => {
        const compiled = { database: { name: "x", version: "1", date: "", licence: "x" }, block: { v4: ["1.2.3.4\ncreate evil"], v6: [] }, services: {} };
        configError(stackWithCountries({ database: FIXTURE, block: ["DE"], compiled }), /firewall\.countries\.compiled: is not a setting/);
        const dir = tempDir();
        writeFileSync(
            join(dir, "spa.keys"),
            "KEY_BASE64 a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=\nHMAC_KEY_BASE64 a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=\n",
        );
        const stack = stackWithCountries({ database: FIXTURE, services: { https: ["DE"] } });
        const text = readFileSync(stack, "utf8").replace(
            "config:\n",
            `config:\n  mor-harden:knocking: { mode: spa, guards: [https], spa: { keyFile: ${join(dir, "spa.keys")} } }\n`,
        );
        writeFileSync(stack, text);
        configError(stack, /firewall\.countries\.services\.https: https is guarded by spa knocking/);
    });

    it("turns ranges into the fewest CIDRs, as Python's ipaddress.summarize_address_range does, IPv4 and IPv6", () => {
        let seed = 25;
        const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
        const ranges: [string, string, "v4" | "v6"][] = [
            ["198.18.0.5", "198.18.1.3", "v4"],
            ["0.0.0.1", "255.255.255.254", "v4"],
            ["2001:db8::1", "2001:db8:0:1::", "v6"],
            ["2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "v6"],
            ["::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "v6"],
        ];
        for (let i = 0; i < 40; i++) {
            const a = random() * 2;
            const b = a + (random() % 100000);
            const v4 = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
            ranges.push([v4(a), v4(Math.min(b, 2 ** 32 - 1)), "v4"]);
            const v6 = (n: number) => `2001:db8:${(n >>> 16).toString(16)}::${(n & 0xffff).toString(16)}:0`;
            ranges.push([v6(a % 2 ** 31), v6(b % 2 ** 31 >= a % 2 ** 31 ? b % 2 ** 31 : a % 2 ** 31), "v6"]);
        }
        const ours = ranges.map(([first, last, family]) => rangeToCidrs(family, { first: addressNumber(family, first), last: addressNumber(family, last) }));
        const script = `import ipaddress, json, sys
for first, last, family in json.load(sys.stdin):
    cidrs = ipaddress.summarize_address_range(ipaddress.ip_address(first), ipaddress.ip_address(last))
    print(" ".join(c.network_address.compressed if c.prefixlen == c.max_prefixlen else c.compressed for c in cidrs))`;
        const python = spawnSync("python3", ["-c", script], { input: JSON.stringify(ranges), encoding: "utf8" });
        assert.equal(python.status, 0, python.stderr);
        assert.deepEqual(
            ours.map((cidrs) => cidrs.join(" ")),
            python.stdout.trimEnd().split("\n"),
        );
        assert.deepEqual(ours[0], [
            "198.18.0.5",
            "198.18.0.6/31",
            "198.18.0.8/29",
            "198.18.0.16/28",
            "198.18.0.32/27",
            "198.18.0.64/26",
            "198.18.0.128/25",
            "198.18.1.0/30",
        ]);
    });

    it("leaves excluded ranges out of merged ones, keeping every other address", () => {
        const ranges = (pairs: [number, number][]) => pairs.map(([first, last]) => ({ first: BigInt(first), last: BigInt(last) }));
        assert.deepEqual(
            subtractRanges(
                ranges([
                    [0, 100],
                    [150, 160],
                    [200, 300],
                ]),
                ranges([
                    [10, 20],
                    [30, 40],
                    [95, 155],
                    [250, 400],
                ]),
            ),
            ranges([
                [0, 9],
                [21, 29],
                [41, 94],
                [156, 160],
                [200, 249],
            ]),
        );
        assert.deepEqual(subtractRanges(ranges([[5, 6]]), ranges([[0, 10]])), []);
        assert.deepEqual(
            mergeRanges(
                ranges([
                    [10, 20],
                    [0, 9],
                    [15, 30],
                    [32, 33],
                ]),
            ),
            ranges([
                [0, 30],
                [32, 33],
            ]),
        );
    });

    it("joins a set's countries' ranges where they touch: the fixture's FI and DE as one CIDR", () => {
        const compiled = compileCountries({ database: FIXTURE, block: ["FI", "DE"], services: { https: ["CN"] } }, "/")!.compiled!;
        assert.deepEqual(compiled.block, { v4: ["198.51.100.0/27"], v6: ["2001:db8:51::/123"] });
        assert.deepEqual(compiled.services.https.v4, [
            "198.18.0.128/25",
            "198.18.0.16/28",
            "198.18.0.32/27",
            "198.18.0.5",
            "198.18.0.6/31",
            "198.18.0.64/26",
            "198.18.0.8/29",
            "198.18.1.0/30",
            "203.0.113.0/24",
        ]);
        assert.deepEqual(compiled.services.https.v6, ["2001:db8:113::/48"]);
        assert.match(compiled.database.version, /^sha256 [0-9a-f]{12}$/);
        assert.equal(compiled.database.licence, "the operator's own");
    });

    it("ships a pinned database whose special-purpose ranges are no country's (its data gives 192.168.0.0/16 to AU, 2001:db8::/32 to JP)", () => {
        const compiled = compileCountries({ block: ["AU", "JP"], services: {} }, "/").compiled!;
        assert.equal(compiled.database.name, "@ip-location-db/geo-whois-asn-country");
        assert.equal(compiled.database.version, "2.3.2026061719");
        assert.equal(compiled.database.date, "2026-06-17");
        assert.match(compiled.database.licence, /CC BY 4\.0/);
        assert.ok(compiled.block.v4.length > 1000 && compiled.block.v6.length > 1000, `${compiled.block.v4.length} and ${compiled.block.v6.length} entries`);
        for (const family of ["v4", "v6"] as const) {
            const special = SPECIAL_PURPOSE[family].map((cidr) => cidrRange(family, cidr));
            for (const entry of compiled.block[family]) {
                const range = cidrRange(family, entry.includes("/") ? entry : `${entry}/${family === "v4" ? 32 : 128}`);
                const overlapping = special.find((cut) => cut.first <= range.last && range.first <= cut.last);
                assert.equal(overlapping, undefined, `${entry} is special-purpose`);
            }
        }
        // Kept in the user's cache by the database's digest and the rules: a later process reads it back.
        assert.ok(readdirSync(join(process.env.XDG_CACHE_HOME!, "mor-harden", "countries")).some((name) => name.endsWith(".json")));
    });
});

describe("country rules and sets", () => {
    const fixtureStack = () =>
        loadEnvironment({
            file: stackWithCountries(
                { database: FIXTURE, block: ["CN", "FI"], services: { https: ["DE"] } },
                {},
                { trusted: ["198.51.100.10", "2001:db8:51::10"] },
            ),
        }).hosts[0].config;

    it("drops the blocked countries after the trusted sources return, and opens https only to its country's set", async () => {
        const input = await renderInputFor(fixtureStack());
        for (const family of ["v4", "v6"] as const) {
            const chains = buildRuleset(input, family).chains;
            const blocklists = chains.find((chain) => chain.name === "MORH-BLOCKLISTS")!.rules;
            assert.equal(blocklists.at(-1), `-m set --match-set ${countryBlockSet(family)} src -j DROP`);
            assert.match(blocklists[0], /^-s \S+ -j RETURN$/, "trusted first");
            const inputRules = chains.find((chain) => chain.name === "MORH-INPUT")!.rules;
            assert.equal(inputRules[1], "-j MORH-BLOCKLISTS", "before everything but loopback");
            const https = inputRules.filter((rule) => rule.includes("--dport 443"));
            const trusted = family === "v4" ? "198.51.100.10" : "2001:db8:51::10";
            assert.deepEqual(
                https,
                [
                    `-s ${trusted} -p tcp -m tcp --dport 443 -j ACCEPT`,
                    `-p tcp -m tcp --dport 443 -m set --match-set ${countryServiceSet("https", family)} src -j ACCEPT`,
                ],
                "trusted always, then the countries",
            );
            assert.ok(inputRules.includes("-p tcp -m tcp --dport 80 -j ACCEPT"), "http stays open to all");
        }
        const plan = renderBlocklists(input)!;
        assert.ok(plan.summary.some((line) => /^countries from .*lab-countries\.csv sha256 [0-9a-f]{12} \(the operator's own\)$/.test(line)));
        assert.ok(
            plan.summary.includes("country sets: morh-cc-block-4 10, morh-cc-block-6 2, morh-cc-in-https-4 1, morh-cc-in-https-6 0"),
            plan.summary.join("\n"),
        );
    });

    it(
        "loads the country sets beside a list's, swaps a changed database in, and the rules naming them load",
        { skip: requires("root and unshare", netnsAvailable) },
        async () => {
            const dir = tempDir();
            writeFileSync(join(dir, "scanners.list"), "198.18.9.9\n");
            const config = loadEnvironment({
                file: stackWithCountries(
                    { database: FIXTURE, block: ["CN", "FI"], services: { https: ["DE"] } },
                    {},
                    { blocklists: [{ name: "scanners", file: join(dir, "scanners.list") }] },
                ),
            }).hosts[0].config;
            const input = await renderInputFor(config);
            const plan = renderBlocklists(input)!;
            const etc = tempDir();
            writeFileSync(join(etc, "ipsets"), plan.artifacts[0].content);
            const netns = await startNetns("nft", { "/etc/iptables": etc });
            namespaces.push(netns);
            for (const command of [...plan.validate, ...plan.activate]) netns.ok(command);
            const view = plan.liveViews[0];
            assert.ok("text" in view.expected);
            assert.equal(netns.ok(view.live).trim(), view.expected.text, "ipset prints the entries as rendered (digests equal)");
            const firewall = renderFirewall(input);
            for (const command of firewall.prepare) netns.ok(command);
            for (const index of [0, 1])
                netns.ok(`printf '%s' "$RULES" | ${index === 0 ? "iptables" : "ip6tables"}-restore --test --noflush`, {
                    RULES: firewall.artifacts[index].content,
                });
            // Another database (support's range now SE): the changed sets swapped in, none left behind.
            const changedCsv = join(tempDir(), "changed.csv");
            writeFileSync(changedCsv, `198.51.100.16,198.51.100.31,SE\n2001:db8:51::20,2001:db8:51::2f,DE\n`);
            const changed = renderBlocklists(
                await renderInputFor(
                    loadEnvironment({
                        file: stackWithCountries(
                            { database: changedCsv, block: ["CN"], services: { https: ["DE"] } },
                            {},
                            { blocklists: [{ name: "scanners", file: join(dir, "scanners.list") }] },
                        ),
                    }).hosts[0].config,
                ),
            )!;
            assert.notEqual(changed.artifacts[0].content, plan.artifacts[0].content);
            writeFileSync(join(etc, "ipsets"), changed.artifacts[0].content);
            for (const command of changed.activate) netns.ok(command);
            assert.ok("text" in changed.liveViews[0].expected);
            assert.equal(netns.ok(changed.liveViews[0].live).trim(), changed.liveViews[0].expected.text);
            assert.match(netns.ok("ipset list -n"), /^morh-cc-in-https-6$/m);
            assert.doesNotMatch(netns.ok("ipset list -n"), /morh-ncc-|morh-new-/);
            assert.equal(netns.ok("ipset list morh-cc-in-https-6 | sed '1,/^Members:$/d'").trim(), "2001:db8:51::20/124");
            // Drift of a set edited by hand names the entry.
            netns.ok("ipset add morh-cc-block-4 198.18.200.0/24");
            assert.match(
                netns.ok(changed.liveViews[0].live),
                /^morh-cc-block-4 \d+ [0-9a-f]{64}\n {2}1 in the set but not listed \(added\), first: 198\.18\.200\.0\/24 $/m,
            );
            // Countries taken away while the firewall's rules still name their sets (its transaction
            // comes after): the block's set is emptied, the one https admits through is kept whole.
            netns.ok(
                "iptables -A INPUT -m set --match-set morh-cc-block-4 src -j DROP && iptables -A INPUT -p tcp --dport 443 -m set --match-set morh-cc-in-https-4 src -j ACCEPT",
            );
            const admitted = netns.ok("ipset list morh-cc-in-https-4 | sed '1,/^Members:$/d'");
            const listOnly = renderBlocklists(
                await renderInputFor(
                    loadEnvironment({ file: stackWithCountries(undefined, {}, { blocklists: [{ name: "scanners", file: join(dir, "scanners.list") }] }) })
                        .hosts[0].config,
                ),
            )!;
            writeFileSync(join(etc, "ipsets"), listOnly.artifacts[0].content);
            for (const command of listOnly.activate) netns.ok(command);
            assert.equal(netns.ok("ipset list -t morh-cc-block-4 | sed -n 's/^Number of entries: //p'").trim(), "0", "a set that drops is emptied");
            assert.equal(netns.ok("ipset list morh-cc-in-https-4 | sed '1,/^Members:$/d'"), admitted, "a set that admits keeps its entries");
            assert.doesNotMatch(netns.ok("ipset list -n"), /morh-cc-in-https-6|morh-cc-block-6/, "the sets no rule names are destroyed");
        },
    );
});
