// apache.acme on a lab host, against the lab's ACME CA (Debian's pebble on 198.51.100.30, names
// by pebble-challtestsrv): the first issuance through the hardened firewall, a forced renewal
// served with no hand reload, drift clean after it, issuances that fail (port 80 closed to the
// CA, a name the CA cannot resolve, the CA stopped) leaving the old vhost serving and saying why,
// and no private key in anything mor-harden renders, writes or prints.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ACME_CA_BUNDLE, ACME_DEPLOY_HOOK, ACME_LIVE, ACME_TIMER_DROP_IN } from "../../src/apache/render";
import { waitFor } from "../helpers/faults";
import {
    applyFromWorkstation,
    cliFromWorkstation,
    driftFromWorkstation,
    labStackFile,
    sh,
    startTestLab,
    statuses,
    type CliRun,
    type TestLab,
} from "../helpers/lab";
import { needs } from "../helpers/needs";
import { ACME_CA_ADDRESS, ACME_LAB_VALIDITY_SECONDS, addAcmeName } from "../../src/lab/acme";
import type { LabNode } from "../../src/lab/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces) with pebble and certbot");

let lab: TestLab;
let stack: string;
let first: CliRun;
const host = () => lab.host(1);
const name = () => `${host().name}.lab.example`;
const VHOST = "/etc/apache2/sites-available/00-mor-harden.conf";

/** The served certificate's serial, issuer and lifetime in seconds, as the workstation sees it on port 443 (by the GUI's name). */
function served(): { serial: string; issuer: string; lifetime: number } {
    const run = sh(
        lab.client("workstation"),
        `echo | timeout 5 openssl s_client -connect ${host().v4}:443 -servername ${name()} 2>/dev/null | openssl x509 -noout -serial -issuer -startdate -enddate`,
        15_000,
    );
    const date = (field: string) => Date.parse(new RegExp(`${field}=(.*)`).exec(run.stdout)?.[1] ?? "") / 1000;
    return {
        serial: /serial=(\S+)/.exec(run.stdout)?.[1] ?? "",
        issuer: /issuer=(.*)/.exec(run.stdout)?.[1]?.trim() ?? "",
        lifetime: date("notAfter") - date("notBefore"),
    };
}

/** Half the served certificate's life in whole minutes (pebble's notAfter is its period less a second). */
const renewBeforeMinutes = () => Math.floor(Math.floor(served().lifetime / 2) / 60);

/** The archive version the live links name (../../archive/mor-harden/certN.pem). */
const version = () => sh(host(), `readlink ${ACME_LIVE}/cert.pem`).stdout.trim();

/** A renewal as certbot's timer runs it: the environment its drop-in gives, the deploy hooks from renewal-hooks/deploy/. */
function renewNow(force: boolean) {
    return sh(
        host(),
        `env $(sed -n 's/^Environment=//p' ${ACME_TIMER_DROP_IN}) timeout 60 certbot renew${force ? " --force-renewal" : ""} --cert-name mor-harden --non-interactive --no-random-sleep-on-renew 2>&1`,
        70_000,
    );
}

const concern = (run: CliRun) => run.report?.concerns.find((item) => item.concern === "apache");

/** Every file under `dir`, read whole. */
function filesUnder(dir: string): string[] {
    return readdirSync(dir, { recursive: true, encoding: "utf8" })
        .map((entry) => join(dir, entry))
        .filter((path) => statSync(path).isFile())
        .map((path) => readFileSync(path, "utf8"));
}

before(async () => {
    lab = await startTestLab(1, { acme: true });
    stack = labStackFile(lab, "acme");
    first = applyFromWorkstation(lab, stack);
});
after(() => lab?.stop());

