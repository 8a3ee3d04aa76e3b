// Environments: shared settings at the top, each host's connection and overrides under `hosts`;
// how they merge, how problems are named (host and key), and the single-host form unchanged.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeOverrides, parseEnvironment, selectHosts, type Environment } from "../../src/config/environment";
import { ConfigError } from "../../src/config/schema";
import { hostSecretVariable, secretsWithoutPulumi } from "../../src/config/secrets";
import { parseStackDocument } from "../../src/config/stack-file";
import { HOST_KEY, minimalRaw } from "../helpers/fixtures";

const OTHER_KEY = "SHA256:" + "B".repeat(43);
const THIRD_KEY = "SHA256:" + "C".repeat(43);

/** Shared settings and three hosts; `hosts` entries are merged over the defaults given here. */
function environmentRaw(hosts: Record<string, Record<string, unknown>> = {}, settings: Record<string, unknown> = {}): Record<string, unknown> {
    const { connection: _connection, ...shared } = minimalRaw();
    const own = (address: string, hostKey: string) => ({ connection: { address, hostKey } });
    return {
        ...shared,
        connection: { user: "root", connectTimeout: "5s" },
        sshd: { maxAuthTries: 4, allowUsers: ["root"] },
        fail2ban: { ignoreip: ["192.0.2.200"] },
        ...settings,
        hosts: { "mor-1": own("192.0.2.11", HOST_KEY), "mor-2": own("192.0.2.12", OTHER_KEY), "mor-3": own("192.0.2.13", THIRD_KEY), ...hosts },
    };
}

function problemsOf(raw: Record<string, unknown>): string[] {
    try {
        parseEnvironment(raw, "production", "Pulumi.production.yaml");
    } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        return error.problems;
    }
    assert.fail("the environment was accepted");
}

const hostOf = (environment: Environment, name: string) => environment.hosts.find((host) => host.name === name)!.config;

describe("environment merge", () => {
    it("merges maps key by key, replaces scalars and lists, and appends with { add }", () => {
        const inherited = { a: { b: 1, c: [1, 2] }, d: [1], e: "x" };
        assert.deepEqual(mergeOverrides(inherited, { a: { b: 2 } }, []), { a: { b: 2, c: [1, 2] }, d: [1], e: "x" });
        assert.deepEqual(mergeOverrides(inherited, { a: { c: [3] }, e: "y" }, []), { a: { b: 1, c: [3] }, d: [1], e: "y" });
        assert.deepEqual(mergeOverrides(inherited, { a: { c: { add: [3] } } }, []), { a: { b: 1, c: [1, 2, 3] }, d: [1], e: "x" });
    });

    it("gives each host the environment's settings with its own overrides", () => {
        const environment = parseEnvironment(
            environmentRaw({
                "mor-2": {
                    connection: { address: "192.0.2.12", hostKey: OTHER_KEY, port: 2222 },
                    sshd: { port: 2222, maxAuthTries: 3 },
                    fail2ban: { ignoreip: { add: ["203.0.113.9"] } },
                },
                "mor-3": { connection: { address: "192.0.2.13", hostKey: THIRD_KEY }, firewall: { trusted: ["198.51.100.77"] } },
            }),
            "production",
            "Pulumi.production.yaml",
        );
        assert.equal(environment.form, "hosts");
        assert.deepEqual(
            environment.hosts.map((host) => [host.name, host.label]),
            [
                ["mor-1", "production/mor-1"],
                ["mor-2", "production/mor-2"],
                ["mor-3", "production/mor-3"],
            ],
        );
        const [one, two, three] = ["mor-1", "mor-2", "mor-3"].map((name) => hostOf(environment, name));
        assert.equal(one.connection.connectTimeout, 5, "shared connection settings are inherited");
        assert.equal(two.connection.port, 2222);
        assert.equal(two.connection.connectTimeout, 5);
        assert.deepEqual([one.sshd.maxAuthTries, two.sshd.maxAuthTries, two.sshd.port], [4, 3, 2222]);
        assert.deepEqual(two.sshd.allowUsers, ["root"], "a map's other keys are kept");
        assert.deepEqual(two.fail2ban.ignoreip, ["192.0.2.200", "203.0.113.9"], "add appends");
        assert.deepEqual(one.fail2ban.ignoreip, ["192.0.2.200"], "the environment's list is not changed for the others");
        assert.deepEqual(three.firewall.trusted, ["198.51.100.77"], "a list replaces");
        assert.equal(three.firewall.trustKolmisoftSupport, false, "beside the replaced list, the map is merged");
    });

    it("lets one host leave Apache off while the environment turns it on", async () => {
        const { certificateFor } = await import("../helpers/fixtures");
        const apache = { enabled: true, serverName: "mor.example.com", certificate: certificateFor("mor.example.com").certificate };
        const environment = parseEnvironment(
            environmentRaw(
                { "mor-3": { connection: { address: "192.0.2.13", hostKey: THIRD_KEY }, apache: { enabled: false } } },
                { apache, tlsKey: { secretRef: "tlsKey" } },
            ),
            "production",
            "p",
        );
        assert.deepEqual(
            environment.hosts.map((host) => host.config.apache.enabled),
            [true, true, false],
        );
    });
});

