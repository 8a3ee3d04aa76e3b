// apache.acme without a host: the schema's named errors, what the renderer writes (the SSL vhost
// on certbot's live links, the port-80 vhost serving the challenge and redirecting the rest, the
// deploy hook, the private CA's files), the stage that issues before anything moves, and the
// typed reason a refused stage reports.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
    ACME_CA_BUNDLE,
    ACME_DEPLOY_HOOK,
    ACME_FAILURES,
    ACME_LIVE,
    ACME_TIMER_DROP_IN,
    ACME_VIEW,
    ACME_WEBROOT,
    ACME_RENEWED_IN_TIME,
    acmeFailureScript,
    acmeIssueScript,
    acmeRenewalMargin,
    acmeRenewPoint,
    acmeRenewalFunctions,
    renderApache,
} from "../../src/apache/render";
import { LETS_ENCRYPT_DIRECTORY } from "../../src/apache/schema";
import { marker, parseTransactionResult, stepExit } from "../../src/apply/protocol";
import { applyScript, rollbackScript } from "../../src/apply/scripts";
import { ConfigError, type HostConfig } from "../../src/config/schema";
import { parseAuditOutput } from "../../src/audit/script";
import { acmeFindings } from "../../src/audit/system";
import { certificateFor, HOST_KEY, minimalConfig, renderInputFor } from "../helpers/fixtures";
import { ACME_CA_ADDRESS, acmeDirectoryUrl } from "../../src/lab/acme";
import type { LabHost, LabState } from "../../src/lab/lab";
import { labEnvironmentConfig } from "../../src/lab/stacks";

const acme = (apache: Record<string, unknown> = {}, rest: Record<string, unknown> = {}, os = "debian") =>
    minimalConfig({
        os,
        apache: { enabled: true, serverName: "mor.example.com", serverAliases: ["gui.example.com"], acme: { email: "ops@example.com" }, ...apache },
        ...rest,
    });

/** The problems a config is refused with. */
function problems(build: () => HostConfig): string[] {
    try {
        build();
    } catch (error) {
        if (error instanceof ConfigError) return error.problems;
        throw error;
    }
    assert.fail("the config was accepted");
}

const plan = async (config: HostConfig) => renderApache(await renderInputFor(config))!;

/** A self-signed certificate valid for `days` from now, in PEM (certbot's lifetimes: 90 days, 6 for the short-lived profile). */
const certificateValidFor = (days: number) => certificateFor("mor.example.com", { days }).certificate;

function shellcheck(script: string): string {
    const run = spawnSync("shellcheck", ["-S", "warning", "-s", "sh", "-"], { input: script, encoding: "utf8" });
    assert.ok(run.error === undefined, `shellcheck runs (${run.error?.message})`);
    return run.stdout;
}

