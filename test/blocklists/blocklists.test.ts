// Blocklists without a host: parsing and normalization (judged against the real ipset's own
// printing), errors naming file and line, the sets file and the live view in a scratch network
// namespace (real `ipset restore`, real `iptables-restore --test`), the firewall's chain.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { lineDelta, rememberContent } from "../../src/apply/bulk";
import { parseBlocklist, parseEntry, readBlocklistFile } from "../../src/blocklists/parse";
import { BLOCKLIST_CHAIN, blocklistSet, renderBlocklists } from "../../src/blocklists/render";
import { ConfigError } from "../../src/config/schema";
import { FILL_VIEWS_VARIABLE } from "../../src/render/artifact";
import { loadEnvironment } from "../../src/config/stack-file";
import { buildRuleset, renderFirewall } from "../../src/firewall/render";
import { renderHost } from "../../src/compose/host";
import { findTemplatesDir } from "../../src/render/templates";
import { minimalConfig, minimalRaw, renderInputFor } from "../helpers/fixtures";
import { netnsAvailable, startNetns, type Netns } from "../firewall/netns";
import { requires } from "../helpers/needs";

const SAMPLE = join(findTemplatesDir(), "..", "src", "blocklists", "samples", "voip-scanners.list");
const dirs: string[] = [];
const namespaces: Netns[] = [];
after(() => {
    namespaces.forEach((netns) => netns.stop());
    dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
});
const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "morh-blocklists-"));
    dirs.push(dir);
    return dir;
};

/** A stack file in its own directory, naming list files relative to it; returns its path. */
function stackWithLists(lists: Record<string, string>, extra: Record<string, unknown> = {}): string {
    const dir = tempDir();
    for (const [name, text] of Object.entries(lists)) writeFileSync(join(dir, `${name}.list`), text);
    const raw = minimalRaw();
    const firewall = {
        ...(raw.firewall as object),
        trusted: ["198.51.100.10", "198.18.0.1"],
        blocklists: Object.keys(lists).map((name) => ({ name, file: `${name}.list` })),
        ...extra,
    };
    const config = Object.fromEntries(Object.entries({ ...raw, firewall }).map(([key, value]) => [`mor-harden:${key}`, value]));
    const path = join(dir, "Pulumi.bl.yaml");
    writeFileSync(path, stringify({ config }));
    return path;
}

describe("blocklist files", () => {
    it("reads addresses and CIDRs of both families, comments and blank lines; normalized as ipset prints them", () => {
        const { entries, problems } = parseBlocklist(
            "# head\n\n10.1.2.3/8\n1.2.3.4/32  # one\n1.2.3.4\n2001:DB8:0:0:0:0:0:1\n2001:db8:0:1::5/64\n::ffff:0:0:1/127\n",
        );
        assert.deepEqual(problems, []);
        assert.deepEqual(entries, { v4: ["1.2.3.4", "10.0.0.0/8"], v6: ["2001:db8:0:1::/64", "2001:db8::1", "::ffff:0:0:0/127"] });
    });

    it("names each bad line", () => {
        const { problems } = parseBlocklist("1.2.3.4\n1.2.3.256\nexample.com\n10.0.0.0/33\n0.0.0.0/0\n::ffff:1.2.3.4\n");
        assert.deepEqual(
            problems.map((problem) => problem.line),
            [2, 3, 4, 5, 6],
        );
        assert.match(problems[3].message, /prefix length must be 1 to 32/);
    });

    it("stops the load of a stack with a bad line, naming the file and the line, before any host is touched", () => {
        const stack = stackWithLists({ scanners: "198.18.0.1\n198.18.0.300\n" });
        assert.throws(
            () => loadEnvironment({ file: stack }),
            (error: unknown) => error instanceof ConfigError && /firewall\.blocklists\[0\]\.file.*scanners\.list:2: "198\.18\.0\.300"/.test(error.message),
        );
        assert.throws(
            () => loadEnvironment({ file: stackWithLists({}, { blocklists: [{ name: "gone", file: "nowhere.list" }] }) }),
            /cannot read .*nowhere\.list.*ENOENT/,
        );
    });

    it("reads a file relative to the stack file, or absolute", () => {
        const relative = loadEnvironment({ file: stackWithLists({ scanners: "198.18.0.1\n2001:db8::1\n" }) });
        assert.deepEqual(relative.hosts[0].config.firewall.blocklists[0].entries, { v4: ["198.18.0.1"], v6: ["2001:db8::1"] });
        const absolute = loadEnvironment({ file: stackWithLists({}, { blocklists: [{ name: "sample", file: SAMPLE }] }) });
        assert.equal(absolute.hosts[0].config.firewall.blocklists[0].entries.v4.length, 4);
    });
});