describe("apache.acme on a lab host (pebble as the CA)", () => {
    it("issues the first certificate through the hardened firewall before the SSL vhost goes live", () => {
        assert.equal(first.code, 0, first.stderr + first.stdout);
        assert.equal(statuses(first.report).firewall, "applied");
        assert.equal(statuses(first.report).apache, "applied");
        assert.ok(
            concern(first)?.notes?.some((note) => /ACME: issued the certificate for mor-1\.lab\.example/.test(note)),
            JSON.stringify(concern(first)),
        );
        // Pebble's intermediates are named "Pebble Intermediate CA <random>".
        assert.match(served().issuer, /Pebble Intermediate CA/);
        // Short-lived, as Let's Encrypt's 6-day profile: the tests below show such a certificate is
        // neither drift nor issued again though it ends within 20 days.
        assert.ok(Math.abs(served().lifetime - ACME_LAB_VALIDITY_SECONDS) < 120, `lifetime ${served().lifetime} s`);
        // Renewed at half its life left (certbot 4's rule), not at certbot 2.1's 30 days: at every run.
        assert.equal(
            sh(host(), "grep '^renew_before_expiry' /etc/letsencrypt/renewal/mor-harden.conf").stdout.trim(),
            `renew_before_expiry = ${renewBeforeMinutes()} minutes`,
        );
        assert.match(renewNow(false).stdout, /not yet due for renewal/);
        assert.match(sh(host(), `grep SSLCertificateFile ${VHOST}`).stdout, new RegExp(`${ACME_LIVE}/fullchain\\.pem`));
        // Port 80: the challenge path is served, everything else redirects to HTTPS.
        sh(host(), "mkdir -p /var/www/mor-harden-acme/.well-known/acme-challenge && echo probe-ok > /var/www/mor-harden-acme/.well-known/acme-challenge/probe");
        const base = `curl -s --max-time 5 --resolve ${name()}:80:${host().v4} http://${name()}`;
        assert.equal(sh(lab.client("attacker"), `${base}/.well-known/acme-challenge/probe`).stdout.trim(), "probe-ok");
        assert.equal(
            sh(lab.client("attacker"), `${base}/index.php -o /dev/null -w '%{http_code} %{redirect_url}'`).stdout.trim(),
            `301 https://${name()}/index.php`,
        );
        // The private CA's certificates reach certbot's timer.
        assert.match(sh(host(), `cat ${ACME_TIMER_DROP_IN}`).stdout, new RegExp(`REQUESTS_CA_BUNDLE=${ACME_CA_BUNDLE}`));
        assert.equal(sh(host(), `test -x ${ACME_DEPLOY_HOOK} && echo yes`).stdout.trim(), "yes");
    });

    it("issues nothing again for the same names when another Apache setting changes (the stage sees the certificate in place)", () => {
        const serial = served().serial;
        const run = applyFromWorkstation(lab, labStackFile(lab, "acme-hsts", { apache: { hsts: { maxAge: 86400 } } }));
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.equal(statuses(run.report).apache, "applied");
        assert.ok(
            concern(run)?.notes?.some((note) => /ACME: the certificate for .* is in place .*: not issued again/.test(note)),
            JSON.stringify(concern(run)),
        );
        assert.equal(served().serial, serial);
        assert.equal(applyFromWorkstation(lab, stack).code, 0, "back to the lab stack");
        const drift = driftFromWorkstation(lab, stack);
        assert.equal(drift.code, 0, `a fresh short-lived certificate is no drift: ${drift.stdout}${drift.stderr}`);
    });

    it("a forced renewal swaps the served certificate with no hand reload, and drift stays clean", async () => {
        const before = served().serial;
        assert.notEqual(before, "");
        const renew = renewNow(true);
        assert.equal(renew.code, 0, renew.stdout);
        assert.match(renew.stdout, /Congratulations, all renewals succeeded|Congratulations, all simulated renewals succeeded/);
        assert.ok(await waitFor(() => served().serial !== before, 10_000), "a new certificate is served after the renewal");
        // certbot kept the renewal point the deploy hook set again for the new certificate.
        assert.match(
            sh(host(), "cat /etc/letsencrypt/renewal/mor-harden.conf").stdout,
            new RegExp(`^renew_before_expiry = ${renewBeforeMinutes()} minutes$`, "m"),
        );
        assert.match(renewNow(false).stdout, /not yet due for renewal/);
        const drift = driftFromWorkstation(lab, stack);
        assert.equal(drift.code, 0, drift.stdout + drift.stderr);
    });

    it("a renewal whose certificate fails the deploy hook's validation keeps the old certificate served", () => {
        const before = served().serial;
        const was = version();
        // A deploy hook certbot runs before ours (it runs them in name order) gives the renewed version another key.
        const swapKey = "/etc/letsencrypt/renewal-hooks/deploy/00-test-swap-key";
        sh(
            host(),
            `printf '%s\\n' '#!/bin/sh' 'openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -out "$(readlink -f "$RENEWED_LINEAGE/privkey.pem")"' > ${swapKey} && chmod 0755 ${swapKey}`,
        );
        try {
            const renew = renewNow(true);
            assert.match(renew.stdout, /failed validation \(the certificate does not match its private key\): version \d+ kept/, renew.stdout);
            assert.equal(version(), was, "the live links name the old version again");
            assert.equal(served().serial, before);
        } finally {
            sh(host(), `rm -f ${swapKey}`);
        }
        // certbot's next run does not link the rejected version again (it is gone from the archive).
        const next = renewNow(false);
        assert.equal(next.code, 0, next.stdout);
        // Its log of that run (letsencrypt.log is the last run's) says it found nothing to link.
        assert.equal(sh(host(), "grep -c 'that was not linked to' /var/log/letsencrypt/letsencrypt.log; true").stdout.trim(), "0");
        assert.equal(version(), was);
    });

    it("a renewal while Apache's configuration is broken whatever the certificate is kept, not served until Apache reloads", async () => {
        const before = served().serial;
        const was = version();
        // A configuration Apache refuses (apache2ctl -t fails) with any certificate.
        sh(host(), "echo 'NoSuchDirective on' > /etc/apache2/conf-enabled/zz-broken.conf");
        try {
            const renew = renewNow(true);
            assert.match(renew.stdout, /configuration is broken regardless of the certificate .*NoSuchDirective/, renew.stdout);
            assert.notEqual(version(), was, "the renewed version stays linked");
            assert.equal(served().serial, before, "Apache was not reloaded");
        } finally {
            sh(host(), "rm -f /etc/apache2/conf-enabled/zz-broken.conf");
        }
        // Fixed, a reload serves the renewed certificate: no second renewal needed.
        assert.equal(sh(host(), "apache2ctl graceful").code, 0);
        assert.ok(await waitFor(() => served().serial !== before, 10_000), "the renewed certificate is served after the reload");
    });

    it("drift reports a renewal configuration changed by hand, and the next apply issues again", () => {
        sh(host(), "sed -i 's/^authenticator = webroot/authenticator = standalone/' /etc/letsencrypt/renewal/mor-harden.conf");
        const drift = driftFromWorkstation(lab, stack);
        assert.equal(drift.code, 1, drift.stdout + drift.stderr);
        assert.match(drift.stdout, /tls\.acme-config/);
        assert.match(drift.stdout, /authenticator = standalone/);
        const run = applyFromWorkstation(lab, stack);
        assert.equal(statuses(run.report).apache, "applied", run.stdout);
        assert.ok(
            concern(run)?.notes?.some((note) => /ACME: issued/.test(note)),
            JSON.stringify(concern(run)),
        );
        assert.equal(sh(host(), "grep '^authenticator' /etc/letsencrypt/renewal/mor-harden.conf").stdout.trim(), "authenticator = webroot");
        const clean = driftFromWorkstation(lab, stack);
        assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    });

    it("an issuance the CA cannot validate (port 80 closed to it, a fresh name) leaves the old vhost serving and says why", () => {
        const before = { served: served().serial, vhost: sh(host(), `sha256sum ${VHOST}`).stdout };
        // Port 80 closed for the CA alone, at its own end (the host's firewall stays as applied).
        const block = `iptables -I OUTPUT -d ${host().v4} -p tcp --dport 80 -j REJECT --reject-with tcp-reset`;
        const acmeNode: LabNode = { name: "acme", kind: "client", netns: lab.state.acme!.netns, v4: ACME_CA_ADDRESS.v4, v6: ACME_CA_ADDRESS.v6 };
        // A fresh name that resolves to the host for the CA: no earlier authorization to reuse (PEBBLE_AUTHZREUSE=0 besides).
        addAcmeName(lab.state.acme!, "fresh-1.lab.example", host().v4);
        assert.equal(
            sh(acmeNode, `curl -s --max-time 3 -o /dev/null -w '%{http_code}' http://${host().v4}/`).stdout.trim(),
            "301",
            "port 80 answers the CA before",
        );
        assert.equal(sh(acmeNode, block).code, 0);
        try {
            // The CA really is refused now.
            assert.equal(
                sh(acmeNode, `curl -s --max-time 3 -o /dev/null -w '%{http_code}' http://${host().v4}/`).stdout.trim(),
                "000",
                "port 80 is closed to the CA",
            );
            const run = applyFromWorkstation(lab, labStackFile(lab, "acme-closed", { apache: { serverAliases: ["fresh-1.lab.example"] } }));
            assert.equal(run.code, 1, run.stdout + run.stderr);
            assert.equal(statuses(run.report).apache, "failed");
            assert.equal(concern(run)?.reason?.kind, "port-80", JSON.stringify(concern(run)));
            assert.equal(served().serial, before.served, "the old certificate is still served");
            assert.equal(sh(host(), `sha256sum ${VHOST}`).stdout, before.vhost, "the old vhost is in place");
            assert.equal(sh(host(), "ls /etc/apache2/conf-enabled").stdout.includes("acme-challenge"), false, "no challenge vhost is left");
        } finally {
            sh(acmeNode, block.replace("-I OUTPUT", "-D OUTPUT"));
        }
    });

    it("a name the CA cannot resolve fails as dns", () => {
        const run = applyFromWorkstation(lab, labStackFile(lab, "acme-dns", { apache: { serverAliases: ["unknown-1.lab.example"] } }));
        assert.equal(statuses(run.report).apache, "failed");
        assert.equal(concern(run)?.reason?.kind, "dns", JSON.stringify(concern(run)));
    });

    it("with the CA stopped, an issuance fails as ca-unreachable and the old vhost keeps serving", () => {
        const before = served().serial;
        process.kill(lab.state.acme!.pebblePid, "SIGKILL");
        const run = applyFromWorkstation(lab, labStackFile(lab, "acme-stopped", { apache: { serverAliases: ["fresh-2.lab.example"] } }));
        assert.equal(statuses(run.report).apache, "failed");
        assert.equal(concern(run)?.reason?.kind, "ca-unreachable", JSON.stringify(concern(run)));
        assert.equal(served().serial, before);
    });

    it("no private key in the stack file, the rendered artifacts, the preview, the apply's output or its report", () => {
        const key = sh(host(), `sed -n '2p' ${ACME_LIVE}/privkey.pem`).stdout.trim();
        assert.ok(key.length > 20, "the host holds its key");
        const out = join(lab.state.dir, "rendered");
        const render = cliFromWorkstation(lab, ["render", "--config", stack, "--out", out, "--scripts"]);
        assert.equal(render.code, 0, render.stderr);
        const preview = cliFromWorkstation(lab, ["render", "--config", stack]);
        const texts = [readFileSync(stack, "utf8"), ...filesUnder(out), render.stdout, preview.stdout, preview.stderr, first.stdout, first.stderr];
        for (const text of texts) {
            assert.ok(!text.includes("PRIVATE KEY"), "no PEM private key");
            assert.ok(!text.includes(key), "not the host's key");
        }
        const logs = sh(host(), `grep -rlF -- '${key}' /var/log /var/lib/mor-harden 2>/dev/null; true`).stdout.trim();
        assert.equal(logs, "", "no log or mor-harden state on the host holds the key");
    });
});