describe("apache.acme: the schema", () => {
    it("defaults to Let's Encrypt production and to serverName and its aliases", async () => {
        const config = acme();
        assert.equal(config.apache.acme!.directory, LETS_ENCRYPT_DIRECTORY);
        const stage = (await plan(config)).stage!.join("\n");
        assert.match(stage, /-d 'mor\.example\.com' -d 'gui\.example\.com'/);
        assert.match(stage, new RegExp(`--server '${LETS_ENCRYPT_DIRECTORY}'`));
    });

    it("names a bad value where it is", () => {
        assert.ok(problems(() => acme({ acme: { email: "not an address" } })).some((p) => p.startsWith("apache.acme.email: ")));
        assert.ok(
            problems(() => acme({ acme: { email: "ops@example.com", directory: "http://ca.example/dir" } })).some((p) =>
                p.startsWith("apache.acme.directory: "),
            ),
        );
        assert.ok(problems(() => acme({ acme: { email: "ops@example.com", domains: ["not a name"] } })).some((p) => p.startsWith("apache.acme.domains[0]: ")));
        assert.ok(problems(() => acme({ acme: { email: "ops@example.com", caBundle: "no PEM" } })).some((p) => p.startsWith("apache.acme.caBundle: ")));
        assert.ok(problems(() => acme({ acme: { email: "ops@example.com", port: 80 } })).some((p) => p.startsWith("apache.acme.port: ")));
    });

    it("refuses both forms at once: a certificate, a key file or the tlsKey secret beside acme", () => {
        const { certificate } = certificateFor("mor.example.com");
        assert.ok(
            problems(() => acme({ certificate })).some(
                (p) => p === "apache.acme: is set as well as apache.certificate: keep one (ACME makes the key on the host)",
            ),
        );
        assert.ok(problems(() => acme({ keyFile: "/tmp/key.pem" })).some((p) => p.startsWith("apache.acme: is set as well as apache.keyFile")));
        assert.ok(problems(() => acme({}, { tlsKey: { secretRef: "tlsKey" } })).some((p) => p.startsWith("tlsKey: is set as well as apache.acme")));
    });

    it("refuses a port 80 the CA could not reach: not public, or guarded by knocking", () => {
        assert.ok(
            problems(() => acme({}, { firewall: { trusted: ["198.51.100.10"], trustKolmisoftSupport: false, services: { http: "trusted" } } })).some((p) =>
                p.startsWith("firewall.services.http: is trusted: apache.acme validates over HTTP-01"),
            ),
        );
        assert.ok(
            problems(() => acme({}, { knocking: { mode: "sequence", sequence: [7001, 7002, 7003], guards: ["http", "https"] } })).some((p) =>
                p.startsWith("knocking.guards: guards http while apache.acme is set"),
            ),
        );
    });

    it("refuses what the CA could not validate: port 80 moved, http narrowed to countries, a one-label name, domains without serverName", () => {
        const refused = (config: () => HostConfig, start: string) =>
            assert.ok(
                problems(config).some((p) => p.startsWith(start)),
                `${start}: ${problems(config).join("; ")}`,
            );
        refused(
            () => acme({}, { firewall: { services: { http: { exposure: "public", ports: 8080 } } } }),
            "firewall.services.http.ports: leaves port 80 closed",
        );
        const compiled = { database: { name: "x", version: "1", date: "", licence: "x" }, block: { v4: [], v6: [] }, services: { http: { v4: [], v6: [] } } };
        refused(
            () => acme({}, { firewall: { countries: { services: { http: ["DE"] }, compiled } } }),
            "firewall.countries.services.http: narrows http to some countries while apache.acme is set",
        );
        refused(() => acme({ serverAliases: ["localhost"] }), 'apache.serverAliases: "localhost" is no public DNS name');
        refused(
            () => acme({ acme: { email: "ops@example.com", domains: ["gui.example.com"] } }),
            'apache.acme.domains: does not name serverName "mor.example.com"',
        );
    });

    it("needs no tlsKey and no certificate with acme", () => {
        assert.doesNotThrow(() => acme());
    });
});

