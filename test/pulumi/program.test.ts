// The Pulumi program under Pulumi's own mocks: the resource graph, config errors before any
// resource, and secrets that stay secret.
import assert from "node:assert/strict";
import { before, beforeEach, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../../src/config/schema";
import { certificateFor, HOST_KEY } from "../helpers/fixtures";

const registered: pulumi.runtime.MockResourceArgs[] = [];

before(async () => {
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                registered.push(args);
                return { id: `${args.name}-id`, state: args.inputs };
            },
            call: (args) => args.inputs,
        },
        "mor-harden",
        "unit",
        false,
    );
});

beforeEach(() => {
    registered.length = 0;
});

const { certificate, key } = certificateFor("mor.example.com");

function setStackConfig(values: Record<string, unknown>, secret: string[] = []): void {
    const config = Object.fromEntries(
        Object.entries(values).map(([key_, value]) => [`mor-harden:${key_}`, typeof value === "string" ? value : JSON.stringify(value)]),
    );
    pulumi.runtime.setAllConfig(
        config,
        secret.map((key_) => `mor-harden:${key_}`),
    );
}

const goodStack = () => ({
    connection: { address: "192.0.2.11", hostKey: HOST_KEY },
    os: "debian",
    firewall: { trusted: ["198.51.100.10"], trustKolmisoftSupport: false },
    apache: { enabled: true, serverName: "mor.example.com", certificate },
    tlsKey: key,
});

async function runProgram(): Promise<Record<string, pulumi.Output<unknown>>> {
    // A fresh copy of the program each time, as `pulumi up` runs it once per process.
    delete require.cache[require.resolve("../../src/index")];
    const program = require("../../src/index") as () => Promise<Record<string, pulumi.Output<unknown>>>;
    return program();
}

const resolved = <T>(output: pulumi.Output<T>) => new Promise<T>((resolve) => output.apply((value) => resolve(value)));

describe("Pulumi program", () => {
    it("declares one host component with one child per concern", async () => {
        setStackConfig(goodStack(), ["tlsKey"]);
        const outputs = await runProgram();
        await resolved(outputs.files);
        await resolved(outputs.hardening);
        const types = registered.map((resource) => `${resource.type}::${resource.name}`).sort();
        assert.deepEqual(types, [
            "mor-harden:host:apache::unit-apache",
            "mor-harden:host:fail2ban::unit-fail2ban",
            "mor-harden:host:firewall::unit-firewall",
            "mor-harden:host:sshd::unit-sshd",
            "mor-harden:host:system::unit-system",
            "mor-harden:index:MorHost::unit",
            "pulumi-nodejs:dynamic/mor-harden:HostHardening::unit-hardening",
        ]);
        // The URN every single-host stack's state holds: the single-host form keeps it.
        assert.equal(
            await resolved(outputs.hardening),
            "urn:pulumi:unit::mor-harden::mor-harden:index:MorHost$pulumi-nodejs:dynamic/mor-harden:HostHardening::unit-hardening",
        );
    });

    it("makes each concern a child of the host", async () => {
        const { MorHost } = await import("../../src/pulumi/host");
        const { parseHostConfig } = await import("../../src/config/schema");
        const host = new MorHost("graph", {
            stack: "unit",
            config: parseHostConfig({ ...goodStack(), tlsKey: { secretRef: "tlsKey" } }),
            secrets: pulumi.secret({ tlsKey: key }),
        });
        const urn = await resolved(host.concerns.firewall.urn);
        assert.match(urn, /::mor-harden:index:MorHost\$mor-harden:host:firewall::graph-firewall$/);
        assert.match(await resolved(host.hardening.urn), /::mor-harden:index:MorHost\$pulumi-nodejs:dynamic\/mor-harden:HostHardening::graph-hardening$/);
    });

    it("fails on a bad config before declaring any resource, naming every key", async () => {
        setStackConfig({ ...goodStack(), firewall: { trusted: ["10.0.0.0/33"] }, sshd: { maxAuthTries: 0 } }, ["tlsKey"]);
        await assert.rejects(runProgram(), (error: ConfigError) => {
            assert.ok(error instanceof ConfigError);
            assert.ok(error.problems.some((problem) => problem.startsWith('firewall.trusted[0]: "10.0.0.0/33" is not an address')));
            assert.ok(error.problems.some((problem) => problem.startsWith("sshd.maxAuthTries:")));
            return true;
        });
        assert.equal(registered.length, 0);
    });

    it("refuses a TLS key that was not set as a secret", async () => {
        setStackConfig(goodStack(), []);
        await assert.rejects(runProgram(), (error: ConfigError) => error.problems.some((problem) => problem.startsWith("tlsKey: must be set as a secret")));
        assert.equal(registered.length, 0);
    });

    it("keeps whatever derives from a secret secret, and the rest plain", async () => {
        setStackConfig(goodStack(), ["tlsKey"]);
        const outputs = await runProgram();
        const files = outputs.files as pulumi.Output<Record<string, unknown>>;
        assert.equal(await pulumi.isSecret(files), true, "the files output includes the key's digest");
        const { MorHost } = await import("../../src/pulumi/host");
        const { parseHostConfig } = await import("../../src/config/schema");
        const host = new MorHost("secrets", {
            stack: "unit",
            config: parseHostConfig({ ...goodStack(), tlsKey: { secretRef: "tlsKey" } }),
            secrets: pulumi.secret({ tlsKey: key }),
        });
        assert.equal(await pulumi.isSecret(host.concerns.apache.artifacts), true);
        assert.equal(await pulumi.isSecret(host.concerns.firewall.summary), false);
        await resolved(host.hardening.urn);
        const hardening = registered.find((resource) => resource.name === "secrets-hardening");
        assert.ok(hardening, "the hardening resource was registered");
        assert.ok(!JSON.stringify(hardening.inputs.plans).includes("PRIVATE KEY"), "rendered plans carry placeholders, not the key");
        const everything = JSON.stringify(await resolved(pulumi.all([host.concerns.apache.artifacts, host.concerns.apache.summary, files])));
        assert.ok(!everything.includes("PRIVATE KEY"), "the key's text is in no output");
        assert.ok(!everything.includes(key.split("\n")[1]), "nor any line of it");
    });

    it("keeps SPA knocking keys out of plain state: placeholders in plans, secret outputs", async () => {
        const knockKey = Buffer.alloc(32, 3).toString("base64");
        const knockHmacKey = Buffer.alloc(64, 5).toString("base64");
        setStackConfig({ ...goodStack(), knocking: { mode: "spa", guards: ["ssh"] }, knockKey, knockHmacKey }, ["tlsKey", "knockKey", "knockHmacKey"]);
        const outputs = await runProgram();
        await resolved(outputs.files as pulumi.Output<unknown>);
        await resolved(outputs.hardening as pulumi.Output<unknown>);
        assert.ok(
            registered.some((resource) => resource.type === "mor-harden:host:knocking"),
            "a knocking component",
        );
        const hardening = registered.find((resource) => resource.name === "unit-hardening");
        assert.ok(hardening, "the hardening resource was registered");
        const plans = JSON.stringify(hardening.inputs.plans);
        assert.ok(plans.includes("/etc/fwknop/access.conf"), "fwknopd's files are planned");
        assert.ok(!plans.includes(knockKey) && !plans.includes(knockHmacKey), "no key in the plans");
        assert.ok(JSON.stringify(hardening.inputs.session).includes('"mode":"spa"'), "the connection knocks");
        assert.ok(!JSON.stringify(hardening.inputs.session).includes(knockKey), "without the keys");
    });
});

