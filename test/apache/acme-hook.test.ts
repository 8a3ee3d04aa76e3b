// The ACME deploy hook's logic, run with sh in a scratch tree shaped like certbot's
// (archive/<name>/{cert,chain,fullchain,privkey}N.pem, live/<name>/*.pem linking to them), with
// certificates made by openssl and a stand-in apache2ctl whose `-t` the test decides: a renewal
// it serves, a renewed certificate it rejects (wrong key, garbage, a test that fails with it
// alone), a configuration broken whatever the certificate (the renewal kept), another lineage,
// and the host lock held by a transaction. Also the apache plan's own key check, on the same
// files. No root needed: every path is the scratch tree's.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ACME_HOOK_PATHS, ACME_LIVE, acmeDeployHook, renderApache } from "../../src/apache/render";
import { readScript } from "../../src/apply/scripts";
import { certificateFor, minimalConfig, renderInputFor } from "../helpers/fixtures";

const NAME = "mor-harden";
const PARTS = ["cert", "chain", "fullchain", "privkey"] as const;
const scratch = mkdtempSync(join(tmpdir(), "mor-harden-acme-hook-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** `-t` fails never, only while live/cert.pem names version 2, or always. */
type TestFails = "never" | "with-v2" | "always";

interface Version {
    cert: string;
    key: string;
}

const v1: Version = { cert: certificateFor("v1.example.com").certificate, key: certificateFor("v1.example.com").key };
const v2: Version = { cert: certificateFor("v2.example.com").certificate, key: certificateFor("v2.example.com").key };

let trees = 0;

/** The head of a renewal configuration as certbot 2.1 writes it: its default as a comment on top. */
const RENEWAL_CONF = `# renew_before_expiry = 30 days\nversion = 2.1.0\narchive_dir = /etc/letsencrypt/archive/${NAME}\n\n[renewalparams]\nauthenticator = webroot\n`;

/** A certbot-shaped lineage holding `versions` (1, 2, ...) with the live links on the last, and the hook rendered for it. */
function lineage(versions: Version[], testFails: TestFails) {
    const root = join(scratch, `tree-${++trees}`);
    const paths = {
        name: NAME,
        live: join(root, "letsencrypt/live", NAME),
        archive: join(root, "letsencrypt/archive", NAME),
        rejected: join(root, "rejected"),
        renewalConf: join(root, "letsencrypt/renewal", `${NAME}.conf`),
        lock: join(root, "lock"),
        lockSeconds: 1,
    };
    const bin = join(root, "bin");
    const calls = join(root, "calls");
    const log = join(root, "logger");
    for (const dir of [paths.live, paths.archive, join(root, "letsencrypt/renewal"), bin]) mkdirSync(dir, { recursive: true });
    writeFileSync(paths.renewalConf, RENEWAL_CONF);
    versions.forEach((version, index) => {
        const n = index + 1;
        const content = { cert: version.cert, chain: version.cert, fullchain: version.cert, privkey: version.key };
        for (const part of PARTS) writeFileSync(join(paths.archive, `${part}${n}.pem`), content[part]);
    });
    for (const part of PARTS) symlinkSync(`../../archive/${NAME}/${part}${versions.length}.pem`, join(paths.live, `${part}.pem`));
    const failing = { never: "never-linked", "with-v2": "*cert2.pem", always: "*" }[testFails];
    // The stand-in records each call, and whether it was given the hook's lock (fd 9): an Apache it started would hold it.
    writeFileSync(
        join(bin, "apache2ctl"),
        [
            "#!/bin/sh",
            `if [ -e /proc/$$/fd/9 ]; then fd9=' fd9'; else fd9=''; fi`,
            `echo "$1 $(readlink '${paths.live}/cert.pem')$fd9" >> '${calls}'`,
            `case "$1" in`,
            `-t) case "$(readlink '${paths.live}/cert.pem')" in ${failing}) echo 'AH00526: Syntax error on line 1 of /etc/apache2/conf-enabled/zz-broken.conf:'; echo "Invalid command 'NoSuchDirective'"; exit 1 ;; esac; echo 'Syntax OK' ;;`,
            `graceful) ;;`,
            `*) exit 2 ;;`,
            `esac`,
        ].join("\n") + "\n",
        { mode: 0o755 },
    );
    writeFileSync(join(bin, "logger"), `#!/bin/sh\necho "$*" >> '${log}'\n`, { mode: 0o755 });
    const hook = join(root, "hook");
    writeFileSync(hook, acmeDeployHook("test", "apache2ctl", paths), { mode: 0o755 });
    const read = (file: string) => (existsSync(file) ? readFileSync(file, "utf8") : "");
    return {
        paths,
        run(lineagePath = paths.live) {
            const result = spawnSync("sh", [hook], {
                encoding: "utf8",
                timeout: 20_000,
                env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, RENEWED_LINEAGE: lineagePath },
            });
            assert.equal(result.error, undefined);
            return { code: result.status, stderr: result.stderr };
        },
        /** The version each live link names (cert, chain, fullchain, privkey). */
        links: () => PARTS.map((part) => /(\d+)\.pem$/.exec(readlinkSync(join(paths.live, `${part}.pem`)))?.[1]).join(" "),
        archive: () => readdirSync(paths.archive).sort(),
        rejected: () => (existsSync(paths.rejected) ? readdirSync(paths.rejected).map((file) => readFileSync(join(paths.rejected, file), "utf8")) : []),
        calls: () => read(calls).split("\n").filter(Boolean),
        renewalConf: () => read(paths.renewalConf),
        log: () => read(log),
    };
}

const allParts = (n: number) => PARTS.map((part) => `${part}${n}.pem`);

describe("the ACME deploy hook, in a scratch certbot tree", () => {
    it("serves a good renewal by a graceful restart, links on the new version, Apache not given the lock", () => {
        const tree = lineage([v1, v2], "never");
        const run = tree.run();
        assert.equal(run.code, 0, run.stderr);
        assert.equal(tree.links(), "2 2 2 2");
        assert.deepEqual(tree.calls(), [`-t ../../archive/${NAME}/cert2.pem`, `graceful ../../archive/${NAME}/cert2.pem`]);
        assert.deepEqual(tree.archive(), [...allParts(1), ...allParts(2)].sort());
        assert.deepEqual(tree.rejected(), []);
        assert.match(tree.log(), /^-t mor-harden-acme the renewed certificate of mor-harden \(version 2\) is served$/m);
        // The next renewal at half the new certificate's life (2 days: openssl -days 2), certbot's other keys untouched.
        assert.equal(tree.renewalConf(), RENEWAL_CONF.replace("# renew_before_expiry = 30 days", "renew_before_expiry = 1440 minutes"));
    });

    it("rejects a renewed certificate that does not match its key: v1 linked again, v2's key deleted, its certificate kept aside", () => {
        const tree = lineage([v1, { cert: v2.cert, key: v1.key }], "never");
        const run = tree.run();
        assert.equal(run.code, 1);
        assert.equal(tree.links(), "1 1 1 1");
        assert.deepEqual(tree.archive(), allParts(1).sort(), "version 2 left the archive, its key with it");
        assert.deepEqual(tree.rejected(), [v2.cert]);
        assert.deepEqual(tree.calls(), [], "neither tested nor reloaded");
        assert.equal(tree.renewalConf(), RENEWAL_CONF, "the renewal point is set only for a certificate served");
        assert.match(tree.log(), /version 2\) failed validation \(the certificate does not match its private key\): version 1 kept/);
        assert.match(run.stderr, /mor-harden-acme: the renewed certificate/);
    });

    for (const [what, content] of [
        ["garbage", "not a PEM file\n"],
        ["empty", ""],
    ] as const) {
        it(`rejects a renewal whose certificate and key are both ${what} (two unreadable files do not match)`, () => {
            const tree = lineage([v1, { cert: content, key: content }], "never");
            const run = tree.run();
            assert.equal(run.code, 1);
            assert.equal(tree.links(), "1 1 1 1");
            assert.deepEqual(tree.archive(), allParts(1).sort());
            assert.deepEqual(tree.rejected(), [content]);
            assert.deepEqual(tree.calls(), []);
            assert.match(tree.log(), /fullchain\.pem is unreadable or not a certificate\): version 1 kept/);
        });
    }

    it("rejects a renewal Apache refuses while the previous version passes", () => {
        const tree = lineage([v1, v2], "with-v2");
        const run = tree.run();
        assert.equal(run.code, 1);
        assert.equal(tree.links(), "1 1 1 1");
        assert.deepEqual(tree.archive(), allParts(1).sort());
        assert.deepEqual(tree.rejected(), [v2.cert]);
        assert.deepEqual(tree.calls(), [`-t ../../archive/${NAME}/cert2.pem`, `-t ../../archive/${NAME}/cert1.pem`], "tested with each, not reloaded");
        assert.match(tree.log(), /failed validation \(apache2ctl -t fails with it: AH00526: .*NoSuchDirective.*\): version 1 kept/);
    });

    it("keeps the renewal when Apache's configuration fails with the previous version too: no graceful, exit 1, the log says why", () => {
        const tree = lineage([v1, v2], "always");
        const run = tree.run();
        assert.equal(run.code, 1);
        assert.equal(tree.links(), "2 2 2 2", "the renewed version stays linked");
        assert.deepEqual(tree.archive(), [...allParts(1), ...allParts(2)].sort(), "its key is kept");
        assert.deepEqual(tree.rejected(), []);
        assert.deepEqual(tree.calls(), [`-t ../../archive/${NAME}/cert2.pem`, `-t ../../archive/${NAME}/cert1.pem`]);
        assert.match(
            tree.log(),
            /^-t mor-harden-acme Apache's configuration is broken regardless of the certificate \(apache2ctl -t fails with version 1 of mor-harden too: AH00526/m,
        );
        assert.match(tree.log(), /the renewed version 2 stays linked and Apache is not reloaded/);
    });

    it("keeps a first certificate that fails (no earlier version to go back to), saying so", () => {
        const tree = lineage([{ cert: v1.cert, key: v2.key }], "never");
        const run = tree.run();
        assert.equal(run.code, 1);
        assert.equal(tree.links(), "1 1 1 1");
        assert.deepEqual(tree.archive(), allParts(1).sort());
        assert.match(tree.log(), /no earlier version exists/);
    });

    it("leaves another lineage's renewal alone", () => {
        const tree = lineage([v1, { cert: v2.cert, key: v1.key }], "always");
        const run = tree.run("/etc/letsencrypt/live/another");
        assert.equal(run.code, 0);
        assert.equal(tree.links(), "2 2 2 2");
        assert.deepEqual(tree.archive(), [...allParts(1), ...allParts(2)].sort());
        assert.deepEqual(tree.calls(), []);
        assert.equal(tree.log(), "");
    });

    it("with the host lock held by a transaction, gives up after its wait without touching anything", async () => {
        const tree = lineage([v1, { cert: v2.cert, key: v1.key }], "never");
        // As a transaction holds it: flock on fd 9 of a process that keeps it (one process: killed by its PID).
        const holder = spawn("sh", ["-c", 'exec 9>>"$1" && flock 9 && echo held && exec sleep 30', "sh", tree.paths.lock], {
            stdio: ["ignore", "pipe", "inherit"],
        });
        try {
            await new Promise<void>((resolve, reject) => {
                holder.stdout.on("data", (data: Buffer) => data.toString().includes("held") && resolve());
                holder.on("exit", (code) => reject(new Error(`the lock holder ended (${code})`)));
            });
            const started = Date.now();
            const run = tree.run();
            assert.equal(run.code, 1);
            assert.ok(Date.now() - started >= 900, "it waited for the lock");
            assert.equal(tree.links(), "2 2 2 2");
            assert.deepEqual(tree.archive(), [...allParts(1), ...allParts(2)].sort());
            assert.deepEqual(tree.calls(), []);
            assert.match(
                tree.log(),
                /a mor-harden transaction held the host for more than 1 s: the renewed certificate of mor-harden is linked but neither validated nor served/,
            );
        } finally {
            holder.kill("SIGKILL");
        }
        // Released, the same renewal is judged (and rejected: its key is v1's).
        await new Promise((resolve) => (holder.exitCode !== null || holder.signalCode !== null ? resolve(undefined) : holder.once("exit", resolve)));
        assert.equal(tree.run().code, 1);
        assert.equal(tree.links(), "1 1 1 1");
    });

    it("takes the lock mor-harden's transactions take, and links as certbot does", () => {
        assert.ok(readScript([], "debian", { lockSeconds: 5 }).includes(`exec 9>>'${ACME_HOOK_PATHS.lock}'`), "the apply's lock file");
        const hook = acmeDeployHook("test", "apache2ctl");
        assert.ok(hook.includes(`flock -w 600 9`));
        assert.ok(hook.includes(`ln -sfn "../../archive/${NAME}/$morh_part$1.pem" "${ACME_LIVE}/$morh_part.pem"`));
    });
});