describe("apache.acme: what is rendered", () => {
    it("points the SSL vhost at certbot's live links and serves the challenge on port 80, redirecting the rest", async () => {
        const rendered = await plan(acme());
        const vhost = rendered.artifacts[0].content;
        assert.match(vhost, new RegExp(`SSLCertificateFile ${ACME_LIVE}/fullchain\\.pem`));
        assert.match(vhost, new RegExp(`SSLCertificateKeyFile ${ACME_LIVE}/privkey\\.pem`));
        assert.match(vhost, new RegExp(`Alias /\\.well-known/acme-challenge/ ${ACME_WEBROOT}/\\.well-known/acme-challenge/`));
        assert.match(vhost, /RedirectMatch permanent \^\/\(\?!\\\.well-known\/acme-challenge\/\)\(\.\*\)\$ https:\/\/mor\.example\.com\/\$1/);
        assert.doesNotMatch(vhost, /Redirect permanent \//);
        assert.ok(rendered.packages.includes("certbot"));
        assert.ok(rendered.validate[0].includes(`${ACME_LIVE}/fullchain.pem`) && rendered.validate[0].includes(`${ACME_LIVE}/privkey.pem`));
        assert.deepEqual(
            rendered.liveViews.map((view) => view.name),
            [ACME_VIEW.renewal, ACME_VIEW.names, ACME_VIEW.config],
        );
    });

    it("the RedirectMatch leaves exactly the challenge path out (its pattern, run as PCRE would)", () => {
        const pattern = /^\/(?!\.well-known\/acme-challenge\/)(.*)$/;
        assert.ok(!pattern.test("/.well-known/acme-challenge/token"));
        assert.equal("/index.php".replace(pattern, "https://mor.example.com/$1"), "https://mor.example.com/index.php");
        assert.ok(pattern.test("/.well-known/other"));
    });

    it("carries no key, no secret: the key is made on the host", async () => {
        const rendered = await plan(acme());
        for (const artifact of rendered.artifacts) {
            assert.ok(!artifact.secret, artifact.path);
            assert.ok(!artifact.content.includes("PRIVATE KEY"), artifact.path);
        }
        assert.ok(!rendered.stage!.join("\n").includes("PRIVATE KEY"));
    });

    it("installs the deploy hook, and for a private CA its certificates and the timer's drop-in", async () => {
        const { certificate: caBundle } = certificateFor("ca.example.com");
        const rendered = await plan(acme({ acme: { email: "ops@example.com", directory: "https://198.51.100.30:14000/dir", caBundle } }));
        const paths = rendered.artifacts.map((artifact) => artifact.path);
        assert.deepEqual(paths.slice(1), [ACME_DEPLOY_HOOK, ACME_CA_BUNDLE, ACME_TIMER_DROP_IN]);
        assert.equal(rendered.artifacts[1].mode, "0755");
        assert.match(rendered.artifacts[3].content, new RegExp(`Environment=REQUESTS_CA_BUNDLE=${ACME_CA_BUNDLE}`));
        assert.match(rendered.stage!.join("\n"), /REQUESTS_CA_BUNDLE=/);
        const plain = await plan(acme());
        assert.deepEqual(plain.artifacts.map((artifact) => artifact.path).slice(1), [ACME_DEPLOY_HOOK]);
    });

    it("the deploy hook validates before it reloads and keeps the old certificate otherwise (shellcheck-clean)", async () => {
        const hook = (await plan(acme())).artifacts[1].content;
        const validated = hook.indexOf("apache2ctl -t");
        assert.ok(validated > 0 && validated < hook.indexOf("apache2ctl graceful"));
        assert.match(hook, /openssl pkey -pubout/);
        assert.match(hook, /ln -sfn "\.\.\/\.\.\/archive\/mor-harden\/\$morh_part\$1\.pem"/);
        assert.equal(shellcheck(hook), "");
    });

    it("leaves renewal to certbot's timer (enabled) or cron job, and verifies that it is scheduled", async () => {
        const debian = await plan(acme());
        assert.ok(debian.prepare.some((command) => command.includes("systemctl enable --now --quiet certbot.timer")));
        assert.ok(debian.verify.some((command) => command.includes("systemctl is-enabled --quiet certbot.timer") && command.includes("/etc/cron.d/certbot")));
        const rhel = await plan(acme({}, {}, "rhel"));
        assert.ok(rhel.prepare.some((command) => command.includes("certbot-renew.timer")));
    });

    it("rhel: the challenge vhost in conf.d before ours, httpd's apachectl, EPEL's certbot", async () => {
        const rendered = await plan(acme({}, {}, "rhel"));
        assert.deepEqual(rendered.packages, ["httpd", "mod_ssl", "certbot"]);
        const stage = acmeIssueScript(acme({}, {}, "rhel").apache, "rhel");
        assert.match(stage, /\/etc\/httpd\/conf\.d\/00-mor-harden-acme-challenge\.conf/);
        assert.match(stage, /apachectl graceful/);
        assert.ok("00-mor-harden-acme-challenge.conf" < "00-mor-harden.conf", "read before our vhost");
        // EPEL's timer starts certbot-renew.service: a private CA's bundle is given to that one.
        const privateCa = await plan(acme({ acme: { email: "ops@example.com", caBundle: certificateFor("ca.example.com").certificate } }, {}, "rhel"));
        assert.ok(privateCa.artifacts.some((artifact) => artifact.path === "/etc/systemd/system/certbot-renew.service.d/mor-harden-ca.conf"));
    });
});

describe("apache.acme: the stage", () => {
    it("sees a change of the names as a change: the certificate's names are a live view", async () => {
        const names = (rendered: Awaited<ReturnType<typeof plan>>) => rendered.liveViews.find((view) => view.name === ACME_VIEW.names)!.expected;
        assert.deepEqual(names(await plan(acme())), { text: "gui.example.com mor.example.com" });
        assert.deepEqual(names(await plan(acme({ serverAliases: ["GUI.example.com", "mor.example.com", "new.example.com"] }))), {
            text: "gui.example.com mor.example.com new.example.com",
        });
    });

    it(
        "takes a challenge vhost a cut-short issuance left away in every rollback of its transaction, at boot too",
        { skip: process.getuid?.() === 0 && spawnSync("unshare", ["--mount", "true"]).status === 0 ? false : "needs root and unshare" },
        async () => {
            const rendered = await plan(acme());
            assert.equal(rendered.stageUndo?.length, 1);
            const txid = "19700101000000000-apache-00000000";
            const rollback = rollbackScript(rendered, txid);
            const dir = mkdtempSync(join(tmpdir(), "morh-acme-undo-"));
            try {
                // Apache's conf-enabled and the state directory are scratch (a private mount namespace);
                // apache2ctl is a stand-in that records its calls.
                writeFileSync(join(dir, "apache2ctl"), `#!/bin/sh\necho "$*" >> ${dir}/calls\n`, { mode: 0o755 });
                const setup = [
                    "set -e",
                    "mount -t tmpfs morh-test /etc/apache2/conf-enabled",
                    "mount -t tmpfs morh-test /var/lib/mor-harden 2>/dev/null || { mkdir -p /var/lib/mor-harden && mount -t tmpfs morh-test /var/lib/mor-harden; }",
                    `mkdir -p /var/lib/mor-harden/tx/${txid}/state && : > /var/lib/mor-harden/tx/${txid}/open`,
                    `echo '<VirtualHost *:80>' > /etc/apache2/conf-enabled/00-mor-harden-acme-challenge.conf`,
                    "set +e",
                    `PATH=${dir}:$PATH sh -s; echo "exit=$?"`,
                    "ls /etc/apache2/conf-enabled",
                ].join("\n");
                const run = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", setup], {
                    input: rollback,
                    encoding: "utf8",
                    timeout: 30_000,
                });
                assert.match(run.stdout, /exit=0/, run.stdout + run.stderr);
                assert.doesNotMatch(run.stdout, /00-mor-harden-acme-challenge\.conf/, "the challenge vhost is gone");
                assert.equal(readFileSync(join(dir, "calls"), "utf8"), "graceful\n", "Apache restarted gracefully without it");
            } finally {
                rmSync(dir, { recursive: true, force: true });
            }
        },
    );

    it("runs in the transaction after the packages and before any file moves, and is shellcheck-clean there", async () => {
        const rendered = await plan(acme());
        const script = applyScript(
            { ...rendered, contents: rendered.artifacts.map((artifact) => artifact.content) },
            { txid: "19700101000000000-apache-00000000", os: "debian", installPackages: ["certbot"], confirmSeconds: 20, lockSeconds: 60 },
        );
        const at = (text: string) => script.indexOf(text);
        assert.ok(at("## section: packages") < at("## section: stage"));
        assert.ok(at("## section: stage") < at("certbot certonly") && at("certbot certonly") < at("## section: write"));
        assert.match(script, new RegExp(`fail ${stepExit.stage} 'stage'`));
        // The deploy hook takes the host's lock, which the transaction holds: certbot must not run it here.
        assert.match(script, /certbot certonly --no-directory-hooks /);
        assert.equal(shellcheck(`#!/bin/sh\n${script}`), "");
    });

    it("reports each failure kind on a marker line, typed", async () => {
        const stage = (await plan(acme())).stage!.join("\n");
        for (const kind of ACME_FAILURES.filter((kind) => kind !== "package" && kind !== "host" && kind !== "apache"))
            assert.ok(stage.includes(`morh_reason ${kind} `), `the stage can report ${kind}`);
        assert.match(stage, /morh_reason\(\) \{ echo "MORH-REASON \$1 \$2"; exit 1; \}/);
    });

    it("a refused stage parses into its step and typed reason (the last marker line; never one inside a line)", () => {
        const stdout = `${marker.locked}\nsaid ${marker.reason} dns nope\n${marker.reason} port-80 the CA could not fetch the challenge from port 80: refused\n${marker.failed} stage\n${marker.rolledBack}\n`;
        const outcome = parseTransactionResult({ code: stepExit.stage, stdout, stderr: "" });
        assert.equal(outcome.kind, "rolled-back");
        assert.ok(outcome.kind === "rolled-back");
        assert.equal(outcome.step, "stage");
        assert.deepEqual(outcome.reason, { kind: "port-80", why: "the CA could not fetch the challenge from port 80: refused" });
        assert.ok(!outcome.output.includes(marker.reason + " port-80"), "the marker line is not tool output");
        const other = parseTransactionResult({
            code: stepExit.validate,
            stdout: `${marker.reason} dns x\n${marker.failed} validate\n${marker.rolledBack}\n`,
            stderr: "",
        });
        assert.ok(other.kind === "rolled-back" && other.reason === undefined, "only a stage gives a reason");
    });
});