describe("environment errors", () => {
    const cases: [string, Record<string, unknown>, string][] = [
        [
            "a host's own bad value",
            environmentRaw({ "mor-2": { connection: { address: "192.0.2.12", hostKey: OTHER_KEY }, firewall: { trusted: ["198.51.100.10", "10.0.0.0/33"] } } }),
            'hosts.mor-2.firewall.trusted[1]: "10.0.0.0/33" is not an address, CIDR or host name',
        ],
        [
            "a bad value a host adds",
            environmentRaw({ "mor-2": { connection: { address: "192.0.2.12", hostKey: OTHER_KEY }, fail2ban: { ignoreip: { add: ["not an address"] } } } }),
            'hosts.mor-2.fail2ban.ignoreip.add[0]: "not an address" is not an address',
        ],
        [
            "a host's missing host key",
            environmentRaw({ "mor-2": { connection: { address: "192.0.2.12" } } }),
            "hosts.mor-2.connection.hostKey: undefined is not a host key fingerprint",
        ],
        [
            "an unknown key in a host",
            environmentRaw({ "mor-2": { connection: { address: "192.0.2.12", hostKey: OTHER_KEY }, firewal: {} } }),
            "hosts.mor-2.firewal: is not a known key",
        ],
        [
            "a check across keys, on a host's own value",
            environmentRaw({ "mor-2": { connection: { address: "192.0.2.12", hostKey: OTHER_KEY, user: "deploy" } } }),
            'sshd.allowUsers: does not include the connection user "deploy": mor-harden would lock itself out (inherited by host mor-2)',
        ],
        [
            "an inherited bad value, once with every host it breaks",
            environmentRaw({}, { sshd: { maxAuthTries: 1 } }),
            "sshd.maxAuthTries: Too small: expected number to be >=3 (inherited by hosts mor-1, mor-2, mor-3)",
        ],
        [
            "add where nothing is inherited",
            environmentRaw({ "mor-2": { connection: { address: "192.0.2.12", hostKey: OTHER_KEY }, sshd: { ciphers: { add: ["aes256-ctr"] } } } }),
            "hosts.mor-2.sshd.ciphers: adds to an inherited list, but the environment sets none here: write the list itself",
        ],
        [
            "add where a map is inherited",
            environmentRaw({ "mor-2": { connection: { address: "192.0.2.12", hostKey: OTHER_KEY }, sshd: { add: ["x"] } } }),
            "hosts.mor-2.sshd: adds to an inherited list, but the inherited value is not a list",
        ],
        [
            "add among the environment's settings",
            environmentRaw({}, { fail2ban: { ignoreip: { add: ["192.0.2.1"] } } }),
            "fail2ban.ignoreip: is { add: [...] }, which adds to an inherited list: only a host's overrides inherit",
        ],
        [
            "an address for the whole environment",
            environmentRaw({}, { connection: { address: "192.0.2.9" } }),
            "connection.address: is one host's: with hosts, set it under hosts.<name>.connection",
        ],
        [
            "a host name that is no DNS label",
            environmentRaw({ Mor_4: { connection: { address: "192.0.2.14", hostKey: HOST_KEY } } }),
            "hosts.Mor_4: is not a host name",
        ],
        [
            "two hosts at one address",
            environmentRaw({ "mor-3": { connection: { address: "192.0.2.12", hostKey: THIRD_KEY } } }),
            "hosts.mor-3.connection.address: 192.0.2.12 port 22 is host mor-2's too",
        ],
        ["a host that is not a map", environmentRaw({ "mor-3": ["192.0.2.13"] as never }), "hosts.mor-3: is not a map"],
        [
            "two former stack hosts",
            environmentRaw({
                "mor-1": { connection: { address: "192.0.2.11", hostKey: HOST_KEY }, formerStackHost: true },
                "mor-2": { connection: { address: "192.0.2.12", hostKey: OTHER_KEY }, formerStackHost: true },
            }),
            "hosts: mor-1, mor-2 each set formerStackHost",
        ],
    ];
    for (const [what, raw, expected] of cases) {
        it(`names the host and the key: ${what}`, () => {
            const problems = problemsOf(raw);
            assert.ok(
                problems.some((problem) => problem.startsWith(expected)),
                `expected\n  ${expected}\ngot\n  ${problems.join("\n  ")}`,
            );
        });
    }

    it("reports every host's problems at once", () => {
        const problems = problemsOf(
            environmentRaw({
                "mor-1": { connection: { address: "192.0.2.11", hostKey: "nope" } },
                "mor-3": { connection: { address: "192.0.2.13", hostKey: THIRD_KEY }, os: "solaris" },
            }),
        );
        assert.deepEqual(problems.map((problem) => problem.split(":")[0]).sort(), ["hosts.mor-1.connection.hostKey", "hosts.mor-3.os"]);
    });

    it("refuses an empty hosts map", () => {
        assert.deepEqual(problemsOf({ ...environmentRaw(), hosts: {} }), ["hosts: is not a map of host names to their connection and settings"]);
    });
});