describe("parsed lists kept in the user's cache", () => {
    const withCache = (work: (cacheHome: string) => void) => {
        const previous = process.env.XDG_CACHE_HOME;
        process.env.XDG_CACHE_HOME = tempDir();
        try {
            work(process.env.XDG_CACHE_HOME);
        } finally {
            if (previous === undefined) delete process.env.XDG_CACHE_HOME;
            else process.env.XDG_CACHE_HOME = previous;
        }
    };
    const listFile = (text: string) => {
        const path = join(tempDir(), "scanners.list");
        writeFileSync(path, text);
        return path;
    };
    const digest = (text: string) => createHash("sha256").update(text).digest("hex");

    it("keeps a list parsed once by its file's digest, private to the user, and reads it back instead of parsing again", () => {
        withCache((cacheHome) => {
            const text = "198.18.0.1\n2001:db8::1\n";
            assert.deepEqual(readBlocklistFile(listFile(text)).entries, { v4: ["198.18.0.1"], v6: ["2001:db8::1"] });
            const kept = join(cacheHome, "mor-harden", "lists", `${digest(text)}.json`);
            assert.equal(statSync(join(cacheHome, "mor-harden", "lists")).mode & 0o777, 0o700);
            assert.equal(statSync(kept).mode & 0o777, 0o600);
            // What the cache holds is what a later process gets for the same bytes (another path too).
            writeFileSync(kept, JSON.stringify({ v4: ["198.18.0.2"], v6: [] }));
            assert.deepEqual(readBlocklistFile(listFile(text)).entries, { v4: ["198.18.0.2"], v6: [] });
            // A kept entry of another shape is parsed again.
            writeFileSync(kept, JSON.stringify({ v4: [1], v6: [] }));
            assert.deepEqual(readBlocklistFile(listFile(text)).entries, { v4: ["198.18.0.1"], v6: ["2001:db8::1"] });
        });
    });

    it("keeps no list with a bad line, and uses no directory others can write", () => {
        withCache((cacheHome) => {
            const bad = "198.18.0.1\n198.18.0.300\n";
            assert.match(readBlocklistFile(listFile(bad)).problems[0], /scanners\.list:2/);
            assert.match(readBlocklistFile(listFile(bad)).problems[0], /scanners\.list:2/, "named again, not read from a cache");
            assert.deepEqual(readdirSync(join(cacheHome, "mor-harden", "lists")), []);
            chmodSync(join(cacheHome, "mor-harden", "lists"), 0o777);
            const text = "198.18.0.5\n";
            assert.deepEqual(readBlocklistFile(listFile(text)).entries, { v4: ["198.18.0.5"], v6: [] });
            assert.deepEqual(readdirSync(join(cacheHome, "mor-harden", "lists")), [], "nothing written where others can write");
        });
    });
});

