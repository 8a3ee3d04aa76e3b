// An operator who logs in as an ordinary user with sudo rights, as many MOR hosts are run.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { needs } from "../helpers/needs";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
before(async () => {
    lab = await startTestLab(1);
    const publicKey = readFileSync(`${lab.state.operatorKey}.pub`, "utf8").trim();
    const setup = sh(
        lab.host(),
        [
            "useradd -m -s /bin/sh deploy",
            "mkdir -p -m 700 /home/deploy/.ssh",
            `echo '${publicKey}' > /home/deploy/.ssh/authorized_keys`,
            "chown -R deploy: /home/deploy/.ssh",
            "echo 'deploy ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy",
        ].join(" && "),
    );
    assert.equal(setup.code, 0, setup.stderr);
});
after(() => lab?.stop());

describe("apply as a user with sudo", () => {
    it("hardens the host through sudo, and files stay root's", () => {
        const run = applyFromWorkstation(lab, labStackFile(lab, "deploy", { connection: { user: "deploy" } }));
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.deepEqual(statuses(run.report), { firewall: "applied", sshd: "applied", fail2ban: "applied", apache: "applied" });
        assert.equal(sh(lab.host(), "stat -c %U:%G /etc/ssh/sshd_config.d/00-mor-harden.conf /etc/ssl/mor-harden/server.key").stdout, "root:root\nroot:root\n");
        assert.match(sh(lab.host(), "grep -c 'sudo.*COMMAND=/usr/bin/sh -s' /var/log/auth.log").stdout.trim(), /^[1-9]/, "every command went through sudo");
    });

    it("fails with a clear reason when sudo would ask for a password", () => {
        sh(lab.host(), "echo 'deploy ALL=(root) ALL' > /etc/sudoers.d/deploy");
        const run = applyFromWorkstation(lab, labStackFile(lab, "deploy-no-sudo", { connection: { user: "deploy" }, firewall: { allowPing: false } }));
        assert.notEqual(run.code, 0);
        assert.match(run.stdout + run.stderr, /sudo: a (terminal is required|password is required)/);
    });
});
