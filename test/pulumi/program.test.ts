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
    const config = Object.fromEntries(Object.entries(values).map(([key_, value]) => [`mor-harden:${key_}`, typeof value === "string" ? value : JSON.stringify(value)]));
    pulumi.runtime.setAllConfig(config, secret.map((key_) => `mor-harden:${key_}`));
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
            "mor-harden:index:MorHost::unit",
            "pulumi-nodejs:dynamic/mor-harden:HostHardening::unit-hardening",
        ]);
    });

    it("makes each concern a child of the host", async () => {
        const { MorHost } = await import("../../src/pulumi/host");
        const { parseHostConfig } = await import("../../src/config/schema");
        const host = new MorHost("graph", { stack: "unit", config: parseHostConfig({ ...goodStack(), tlsKey: { secretRef: "tlsKey" } }), secrets: pulumi.secret({ tlsKey: key }) });
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
        const host = new MorHost("secrets", { stack: "unit", config: parseHostConfig({ ...goodStack(), tlsKey: { secretRef: "tlsKey" } }), secrets: pulumi.secret({ tlsKey: key }) });
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
        assert.ok(registered.some((resource) => resource.type === "mor-harden:host:knocking"), "a knocking component");
        const hardening = registered.find((resource) => resource.name === "unit-hardening");
        assert.ok(hardening, "the hardening resource was registered");
        const plans = JSON.stringify(hardening.inputs.plans);
        assert.ok(plans.includes("/etc/fwknop/access.conf"), "fwknopd's files are planned");
        assert.ok(!plans.includes(knockKey) && !plans.includes(knockHmacKey), "no key in the plans");
        assert.ok(JSON.stringify(hardening.inputs.session).includes('"mode":"spa"'), "the connection knocks");
        assert.ok(!JSON.stringify(hardening.inputs.session).includes(knockKey), "without the keys");
    });
});