describe("blocklists on the host side", { skip: requires("root and unshare", netnsAvailable) }, () => {
    it("prints every entry as ipset does (real ipset restore in a scratch namespace)", async () => {
        const lines = [
            "10.1.2.3/8",
            "1.2.3.4",
            "2001:DB8:0:0:1:0:0:1",
            "2001:db8:0:0:1::/80",
            "fe80:0:0:0:0:0:0:1",
            "2001:0:0:1:0:0:0:1",
            "2001:db8::/33",
            "1:0:0:0:1:0:0:0",
        ];
        const netns = await startNetns("nft");
        namespaces.push(netns);
        const restore = lines
            .map((line) => parseEntry(line))
            .map((parsed) => {
                assert.ok(!("problem" in parsed));
                return `add t-${parsed.family} ${parsed.entry}`;
            });
        netns.ok(
            `printf '%s\\n' 'create t-v4 hash:net family inet' 'create t-v6 hash:net family inet6' ${restore.map((line) => `'${line}'`).join(" ")} | ipset restore`,
        );
        const printed = netns.ok("ipset save | awk '$1 == \"add\" { print $3 }' | LC_ALL=C sort").trim().split("\n");
        const ours = restore.map((line) => line.split(" ")[2]).sort();
        assert.deepEqual(printed, ours);
    });

    it("loads the sets file, swaps a changed list in, and shows drift with counts and first entries", async () => {
        const stack = loadEnvironment({ file: stackWithLists({ scanners: "198.18.0.1\n198.18.4.0/24\n2001:db8:dead::1\n", other: "198.18.9.9\n" }) });
        const input = await renderInputFor(stack.hosts[0].config);
        const plan = renderBlocklists(input)!;
        const etc = tempDir();
        writeFileSync(join(etc, "ipsets"), plan.artifacts[0].content);
        const netns = await startNetns("nft", { "/etc/iptables": etc });
        namespaces.push(netns);
        for (const command of [...plan.validate, ...plan.snapshot, ...plan.activate]) netns.ok(command);
        const view = plan.liveViews[0];
        assert.ok("text" in view.expected);
        assert.equal(netns.ok(view.live).trim(), view.expected.text);
        // The firewall's rules name the sets: they load (iptables-restore --test) once the sets exist.
        const firewall = renderFirewall(input);
        for (const command of firewall.prepare) netns.ok(command);
        netns.ok(`printf '%s' "$RULES" | iptables-restore --test --noflush`, { RULES: firewall.artifacts[0].content });
        // A changed list: swapped in whole, no set ever missing.
        const changed = renderBlocklists(
            await renderInputFor(
                loadEnvironment({ file: stackWithLists({ scanners: "198.18.0.1\n198.18.0.2\n2001:db8:dead::1\n", other: "198.18.9.9\n" }) }).hosts[0].config,
            ),
        )!;
        writeFileSync(join(etc, "ipsets"), changed.artifacts[0].content);
        for (const command of changed.activate) netns.ok(command);
        assert.ok("text" in changed.liveViews[0].expected);
        assert.equal(netns.ok(changed.liveViews[0].live).trim(), changed.liveViews[0].expected.text);
        netns.ok(`ipset del ${blocklistSet("scanners", "v4")} 198.18.0.2 && ipset add ${blocklistSet("scanners", "v4")} 198.18.7.7`);
        const drifted = netns.ok(changed.liveViews[0].live);
        assert.match(drifted, /^ {2}1 listed but not in the set \(removed\), first: 198\.18\.0\.2 $/m);
        assert.match(drifted, /^ {2}1 in the set but not listed \(added\), first: 198\.18\.7\.7 $/m);
        // Rolled back: the engine puts the old file back, the sets are loaded from it.
        writeFileSync(join(etc, "ipsets"), plan.artifacts[0].content);
        for (const command of changed.rollback) netns.ok(command);
        assert.equal(netns.ok(view.live).trim(), view.expected.text);
    });

    it("in an apply's read: remembers listings, lists no set when the sets file is not the rendered one, names no entries", async () => {
        const plan = renderBlocklists(
            await renderInputFor(loadEnvironment({ file: stackWithLists({ scanners: "198.18.0.1\n198.18.4.0/24\n2001:db8:dead::1\n" }) }).hosts[0].config),
        )!;
        const etc = tempDir();
        const varLib = tempDir();
        writeFileSync(join(etc, "ipsets"), plan.artifacts[0].content);
        // /var/lib is the test's own: the view's memory never reaches the machine running the tests.
        const netns = await startNetns("nft", { "/etc/iptables": etc, "/var/lib": varLib });
        namespaces.push(netns);
        for (const command of plan.activate) netns.ok(command);
        const view = plan.liveViews[0];
        assert.ok("text" in view.expected);
        const applyRead = { [FILL_VIEWS_VARIABLE]: "1" };
        assert.equal(netns.ok(view.live, applyRead).trim(), view.expected.text);
        const memory = () => readFileSync(join(varLib, "mor-harden", "views", "blocklist-listings"), "utf8");
        const remembered = memory();
        const set = blocklistSet("scanners", "v4");
        assert.match(remembered, new RegExp(`^${set} [0-9a-f]{64} [0-9a-f]{64} 2$`, "m"));
        // Remembered: the count is the memory's (a forged one shows), for drift as for an apply.
        writeFileSync(join(varLib, "mor-harden", "views", "blocklist-listings"), remembered.replace(/ 2$/m, " 9"));
        assert.match(netns.ok(view.live), new RegExp(`^${set} 9 `, "m"));
        writeFileSync(join(varLib, "mor-harden", "views", "blocklist-listings"), remembered);
        // A set edited by hand: the apply's read says it differs, drift also names the entries.
        netns.ok(`ipset add ${set} 198.18.7.7`);
        const differs = netns.ok(view.live, applyRead);
        assert.match(differs, new RegExp(`^${set} 3 [0-9a-f]{64}$`, "m"));
        assert.doesNotMatch(differs, /not listed/);
        assert.match(netns.ok(view.live), /^ {2}1 in the set but not listed \(added\), first: 198\.18\.7\.7 $/m);
        // The sets file on the host is not the rendered one: the apply loads the sets whatever they hold.
        const listed = memory();
        writeFileSync(join(etc, "ipsets"), plan.artifacts[0].content.replace("198.18.0.1", "198.18.0.2"));
        assert.equal(netns.ok(view.live, applyRead).trim(), "sets file not the rendered one: sets not read");
        assert.equal(memory(), listed, "nothing listed, nothing remembered");
        assert.match(netns.ok(view.live), /in the set but not listed/, "drift still lists them");
    });
});

