// Kolmisoft support's way in under key-only sshd, on a lab host: a lab client at a documentation
// address plays support. password: support logs in with root's password from its address, the
// attacker (SSH open to it here) is refused the same password; keys: support's key works from
// support only. ssh-audit finds no failure either way.
import assert from "node:assert/strict";
import { needs } from "../helpers/needs";
import type { LabNode } from "../../src/lab/lab";
import { applyFromWorkstation, labStackFile, sh, sshLoginWorks, startTestLab, statuses, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const host = () => lab.host(1);
const support = () => lab.client("support");
const attacker = () => lab.client("attacker");
const PASSWORD = "lab-Support-Passw0rd!";
const options = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5";

/** A password login as root from `from`, the password given through SSH_ASKPASS (no terminal). */
function passwordLogin(from: LabNode, address: string) {
    return sh(
        from,
        `p=$(mktemp) && printf '#!/bin/sh\\necho "${PASSWORD}"\\n' > "$p" && chmod 700 "$p" && SSH_ASKPASS="$p" SSH_ASKPASS_REQUIRE=force setsid -w ssh ${options} -o PubkeyAuthentication=no -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 root@${address} echo logged-in; rc=$?; rm -f "$p"; exit $rc`,
        20_000,
    );
}

/** Stack with SSH open to everyone (so the attacker reaches sshd and sshd itself must refuse) and support trusted. */
function applyWith(name: string, supportSettings: Record<string, unknown>) {
    const workstation = lab.client("workstation");
    const run = applyFromWorkstation(
        lab,
        labStackFile(lab, name, {
            firewall: { services: { ssh: "public" }, trusted: [workstation.v4, workstation.v6, support().v4, support().v6] },
            sshd: { support: { sources: [support().v4, support().v6], ...supportSettings } },
        }),
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(statuses(run.report).sshd, "applied");
}

function auditFailures(from: LabNode): string[] {
    const audit = sh(from, `ssh-audit -n ${host().v4}`, 60_000);
    assert.match(audit.stdout, /# key exchange algorithms/, "ssh-audit read the server");
    return audit.stdout.split("\n").filter((line) => line.includes("[fail]"));
}

before(async () => {
    lab = await startTestLab(1);
    assert.equal(sh(host(), `echo 'root:${PASSWORD}' | chpasswd`).code, 0);
});
after(() => lab?.stop());

describe("Kolmisoft support access", () => {
    it("password: support logs in with the password from its addresses, the attacker is refused", () => {
        applyWith("support-password", { mode: "password" });
        const ok = passwordLogin(support(), host().v4);
        assert.equal(ok.code, 0, ok.stderr);
        assert.match(ok.stdout, /logged-in/);
        assert.equal(passwordLogin(support(), host().v6).code, 0, "over IPv6 too");
        const refused = passwordLogin(attacker(), host().v4);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /Permission denied \(publickey\)/, "no password offered to others");
        assert.ok(sshLoginWorks(lab, host().v4), "the operator's key still works");
        assert.deepEqual(auditFailures(support()), []);
        assert.deepEqual(auditFailures(attacker()), []);
    });

    it("keys: support's key works from support only; passwords are off again", () => {
        const key = sh(
            support(),
            "rm -f /tmp/support-key /tmp/support-key.pub; ssh-keygen -q -t ed25519 -N '' -C kolmisoft-support -f /tmp/support-key && cat /tmp/support-key.pub",
        );
        assert.equal(key.code, 0, key.stderr);
        applyWith("support-keys", { mode: "keys", keys: [key.stdout.trim()] });
        const login = (from: LabNode) =>
            sh(from, `ssh ${options} -o BatchMode=yes -o IdentitiesOnly=yes -i /tmp/support-key root@${host().v4} echo logged-in`, 20_000);
        assert.equal(login(support()).code, 0, login(support()).stderr);
        // The same key copied to the attacker is useless there (from= in the managed keys file).
        assert.equal(sh(attacker(), `cp /tmp/support-key /tmp/stolen-key`).code, 0, "client namespaces share /tmp");
        const stolen = sh(attacker(), `ssh ${options} -o BatchMode=yes -o IdentitiesOnly=yes -i /tmp/stolen-key root@${host().v4} echo logged-in`, 20_000);
        assert.notEqual(stolen.code, 0);
        assert.notEqual(passwordLogin(support(), host().v4).code, 0, "no password once mode is keys");
        assert.match(
            sh(host(), "cat /etc/ssh/mor-harden-support/root.keys").stdout,
            new RegExp(`^from="${support().v4.replace(/\./g, "\\.")},${support().v6}"`),
        );
        assert.ok(sshLoginWorks(lab, host().v4));
    });
});