describe("Pulumi program over an environment", () => {
    const OTHER_KEY = "SHA256:" + "B".repeat(43);
    const other = certificateFor("mor-2.example.com");
    /** Shared settings with Apache on, three hosts; mor-2 with its own certificate and (secret) TLS key, mor-3 without Apache. */
    const environment = (hosts: Record<string, unknown> = {}) => {
        const { connection: _connection, ...shared } = goodStack();
        return {
            ...shared,
            hosts: {
                "mor-1": { connection: { address: "192.0.2.11", hostKey: HOST_KEY } },
                "mor-2": {
                    connection: { address: "192.0.2.12", hostKey: OTHER_KEY },
                    apache: { serverName: "mor-2.example.com", certificate: other.certificate },
                    tlsKey: other.key,
                },
                "mor-3": { connection: { address: "192.0.2.13", hostKey: HOST_KEY }, apache: { enabled: false } },
                ...hosts,
            },
        };
    };

    it("declares one MorHost per host, each with its own concerns, and outputs each host", async () => {
        setStackConfig(environment(), ["tlsKey", "hosts"]);
        const outputs = await runProgram();
        const hosts = await resolved(outputs.hosts as pulumi.Output<Record<string, { address: string; hardening: string }>>);
        assert.deepEqual(Object.keys(hosts), ["mor-1", "mor-2", "mor-3"]);
        assert.equal(hosts["mor-2"].address, "192.0.2.12");
        assert.match(hosts["mor-3"].hardening, /::mor-harden:index:MorHost\$pulumi-nodejs:dynamic\/mor-harden:HostHardening::mor-3-hardening$/);
        const names = registered.map((resource) => `${resource.type}::${resource.name}`);
        assert.equal(names.filter((name) => name.startsWith("mor-harden:index:MorHost::")).length, 3);
        for (const host of ["mor-1", "mor-2"]) assert.ok(names.includes(`mor-harden:host:apache::${host}-apache`), host);
        assert.ok(!names.includes("mor-harden:host:apache::mor-3-apache"), "mor-3 overrides apache.enabled");
        const hardening = registered
            .filter((resource) => resource.type.endsWith("HostHardening"))
            .map((resource) => resource.inputs.session.address)
            .sort();
        assert.deepEqual(hardening, ["192.0.2.11", "192.0.2.12", "192.0.2.13"]);
    });

    it("keeps a host's own TLS key secret: placeholders in its plans, its key in no output, each host its own", async () => {
        setStackConfig(environment(), ["tlsKey", "hosts"]);
        const outputs = await runProgram();
        const hosts = outputs.hosts as pulumi.Output<Record<string, { files: unknown }>>;
        const everything = JSON.stringify(await resolved(hosts));
        assert.equal(await pulumi.isSecret(hosts), true, "the files outputs include the keys' digests");
        for (const text of [key, other.key]) assert.ok(!everything.includes(text.split("\n")[1]), "no line of a key in the outputs");
        const plansOf = (name: string) => JSON.stringify(registered.find((resource) => resource.name === `${name}-hardening`)!.inputs.plans);
        assert.ok(!plansOf("mor-2").includes("PRIVATE KEY") && !plansOf("mor-1").includes("PRIVATE KEY"), "rendered plans carry placeholders");
        const { readPulumiConfig } = await import("../../src/pulumi/config");
        const { environment: parsed, secretsOf } = readPulumiConfig("unit");
        const secretsOfHost = (name: string) => secretsOf(parsed.hosts.find((host) => host.name === name)!);
        assert.equal(await pulumi.isSecret(secretsOfHost("mor-2")), true);
        assert.equal((await resolved(secretsOfHost("mor-2"))).tlsKey, other.key, "mor-2's own key");
        assert.equal((await resolved(secretsOfHost("mor-1"))).tlsKey, key, "the environment's key for the others");
        assert.ok(!JSON.stringify(parsed).includes("PRIVATE KEY"), "the config model holds references only");
    });

    it("refuses a host's TLS key set in plain text, naming the host", async () => {
        setStackConfig(environment(), ["tlsKey"]);
        await assert.rejects(runProgram(), (error: ConfigError) =>
            error.problems.some((problem) => problem.startsWith("hosts.mor-2.tlsKey: must be set as a secret")),
        );
        assert.equal(registered.length, 0);
    });

    it("fails before declaring any resource, naming each host and key", async () => {
        setStackConfig(environment({ "mor-3": { connection: { address: "192.0.2.13", hostKey: HOST_KEY }, firewall: { trusted: ["10.0.0.0/33"] } } }), [
            "tlsKey",
            "hosts",
        ]);
        await assert.rejects(runProgram(), (error: ConfigError) =>
            error.problems.some((problem) => problem.startsWith('hosts.mor-3.firewall.trusted[0]: "10.0.0.0/33"')),
        );
        assert.equal(registered.length, 0);
    });

    it("names the host whose trusted name does not resolve", async () => {
        setStackConfig(
            environment({
                "mor-3": {
                    connection: { address: "192.0.2.13", hostKey: HOST_KEY },
                    apache: { enabled: false },
                    firewall: { trusted: ["nowhere.example.net"] },
                },
            }),
            ["tlsKey", "hosts"],
        );
        const { readPulumiConfig } = await import("../../src/pulumi/config");
        const { prepareRenderInput } = await import("../../src/render/prepare");
        const { tableResolver } = await import("../helpers/fixtures");
        const third = readPulumiConfig("unit").environment.hosts[2];
        // What MorHost renders with: the host's label, config and source.
        await assert.rejects(prepareRenderInput(third.label, third.config, { resolver: tableResolver, source: third.source }), (error: ConfigError) => {
            assert.match(error.message, /^stack unit \(host mor-3\): 1 problem/);
            assert.match(error.problems[0], /^firewall\.trusted: host name "nowhere\.example\.net" does not resolve/);
            return true;
        });
    });

    it("keeps the former single host's resources (named after the stack) through aliases", async () => {
        setStackConfig(environment({ "mor-1": { connection: { address: "192.0.2.11", hostKey: HOST_KEY }, formerStackHost: true } }), ["tlsKey", "hosts"]);
        const { readPulumiConfig } = await import("../../src/pulumi/config");
        const hosts = readPulumiConfig("unit").environment.hosts;
        assert.deepEqual(
            hosts.map((host) => host.formerName),
            ["unit", undefined, undefined],
        );
        const { formerNameAliases } = await import("../../src/pulumi/host");
        assert.deepEqual(formerNameAliases("unit", "-firewall"), { aliases: [{ name: "unit-firewall" }] });
        assert.deepEqual(formerNameAliases(undefined, "-firewall"), {});
        await resolved((await runProgram()).hosts);
        assert.ok(registered.some((resource) => resource.name === "mor-1-hardening"));
    });
});