describe("the apache plan's key check (validate), on the same kind of files", () => {
    const tree = lineage([v1], "never");
    const check = async (version: Version) => {
        const plan = renderApache(
            await renderInputFor(minimalConfig({ apache: { enabled: true, serverName: "mor.example.com", acme: { email: "ops@example.com" } } })),
        )!;
        writeFileSync(join(tree.paths.archive, "fullchain1.pem"), version.cert);
        writeFileSync(join(tree.paths.archive, "privkey1.pem"), version.key);
        const command = plan.validate[0].replaceAll(ACME_LIVE, tree.paths.live);
        const run = spawnSync("sh", ["-c", command], { encoding: "utf8" });
        return { code: run.status, out: run.stdout };
    };

    it("passes a certificate with its key", async () => {
        assert.deepEqual(await check(v1), { code: 0, out: "" });
    });

    it("refuses a certificate with another key", async () => {
        assert.deepEqual(await check({ cert: v1.cert, key: v2.key }), { code: 1, out: "the certificate does not match its private key\n" });
    });

    it("refuses unreadable files on both sides (they no longer compare equal)", async () => {
        const run = await check({ cert: "garbage\n", key: "garbage\n" });
        assert.equal(run.code, 1);
        assert.match(run.out, /fullchain\.pem is unreadable or not a certificate/);
        const key = await check({ cert: v1.cert, key: "" });
        assert.equal(key.code, 1);
        assert.match(key.out, /privkey\.pem is unreadable or not a private key/);
    });
});
