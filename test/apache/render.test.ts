import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { INTERMEDIATE_CIPHERS, KEY_PATH, ocspResponder, renderApache } from "../../src/apache/render";
import { effectiveJails } from "../../src/fail2ban/render";
import { redactSecrets } from "../../src/render/artifact";
import { certificateFor, minimalConfig, renderInputFor } from "../helpers/fixtures";

const apache = (
    overrides: Record<string, unknown> = {},
    certificate = certificateFor("mor.example.com").certificate,
    os = "debian",
    fail2ban: Record<string, unknown> = {},
) => minimalConfig({ os, fail2ban, apache: { enabled: true, serverName: "mor.example.com", certificate, ...overrides }, tlsKey: { secretRef: "tlsKey" } });

describe("apache renderer", () => {
    it("serves TLS 1.2 and 1.3 with Mozilla intermediate ciphers, HSTS and an HTTP redirect", async () => {
        const plan = renderApache(await renderInputFor(apache()))!;
        const vhost = plan.artifacts[0].content;
        assert.match(vhost, /SSLProtocol -all \+TLSv1\.2 \+TLSv1\.3/);
        assert.ok(vhost.includes(`SSLCipherSuite ${INTERMEDIATE_CIPHERS.join(":")}`));
        assert.ok(INTERMEDIATE_CIPHERS.every((cipher) => cipher.startsWith("ECDHE-") && /GCM|CHACHA20/.test(cipher)));
        assert.match(vhost, /Header always set Strict-Transport-Security "max-age=63072000"/);
        assert.match(vhost, /<VirtualHost \*:80>[\s\S]*Redirect permanent \/ https:\/\/mor\.example\.com\//);
        assert.ok(!vhost.includes("SSLUseStapling"), "no stapling without a responder");
    });

    it("staples OCSP only when the certificate names a responder", async () => {
        const withResponder = certificateFor("mor.example.com", { ocsp: "http://ocsp.example.net" }).certificate;
        assert.equal(ocspResponder(withResponder), "http://ocsp.example.net");
        const plan = renderApache(await renderInputFor(apache({}, withResponder)))!;
        assert.match(plan.artifacts[0].content, /SSLUseStapling On/);
        assert.match(plan.artifacts[0].content, /SSLStaplingCache/);
    });

    it("keeps the private key out of the rendered text", async () => {
        const plan = renderApache(await renderInputFor(apache()))!;
        const key = plan.artifacts.find((artifact) => artifact.path === KEY_PATH)!;
        assert.equal(key.mode, "0600");
        assert.ok(key.secret);
        assert.ok(!key.content.includes("PRIVATE KEY"));
        assert.equal(redactSecrets(key.content).trim(), "[secret tlsKey: never shown]");
    });

    it("checks that the certificate matches its key before the configtest", async () => {
        const plan = renderApache(await renderInputFor(apache()))!;
        assert.match(plan.validate[0], /openssl x509 -noout -pubkey/);
        assert.equal(plan.validate[1], "apache2ctl -t");
    });

    it("logs both vhosts where mor_api and mor_ddos read, per OS, in the combined format with the client's address", async () => {
        for (const [os, accessLog, errorLog] of [
            ["debian", "/var/log/apache2/access.log", "/var/log/apache2/error.log"],
            ["rhel", "/var/log/httpd/access_log", "/var/log/httpd/error_log"],
        ]) {
            const input = await renderInputFor(apache({}, undefined, os));
            const vhost = renderApache(input)!.artifacts[0].content;
            const logLine = `CustomLog ${accessLog} "%a %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\""`;
            assert.equal(vhost.split(logLine).length - 1, 2, `${os}: ${logLine} in both vhosts`);
            assert.equal(vhost.split(`ErrorLog ${errorLog}`).length - 1, 2, `${os}: ErrorLog`);
            for (const jail of effectiveJails(input).filter((candidate) => candidate.name === "mor_api" || candidate.name === "mor_ddos"))
                assert.deepEqual(jail.logpath, [accessLog], `${os}: ${jail.name} reads it`);
        }
    });

    it("notes a GUI jail that reads another log than the vhosts write", async () => {
        const plan = renderApache(await renderInputFor(apache({}, undefined, "debian", { jails: { mor_api: { logpath: ["/var/log/mor/api.log"] } } })))!;
        assert.match(plan.summary.join("\n"), /requests logged to \/var\/log\/apache2\/access\.log \(combined format\); note: mor_api reads other logs/);
        const clean = renderApache(await renderInputFor(apache()))!;
        assert.doesNotMatch(clean.summary.join("\n"), /note:/);
    });

    it("renders nothing when Apache is not managed", async () => {
        assert.equal(renderApache(await renderInputFor(minimalConfig())), undefined);
    });
});