describe("the single-host form", () => {
    it("is one host named after the stack, validated and labelled as before", () => {
        const environment = parseEnvironment(minimalRaw(), "mor-1", "Pulumi.mor-1.yaml");
        assert.equal(environment.form, "single");
        assert.deepEqual(
            environment.hosts.map((host) => [host.name, host.label, host.source]),
            [["mor-1", "mor-1", "Pulumi.mor-1.yaml"]],
        );
        assert.throws(
            () => parseEnvironment(minimalRaw({ sshd: { maxAuthTries: 1 } }), "mor-1", "Pulumi.mor-1.yaml"),
            (error: ConfigError) => error.problems.length === 1 && error.problems[0].startsWith("sshd.maxAuthTries: Too small"),
        );
    });
});

describe("host selection", () => {
    const environment = parseEnvironment(environmentRaw(), "production", "p");

    it("keeps every host without --host, and the named ones in the environment's order", () => {
        assert.deepEqual(
            selectHosts([environment], []).map(({ host }) => host.name),
            ["mor-1", "mor-2", "mor-3"],
        );
        assert.deepEqual(
            selectHosts([environment], ["mor-3", "mor-1"]).map(({ host }) => host.name),
            ["mor-1", "mor-3"],
        );
    });

    it("names the known hosts for an unknown one", () => {
        assert.throws(
            () => selectHosts([environment], ["mor-9"]),
            (error: ConfigError) => error.problems[0] === "--host mor-9: is not a host of production (known hosts: production: mor-1, mor-2, mor-3)",
        );
    });
});

describe("secrets per host", () => {
    it("reads secure values in a host's entry as references, and refuses them at other keys", () => {
        const text = [
            "config:",
            "  mor-harden:os: debian",
            "  mor-harden:firewall: { trusted: [198.51.100.10], trustKolmisoftSupport: false }",
            "  mor-harden:privateKey: { secure: v1:shared }",
            "  mor-harden:hosts:",
            `    mor-1: { connection: { address: 192.0.2.11, hostKey: '${HOST_KEY}' } }`,
            `    mor-2: { connection: { address: 192.0.2.12, hostKey: '${OTHER_KEY}' }, privateKey: { secure: v1:own } }`,
        ].join("\n");
        const environment = parseStackDocument(text, "Pulumi.production.yaml", "production");
        assert.deepEqual(
            environment.hosts.map((host) => host.config.privateKey),
            [{ secretRef: "privateKey" }, { secretRef: "privateKey" }],
        );
        assert.throws(
            () => parseStackDocument(text.replace("privateKey: { secure: v1:own }", "firewall: { secure: v1:x }"), "Pulumi.production.yaml", "production"),
            (error: ConfigError) => error.problems[0].startsWith("hosts.mor-2.firewall: is a secret, but only privateKey"),
        );
    });

    it("takes a host's own variable before the one for every host", () => {
        const environment = parseEnvironment(environmentRaw(), "production", "p");
        const env = { MOR_HARDEN_PRIVATE_KEY: "shared", [hostSecretVariable("privateKey", "mor-2")]: "own" };
        assert.equal(hostSecretVariable("privateKey", "mor-2"), "MOR_HARDEN_PRIVATE_KEY__MOR_2");
        const keyOf = (name: string) => secretsWithoutPulumi(hostOf(environment, name), "p", env, name).privateKey;
        assert.deepEqual([keyOf("mor-1"), keyOf("mor-2")], ["shared", "own"]);
    });
});
