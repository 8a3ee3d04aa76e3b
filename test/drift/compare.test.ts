import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { compareHost } from "../../src/drift/compare";
import { exitCode, junitReport } from "../../src/drift/report";
import { parseDriftOutput, type DriftRead } from "../../src/drift/scripts";
import { fillSecrets } from "../../src/render/artifact";
import { renderHost } from "../../src/compose/host";
import { certificateFor, minimalConfig, renderInputFor } from "../helpers/fixtures";

const sha = (text: string) => createHash("sha256").update(text).digest("hex");
const { certificate, key } = certificateFor("mor.example.com");

async function setup() {
    const config = minimalConfig({ apache: { enabled: true, serverName: "mor.example.com", certificate }, tlsKey: { secretRef: "tlsKey" } });
    const plans = renderHost(await renderInputFor(config));
    const desired = Object.fromEntries(plans.map((plan) => [plan.concern, plan.artifacts.map((artifact) => fillSecrets(artifact.content, { tlsKey: key }))]));
    // A host exactly as desired.
    const read: DriftRead = { files: {}, views: {}, services: {}, pending: [] };
    for (const plan of plans) {
        plan.artifacts.forEach((artifact, index) => {
            const content = desired[plan.concern][index];
            read.files[artifact.path] = { mode: artifact.mode, owner: "root:root", sha256: sha(content), content: artifact.secret ? undefined : content };
        });
        plan.liveViews.forEach((view, index) => {
            const text = "text" in view.expected ? view.expected.text : "-A MORH-INPUT -i lo -j ACCEPT\n";
            read.views[`${plan.concern}/${index}`] = { live: text, expected: "text" in view.expected ? undefined : text };
        });
        read.services[plan.concern] = { ok: true, output: "" };
    }
    return { plans, desired, read };
}

describe("drift comparison", () => {
    it("finds nothing on a host as desired", async () => {
        const { plans, desired, read } = await setup();
        assert.deepEqual(compareHost(plans, desired, read), []);
    });

    it("shows a changed file as a unified diff, desired to live", async () => {
        const { plans, desired, read } = await setup();
        const path = "/etc/fail2ban/jail.d/mor-harden.local";
        const live = read.files[path]!.content!.replace("maxretry = 3\n", "maxretry = 30\n");
        read.files[path] = { ...read.files[path]!, content: live, sha256: sha(live) };
        const [finding] = compareHost(plans, desired, read);
        assert.equal(finding.subject, path);
        assert.match(finding.detail, /^--- \/etc\/fail2ban\/jail\.d\/mor-harden\.local \(desired\)$/m);
        assert.match(finding.detail, /^-maxretry = 3$/m);
        assert.match(finding.detail, /^\+maxretry = 30$/m);
    });

    it("never shows a secret file's content, only that it differs", async () => {
        const { plans, desired, read } = await setup();
        read.files["/etc/ssl/mor-harden/server.key"] = { mode: "0600", owner: "root:root", sha256: sha("another key") };
        const findings = compareHost(plans, desired, read);
        assert.deepEqual(
            findings.map((f) => [f.subject, f.detail]),
            [["/etc/ssl/mor-harden/server.key", "content differs (a secret: not shown)"]],
        );
        assert.ok(!JSON.stringify(findings).includes("PRIVATE"));
    });

    it("reports live views, modes, missing files and stopped services", async () => {
        const { plans, desired, read } = await setup();
        read.views["firewall/0"] = {
            live: "-A MORH-INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT\n",
            expected: "-A MORH-INPUT -i lo -j ACCEPT\n",
        };
        read.files["/etc/iptables/rules.v6"] = { ...read.files["/etc/iptables/rules.v6"]!, mode: "0644" };
        read.files["/etc/apache2/sites-available/00-mor-harden.conf"] = undefined;
        read.services.fail2ban = { ok: false, output: "fail2ban: jail ssh-iptables is not running" };
        const findings = compareHost(plans, desired, read).map(
            (f) =>
                `${f.concern} ${f.subject}: ${f.detail
                    .split("\n")
                    .filter((l) => /^(?:[+-](?![+-]{2} )|[a-z])/.test(l))
                    .join(" | ")}`,
        );
        assert.deepEqual(findings, [
            "firewall /etc/iptables/rules.v6: mode 0644, expected 0600",
            "firewall iptables rules: +-A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT",
            "fail2ban service: not running as configured: fail2ban: jail ssh-iptables is not running",
            "apache /etc/apache2/sites-available/00-mor-harden.conf: missing on the host",
        ]);
    });

    it("parses what the host script prints", () => {
        const b64 = (text: string) => Buffer.from(text).toString("base64");
        const read = parseDriftOutput(
            [
                "M /etc/a.conf 600 root:root",
                "M /etc/key 600 root:root",
                "Z /etc/a.conf 2",
                "Z /etc/b.conf 3",
                "M /etc/b.conf 644 root:root",
                `H ${sha("x\n")} /etc/a.conf`,
                `H ${sha("k")} /etc/key`,
                `C ${b64("x\nyz\n")}`,
                `W firewall/0 live ${b64("-A X\n")}`,
                `W firewall/0 expected ${b64("-A Y\n")}`,
                `S fail2ban 1 ${b64("down")}`,
            ].join("\n"),
        );
        assert.deepEqual(read.files["/etc/a.conf"], { mode: "0600", owner: "root:root", sha256: sha("x\n"), content: "x\n" });
        assert.equal(read.files["/etc/b.conf"]!.content, "yz\n", "contents are cut apart by size");
        assert.equal(read.files["/etc/key"]!.content, undefined);
        assert.equal(read.files["/etc/gone"], undefined);
        assert.deepEqual(read.views["firewall/0"], { live: "-A X\n", expected: "-A Y\n" });
        assert.deepEqual(read.services.fail2ban, { ok: false, output: "down" });
    });

    it("exits 2 if any host could not be checked, else 1 on drift, and writes JUnit", () => {
        const result = (status: "clean" | "drift" | "error") => ({
            stack: status,
            status,
            findings: status === "drift" ? [{ concern: "sshd", subject: "x", detail: "<d>" }] : [],
            notChecked: [],
            roundTrips: 1,
            seconds: 0.1,
            reason: status === "error" ? "host key mismatch" : undefined,
        });
        assert.equal(exitCode([result("clean")]), 0);
        assert.equal(exitCode([result("clean"), result("drift")]), 1);
        assert.equal(exitCode([result("drift"), result("error")]), 2);
        const junit = junitReport([result("clean"), result("drift"), result("error")]);
        assert.match(junit, /<testsuite name="mor-harden drift" tests="3" failures="1" errors="1">/);
        assert.match(junit, /<failure message="drift in 1 place\(s\)">sshd: x\n&lt;d&gt;<\/failure>/);
        assert.match(junit, /<error message="host key mismatch"\/>/);
    });
});