describe("blocklists on the host side, when a load fails", { skip: requires("root and unshare", netnsAvailable) }, () => {
    it("leaves no morh-new-* set behind when a swap fails (a live set of another type and family)", async () => {
        const lists = { scanners: "198.18.0.1\n2001:db8:dead::1\n", other: "198.18.9.9\n" };
        const plan = renderBlocklists(await renderInputFor(loadEnvironment({ file: stackWithLists(lists) }).hosts[0].config))!;
        const etc = tempDir();
        writeFileSync(join(etc, "ipsets"), plan.artifacts[0].content);
        const netns = await startNetns("nft", { "/etc/iptables": etc });
        namespaces.push(netns);
        // The first set the file names, live as another kind of set: its swap fails, before or after the others'.
        const first = /^create (\S+) /m.exec(plan.artifacts[0].content)![1];
        netns.ok(`ipset create ${first} hash:ip family inet6`);
        const load = netns.run(plan.activate.join("\n"));
        assert.notEqual(load.code, 0, "the load fails");
        assert.match(load.stderr, /cannot be swapped/);
        assert.equal(netns.ok("ipset list -n | grep '^morh-new-' || true"), "");
        assert.match(netns.ok("ipset list -n"), new RegExp(`^${first}$`, "m"), "the live set is left as it was");
    });
});