describe("apache.acme: a certificate certbot has failed to renew", () => {
    const DAY = 86400;
    it("is one under two thirds of its renewal point: a third of its life left, half under 10 days (certbot 4's rule)", () => {
        const from = new Date("2026-01-01T00:00:00Z");
        const after = (days: number) => new Date(from.getTime() + days * DAY * 1000);
        assert.equal(acmeRenewPoint(from, after(90)), 30 * DAY, "certbot's 30 days of old");
        assert.equal(acmeRenewalMargin(from, after(90)), 20 * DAY);
        assert.equal(acmeRenewPoint(from, after(45)), 15 * DAY);
        assert.equal(acmeRenewalMargin(from, after(45)), 10 * DAY);
        assert.equal(acmeRenewPoint(from, after(6)), 3 * DAY, "Let's Encrypt's short-lived certificates");
        assert.equal(acmeRenewalMargin(from, after(6)), 2 * DAY);
        assert.equal(acmeRenewPoint(from, after(10)), Math.floor((10 * DAY) / 3), "10 days is not short-lived");
    });

    it("renews at that point on any certbot: the stage and the deploy hook write renew_before_expiry in minutes", () => {
        const dir = mkdtempSync(join(tmpdir(), "morh-acme-renew-before-"));
        try {
            const cert = join(dir, "fullchain.pem");
            writeFileSync(cert, certificateValidFor(6));
            const set = (conf: string) => {
                const path = join(dir, "renewal.conf");
                writeFileSync(path, conf);
                const run = spawnSync("sh", ["-c", `${acmeRenewalFunctions()}\nacme_set_renew_before "$1" "$2"`, "sh", path, cert], { encoding: "utf8" });
                assert.equal(run.status, 0, run.stderr);
                return readFileSync(path, "utf8");
            };
            const rest = "version = 2.1.0\n\n[renewalparams]\nauthenticator = webroot\n";
            // certbot's own comment, an earlier value, none at all: one top-level line, the rest as it was.
            assert.equal(set(`# renew_before_expiry = 30 days\n${rest}`), `renew_before_expiry = 4320 minutes\n${rest}`);
            assert.equal(set(`renew_before_expiry = 30 days\n${rest}`), `renew_before_expiry = 4320 minutes\n${rest}`);
            assert.equal(set(rest), `renew_before_expiry = 4320 minutes\n${rest}`);
            // Set already: the file is not written again (an apply with the certificate in place).
            const path = join(dir, "renewal.conf");
            const before = statSync(path);
            assert.equal(spawnSync("sh", ["-c", `${acmeRenewalFunctions()}\nacme_set_renew_before "$1" "$2"`, "sh", path, cert]).status, 0);
            assert.deepEqual([statSync(path).ino, statSync(path).mtimeMs], [before.ino, before.mtimeMs]);
            // The interval as certbot's own parser reads it (certbot: .ci/install-deps).
            const certbotPython = /^#!(\S+)/.exec(readFileSync(execFileSync("sh", ["-c", "command -v certbot"], { encoding: "utf8" }).trim(), "utf8"))![1];
            const certbot = spawnSync(
                certbotPython,
                [
                    "-c",
                    "import datetime,pytz\nfrom certbot._internal.storage import add_time_interval as a\nb=datetime.datetime(2026,1,1,tzinfo=pytz.UTC)\nprint(int((a(b,'4320 minutes')-b).total_seconds()))",
                ],
                { encoding: "utf8" },
            );
            assert.equal(certbot.status, 0, certbot.stderr);
            assert.equal(certbot.stdout.trim(), `${3 * DAY}`);
            // Not a certificate: it says so and changes nothing.
            writeFileSync(cert, "junk\n");
            writeFileSync(path, rest);
            assert.equal(spawnSync("sh", ["-c", `${acmeRenewalFunctions()}\nacme_set_renew_before "$1" "$2"`, "sh", path, cert]).status, 1);
            assert.equal(readFileSync(path, "utf8"), rest);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("is told apart on the host by the drift view's shell (real openssl and date; the clock a stand-in)", async () => {
        const dir = mkdtempSync(join(tmpdir(), "morh-acme-state-"));
        try {
            const view = (await plan(acme())).liveViews.find((candidate) => candidate.name === ACME_VIEW.renewal)!;
            assert.ok(view.live.startsWith(acmeRenewalFunctions()) && view.live.endsWith(`acme_renewal_state ${ACME_LIVE}/fullchain.pem`));
            assert.equal(shellcheck(view.live), "");
            // `date +%s` answers the test's clock; every other date call is the real one.
            writeFileSync(
                join(dir, "date"),
                `#!/bin/sh
if [ "$*" = "+%s" ]; then echo "$MORH_NOW"; else exec /bin/date "$@"; fi
`,
                { mode: 0o755 },
            );
            const state = (days: number, nowAfterDays: number) => {
                const cert = join(dir, `${days}.pem`);
                writeFileSync(cert, certificateValidFor(days));
                const from = Date.parse(new X509Certificate(readFileSync(cert)).validFrom) / 1000;
                const run = spawnSync("sh", ["-c", `${acmeRenewalFunctions()}\nacme_renewal_state "$1"`, "sh", cert], {
                    env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, MORH_NOW: `${from + nowAfterDays * DAY}` },
                    encoding: "utf8",
                });
                return run.stdout.trim();
            };
            assert.equal(state(90, 65), ACME_RENEWED_IN_TIME, "25 of 90 days left");
            assert.match(state(90, 71), /^expires .*: certbot has not renewed it$/, "19 of 90 days left");
            assert.equal(state(45, 34), ACME_RENEWED_IN_TIME, "11 of 45 days left");
            assert.match(state(45, 36), /^expires .*: certbot has not renewed it$/, "9 of 45 days left");
            assert.equal(state(6, 3.5), ACME_RENEWED_IN_TIME, "2.5 of 6 days left");
            assert.match(state(6, 5), /^expires .*: certbot has not renewed it$/, "1 of 6 days left");
            assert.equal(state(6, 0.5), ACME_RENEWED_IN_TIME, "a fresh 6-day certificate is no failure, though under 20 days");
            writeFileSync(join(dir, "junk.pem"), "not a certificate\n");
            assert.match(
                spawnSync("sh", ["-c", `${acmeRenewalFunctions()}\nacme_renewal_state "$1"`, "sh", join(dir, "junk.pem")], { encoding: "utf8" }).stdout,
                /is not a readable certificate/,
            );
            assert.match(
                spawnSync("sh", ["-c", `${acmeRenewalFunctions()}\nacme_renewal_state /nonexistent/live/fullchain.pem`], { encoding: "utf8" }).stdout.trim(),
                /^no certificate in \/nonexistent\/live$/,
            );
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("apache.acme: the audit", () => {
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    const keys = "authenticator = webroot\nserver = https://ca.example/dir\nwebroot_path = /var/www/mor-harden-acme,";
    const certificate = certificateValidFor(90);
    const expires = Date.parse(new X509Certificate(certificate).validTo) / 1000;
    const audit = (now: number, live: string, recorded: string | undefined) =>
        acmeFindings({ ...parseAuditOutput(`N ${now}\nL mor-harden ${b64(certificate)} ${b64(live)} ${recorded === undefined ? "-" : b64(recorded)}\n`) });

    it("reports a certificate certbot has failed to renew (within 20 days of its end), not a renewed one", () => {
        assert.deepEqual(audit(expires - 60 * 86400, keys, keys), []);
        const late = audit(expires - 5 * 86400, keys, keys);
        assert.deepEqual(
            late.map((finding) => finding.id),
            ["tls.acme-renewal"],
        );
        assert.match(late[0].evidence, /expires in 5 days/);
    });

    it("judges a short-lived certificate by its lifetime: a third of it left is no failure, though under 20 days", () => {
        const shortLived = certificateValidFor(6);
        const end = Date.parse(new X509Certificate(shortLived).validTo) / 1000;
        const at = (now: number) =>
            acmeFindings({ ...parseAuditOutput(`N ${now}\nL mor-harden ${b64(shortLived)} ${b64(keys)} ${b64(keys)}\n`) }).map((finding) => finding.id);
        assert.deepEqual(at(end - 3 * 86400), []);
        assert.deepEqual(at(end - 86400), ["tls.acme-renewal"]);
    });

    it("reports mor-harden's renewal keys changed by hand, and only for its own lineage", () => {
        const changed = audit(expires - 60 * 86400, keys.replace("webroot\n", "standalone\n"), keys);
        assert.deepEqual(
            changed.map((finding) => [finding.id, finding.evidence]),
            [["tls.acme-config", "/etc/letsencrypt/renewal/mor-harden.conf: authenticator = standalone"]],
        );
        assert.deepEqual(audit(expires - 60 * 86400, "authenticator = standalone", undefined), []);
    });
});

describe("apache.acme: the lab stack (lab up --acme)", () => {
    it("gives every host apache.acme at the lab's CA, trusting the lab CA, and no certificate file", () => {
        const dir = mkdtempSync(join(tmpdir(), "mor-harden-acme-lab-"));
        try {
            const caCertificate = join(dir, "ca.crt");
            writeFileSync(caCertificate, certificateFor("ca.lab.example").certificate);
            const acmeState = { netns: "t-acme", pebblePid: 1, challtestsrvPid: 1, directory: acmeDirectoryUrl() };
            const host = { name: "mor-1", kind: "host", netns: "t-mor-1", v4: "192.0.2.11", v6: "2001:db8:2::11", hostKey: HOST_KEY } as unknown as LabHost;
            const state = {
                dir,
                prefix: "t-",
                operatorKey: join(dir, "id_ed25519"),
                caCertificate,
                hosts: [host],
                clients: [{ name: "workstation", kind: "client", netns: "t-workstation", v4: "198.51.100.10", v6: "2001:db8:51::10" }],
                acme: acmeState,
            } as unknown as LabState;
            const config = labEnvironmentConfig(state).config as Record<string, Record<string, unknown>>;
            assert.deepEqual(config["mor-harden:apache"], {
                enabled: true,
                acme: { email: "operator@lab.example", directory: "https://198.51.100.30:14000/dir", caBundle: readFileSync(caCertificate, "utf8") },
            });
            const hosts = config["mor-harden:hosts"] as Record<string, { apache: Record<string, unknown> }>;
            assert.deepEqual(hosts["mor-1"].apache, { serverName: "mor-1.lab.example" });
            assert.ok(ACME_CA_ADDRESS.v4.startsWith("198.51.100."), "a documentation address");
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("apache.acme: why an issuance failed (templates/apache/acme-failure.sh.hbs, run by sh on certbot's words)", () => {
    /** Runs the failure block on certbot's output (and the log it names), as the issuance does; the marker line it prints. */
    function reasonFor(output: string, log = ""): string {
        const dir = mkdtempSync(join(tmpdir(), "mor-harden-acme-failure-"));
        try {
            writeFileSync(join(dir, "log"), log);
            writeFileSync(join(dir, "certbot"), output.replace("LOGFILE", join(dir, "log")));
            const harness = `morh_work='${dir}'; morh_rc=1\nmorh_end() { :; }\nmorh_reason() { echo "MORH-REASON $1 $2"; exit 1; }\n${acmeFailureScript("https://ca.example/dir")}\n`;
            const run = spawnSync("sh", ["-c", harness], { encoding: "utf8" });
            assert.equal(run.status, 1, run.stderr);
            return run.stdout.trim();
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    }
    const challengeFailed = (type: string, detail: string) =>
        `Saving debug log to /var/log/letsencrypt/letsencrypt.log\nCertbot failed to authenticate some domains (authenticator: webroot). The Certificate Authority reported these problems:\n  Domain: mor.example.com\n  Type:   ${type}\n  Detail: ${detail}\n\nHint: The Certificate Authority failed to download the temporary challenge files.\n\nSome challenges have failed.\nAsk for help or search for solutions at https://community.letsencrypt.org. See the logfile LOGFILE or re-run Certbot with -v for more details.\n`;

    it("by the ACME problem type certbot reports", () => {
        assert.equal(
            reasonFor(challengeFailed("connection", "192.0.2.11: Fetching http://mor.example.com/.well-known/acme-challenge/x: Connection refused")),
            "MORH-REASON port-80 the CA could not fetch the challenge from port 80: 192.0.2.11: Fetching http://mor.example.com/.well-known/acme-challenge/x: Connection refused",
        );
        assert.match(reasonFor(challengeFailed("dns", "DNS problem: NXDOMAIN looking up A for mor.example.com")), /^MORH-REASON dns a name does not resolve/);
        assert.match(
            reasonFor(challengeFailed("unauthorized", "Invalid response from http://mor.example.com/.well-known/acme-challenge/x: 404")),
            /^MORH-REASON refused the CA refused \(unauthorized\): Invalid response/,
        );
        assert.match(reasonFor(challengeFailed("caa", "CAA record for example.com prevents issuance")), /^MORH-REASON refused the CA refused \(caa\)/);
    });

    it("a rate limit, from the problem type in the log certbot names", () => {
        const output =
            "Saving debug log to /var/log/letsencrypt/letsencrypt.log\nAn unexpected error occurred:\nError creating new order :: too many certificates (5) already issued for this exact set of domains in the last 168 hours: mor.example.com, retry after 2026-12-03T00:00:00Z: see https://letsencrypt.org/docs/rate-limits/\nAsk for help or search for solutions at https://community.letsencrypt.org. See the logfile LOGFILE or re-run Certbot with -v for more details.\n";
        const log =
            '2026-12-02 14:00:00,000:DEBUG:acme.client:Received response:\n{"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many certificates", "status": 429}\n';
        assert.match(reasonFor(output, log), /^MORH-REASON rate-limit the CA's rate limit: Error creating new order :: too many certificates \(5\)/);
    });

    it("a directory that cannot be reached, and anything else as certbot's own words", () => {
        const unreachable =
            "Saving debug log to /var/log/letsencrypt/letsencrypt.log\nAn unexpected error occurred:\nValueError: Requesting ca.example/dir: Connection refused\nAsk for help or search for solutions at https://community.letsencrypt.org. See the logfile LOGFILE or re-run Certbot with -v for more details.\n";
        assert.equal(
            reasonFor(unreachable),
            "MORH-REASON ca-unreachable the ACME directory https://ca.example/dir cannot be reached: ValueError: Requesting ca.example/dir: Connection refused",
        );
        assert.equal(
            reasonFor("Another instance of Certbot is already running.\n"),
            "MORH-REASON certbot certbot exited 1: Another instance of Certbot is already running.",
        );
        // A stale log of an earlier run is not read: only the one this run names.
        assert.match(reasonFor("Some other failure\n", "urn:ietf:params:acme:error:dns"), /^MORH-REASON certbot /);
    });
});
