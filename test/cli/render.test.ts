// `npx mor-harden render`: files under --out, secrets as placeholders, named errors and exit 2.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CLI_FILE } from "../../src/cli/bin";

const projectDir = join(__dirname, "..", "..", "..");
const cli = CLI_FILE;
const run = (...args: string[]) => spawnSync("node", [cli, ...args], { cwd: projectDir, encoding: "utf8" });

describe("mor-harden render", () => {
    it("writes the example stack's artifacts under --out, the TLS key as a placeholder", () => {
        const out = mkdtempSync(join(tmpdir(), "mor-harden-render-"));
        const result = run("render", "--stack", "example", "--out", out, "--resolve", "support.kolmisoft.com=192.0.2.200,2001:db8:200::1");
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stdout, /trusted: support\.kolmisoft\.com -> 192\.0\.2\.200, 2001:db8:200::1/);
        for (const path of [
            "etc/sysconfig/iptables",
            "etc/sysconfig/ip6tables",
            "etc/ssh/sshd_config.d/00-mor-harden.conf",
            "etc/fail2ban/jail.d/mor-harden.local",
            "etc/httpd/conf.d/00-mor-harden.conf",
        ]) {
            assert.ok(existsSync(join(out, path)), path);
        }
        assert.equal(readFileSync(join(out, "etc/ssl/mor-harden/server.key"), "utf8").trim(), "[secret tlsKey: never shown]");
    });

    it("with --scripts, writes every script a host runs as root for the stack, each parsed by sh and clean under shellcheck", () => {
        const out = mkdtempSync(join(tmpdir(), "mor-harden-render-"));
        const result = run("render", "--stack", "example", "--out", out, "--scripts", "--resolve", "support.kolmisoft.com=192.0.2.200,2001:db8:200::1");
        assert.equal(result.status, 0, result.stderr);
        const dir = join(out, "scripts");
        const written = (readdirSync(dir, { recursive: true }) as string[]).filter((name) => name.endsWith(".sh")).sort();
        for (const concern of ["firewall", "sshd", "fail2ban", "apache"]) {
            for (const script of ["transaction.sh", "rollback.sh", "delete.sh"]) assert.ok(written.includes(`${concern}/${script}`), `${concern}/${script}`);
        }
        for (const script of [
            "read.sh",
            "confirm.sh",
            "rollback-now.sh",
            "status.sh",
            "boot-rollback.sh",
            "drift.sh",
            "audit.sh",
            "firewall/expire.sh",
            "sshd/expire.sh",
        ])
            assert.ok(written.includes(script), script);
        assert.ok(existsSync(join(dir, "mor-harden-boot.service")));
        // What runs is what was written: the transaction carries its rollback and the artifacts, secrets as placeholders.
        const transaction = readFileSync(join(dir, "firewall/transaction.sh"), "utf8");
        assert.ok(
            transaction.includes(readFileSync(join(dir, "firewall/rollback.sh"), "utf8").split("\n").slice(2).join("\n").trimEnd()),
            "the rollback written is the one the transaction writes",
        );
        assert.doesNotMatch(readFileSync(join(dir, "apache/transaction.sh"), "utf8"), /BEGIN [A-Z ]*PRIVATE KEY/);
        for (const name of written) {
            const syntax = spawnSync("sh", ["-n", join(dir, name)], { encoding: "utf8" });
            assert.equal(syntax.status, 0, `${name}: ${syntax.stderr}`);
        }
        const lint = spawnSync("shellcheck", ["-S", "warning", "-s", "sh", ...written.map((name) => join(dir, name))], { encoding: "utf8" });
        assert.equal(lint.status, 0, lint.stdout + lint.stderr);
    });

    it("exits 2 naming every bad key, and writes nothing", () => {
        const dir = mkdtempSync(join(tmpdir(), "mor-harden-render-"));
        const stack = join(dir, "Pulumi.bad.yaml");
        writeFileSync(
            stack,
            "config:\n  mor-harden:connection: { address: '192.0.2.1;reboot', hostKey: nope }\n  mor-harden:os: debian\n  mor-harden:firewall: { trusted: [10.0.0.0/33] }\n",
        );
        const result = run("render", "--config", stack, "--out", join(dir, "out"));
        assert.equal(result.status, 2);
        assert.match(result.stderr, /3 problems in the stack config/);
        assert.match(result.stderr, /connection\.address: "192\.0\.2\.1;reboot" is not an address or host name/);
        assert.match(result.stderr, /connection\.hostKey: "nope" is not a host key fingerprint/);
        assert.match(result.stderr, /firewall\.trusted\[0\]: "10\.0\.0\.0\/33" is not an address, CIDR or host name/);
        assert.ok(!existsSync(join(dir, "out")));
    });
});