describe("blocklists on rhel", () => {
    it("stops the apply when ipset.service cannot be enabled (the boot would load rules naming missing sets)", async () => {
        const stack = loadEnvironment({ file: stackWithLists({ scanners: "198.18.0.1\n" }, {}) });
        const config = { ...stack.hosts[0].config, os: "rhel" as const };
        const [prepare] = renderBlocklists(await renderInputFor(config))!.prepare;
        const bin = tempDir();
        const run = (systemctlExit: number) => {
            writeFileSync(join(bin, "systemctl"), `#!/bin/sh\n[ "$1 $2" = "enable ipset" ] || exit 9\nexit ${systemctlExit}\n`, { mode: 0o755 });
            return spawnSync("sh", ["-c", prepare], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
        };
        assert.equal(run(0).status, 0);
        const failed = run(1);
        assert.equal(failed.status, 1);
        assert.match(failed.stderr, /cannot enable ipset\.service/);
    });

    it("has iptables.service and ip6tables.service create the sets the rules name when the sets file did not load them", async () => {
        const stack = loadEnvironment({ file: stackWithLists({ scanners: "198.18.0.1\n" }, {}) });
        const plan = renderBlocklists(await renderInputFor({ ...stack.hosts[0].config, os: "rhel" as const }))!;
        const paths = plan.artifacts.map((artifact) => artifact.path);
        for (const unit of ["iptables", "ip6tables"]) {
            const dropIn = plan.artifacts.find((artifact) => artifact.path === `/etc/systemd/system/${unit}.service.d/mor-harden-sets.conf`);
            assert.match(dropIn?.content ?? "", /^ExecStartPre=-\/usr\/local\/sbin\/mor-harden-ensure-sets$/m, paths.join(" "));
        }
        const script = plan.artifacts.find((artifact) => artifact.path === "/usr/local/sbin/mor-harden-ensure-sets")!;
        assert.equal(script.mode, "0755");
        assert.match(script.content, /ipset create morh-bl-scanners-4 hash:net family inet /);
        assert.match(script.content, /ipset create morh-bl-scanners-6 hash:net family inet6 /);
        assert.ok(plan.prepare.includes("systemctl daemon-reload"));
    });
});

describe("sending only the changed lines", () => {
    it("rebuilds the sets file on the host side from the kept version and the changes, byte for byte", async () => {
        process.env.MOR_HARDEN_CACHE = tempDir();
        const render = async (lists: Record<string, string>) =>
            renderBlocklists(await renderInputFor(loadEnvironment({ file: stackWithLists(lists) }).hosts[0].config))!.artifacts[0];
        const bulk = Array.from({ length: 3000 }, (_, i) => `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`).join("\n");
        const before = await render({ scanners: `${bulk}\n2001:db8::1\n`, other: "198.19.0.0/16\n" });
        const after = await render({
            scanners: `${bulk.replace("198.18.3.3\n", "")}\n198.18.200.1\n2001:db8::1\n`,
            other: "198.19.0.0/16\n",
            more: "2001:db8:ff::/48\n",
        });
        const { createHash } = await import("node:crypto");
        assert.equal(lineDelta(after.content, createHash("sha256").update(before.content).digest("hex")), undefined, "nothing kept yet: the whole file");
        rememberContent(before.content);
        const delta = lineDelta(after.content, createHash("sha256").update(before.content).digest("hex"))!;
        assert.deepEqual(delta.removed, ["add morh-bl-scanners-4 198.18.3.3"]);
        assert.deepEqual(
            delta.added.sort(),
            [
                "add morh-bl-scanners-4 198.18.200.1",
                "add morh-bl-more-6 2001:db8:ff::/48",
                "create morh-bl-more-4 hash:net family inet maxelem 1048576",
                "create morh-bl-more-6 hash:net family inet6 maxelem 1048576",
            ].sort(),
        );
        const dir = tempDir();
        writeFileSync(join(dir, "old"), before.content);
        writeFileSync(join(dir, "removed"), delta.removed.map((line) => `${line}\n`).join(""));
        writeFileSync(join(dir, "added"), delta.added.map((line) => `${line}\n`).join(""));
        const rebuilt = execFileSync("sh", ["-c", after.merge!], {
            encoding: "utf8",
            env: { ...process.env, MORH_OLD: join(dir, "old"), MORH_REMOVED: join(dir, "removed"), MORH_ADDED: join(dir, "added") },
        });
        assert.equal(rebuilt, after.content);
        // A file an older mor-harden wrote (each set's create line before its entries) is sorted whole.
        const olderOrder = before.content
            .trim()
            .split("\n")
            .sort((a, b) =>
                a.split(" ")[1] + (a.startsWith("create") ? " 0" : " 1") + a < b.split(" ")[1] + (b.startsWith("create") ? " 0" : " 1") + b ? -1 : 1,
            )
            .join("\n");
        assert.notEqual(`${olderOrder}\n`, before.content);
        writeFileSync(join(dir, "old"), `${olderOrder}\n`);
        assert.equal(
            execFileSync("sh", ["-c", after.merge!], {
                encoding: "utf8",
                env: { ...process.env, MORH_OLD: join(dir, "old"), MORH_REMOVED: join(dir, "removed"), MORH_ADDED: join(dir, "added") },
            }),
            after.content,
        );
        // The same lines in another order: only the whole file says it.
        rememberContent(`${olderOrder}\n`);
        assert.equal(lineDelta(before.content, createHash("sha256").update(`${olderOrder}\n`).digest("hex")), undefined);
        // The lists' order in the stack does not change the file.
        assert.equal((await render({ other: "198.19.0.0/16\n", scanners: `${bulk}\n2001:db8::1\n` })).content, before.content);
        assert.equal(
            lineDelta((await render({ other: "198.19.0.0/16\n" })).content, createHash("sha256").update(before.content).digest("hex")),
            undefined,
            "most lines changed: the whole file",
        );
    });
});

describe("the firewall's blocklist chain", () => {
    it("drops each list before every service rule; trusted sources return first", async () => {
        const stack = loadEnvironment({ file: stackWithLists({ scanners: "198.18.0.1\n2001:db8::1\n" }) });
        const input = await renderInputFor(stack.hosts[0].config);
        for (const family of ["v4", "v6"] as const) {
            const ruleset = buildRuleset(input, family);
            const input_ = ruleset.chains[0].rules;
            assert.deepEqual(input_.slice(0, 2), ["-i lo -j ACCEPT", `-j ${BLOCKLIST_CHAIN}`]);
            const chain = ruleset.chains.find((c) => c.name === BLOCKLIST_CHAIN)!.rules;
            assert.equal(chain.at(-1), `-m set --match-set ${blocklistSet("scanners", family)} src -j DROP`);
            if (family === "v4")
                assert.deepEqual(
                    chain.slice(0, -1).filter((rule) => rule.startsWith("-s 198.")),
                    ["-s 198.51.100.10 -j RETURN", "-s 198.18.0.1 -j RETURN"],
                );
        }
        assert.deepEqual(
            renderHost(input)
                .map((plan) => plan.concern)
                .filter((concern) => concern === "blocklists" || concern === "firewall"),
            ["blocklists", "firewall"],
            "the sets before the rules naming them",
        );
        assert.equal(renderBlocklists(await renderInputFor(minimalConfig())), undefined);
        assert.ok(!buildRuleset(await renderInputFor(minimalConfig()), "v4").chains.some((c) => c.name === BLOCKLIST_CHAIN));
    });
});
