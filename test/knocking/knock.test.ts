// Port knocking live on a lab host, in both modes: the apply that turns it on is confirmed by a
// login that knocked; the guarded services are closed to everyone until a knock, then open for
// the knocker only, and close again after the open window; a replayed SPA packet opens nothing;
// knocking disabled by hand, or a rule added to fwknopd's chain, is drift.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { needs } from "../helpers/needs";
import { labExec, type LabNode } from "../../src/lab/lab";
import { generateSpaKeys } from "../../src/knocking/spa";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, tcpConnect, type TestLab } from "../helpers/lab";
import { CLI_FILE as CLI } from "../../src/cli/bin";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const host = () => lab.host(1);
const attacker = () => lab.client("attacker");
const workstation = () => lab.client("workstation");
const OPEN_WINDOW = 6;

const pause = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

const connect = (from: LabNode, port: number) => tcpConnect(from, host().v4, port);

function knock(stackFile: string) {
    return labExec(workstation(), ["node", CLI, "knock", "--config", stackFile], { timeoutMs: 20_000 });
}

// A fresh lab host for each mode: a direct apply knocks with the stack's own settings only, so
// it cannot move a host from one mode to the other (pulumi up can: it also knocks the old way).
describe("sequence knocking live", () => {
    let stackFile: string;
    before(async () => {
        lab = await startTestLab(1);
    });
    after(() => lab?.stop());

    it("is turned on by an apply whose confirming login knocked first", () => {
        stackFile = labStackFile(lab, "knock-sequence", {
            knocking: { mode: "sequence", sequence: [7001, 8002, 9003], guards: ["ssh", "https"], openWindow: OPEN_WINDOW },
        });
        const run = applyFromWorkstation(lab, stackFile);
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.equal(statuses(run.report).firewall, "applied", "not rolled back: the new login got through the knock");
    });

    it("hides SSH and HTTPS from everyone until a knock, then opens them for the knocker only, until the window closes", async () => {
        await pause(OPEN_WINDOW + 1);
        for (const from of [workstation(), attacker()]) {
            assert.equal(connect(from, 22), "filtered", `${from.name}: SSH hidden`);
            assert.equal(connect(from, 443), "filtered", `${from.name}: HTTPS hidden`);
        }
        assert.equal(connect(attacker(), 80), "open", "a service not guarded stays as it was");
        const knocked = knock(stackFile);
        assert.equal(knocked.code, 0, knocked.stderr);
        assert.match(knocked.stdout, /ssh, https open for this machine for 6 s/);
        assert.equal(connect(workstation(), 22), "open");
        assert.equal(connect(workstation(), 443), "open");
        assert.equal(connect(attacker(), 22), "filtered", "the knock opened nothing for the attacker");
        await pause(OPEN_WINDOW + 1);
        assert.equal(connect(workstation(), 22), "filtered", "closed again after the open window");
    });

    it("a knock out of order opens nothing", () => {
        const wrong = sh(
            workstation(),
            `for port in 7001 9003 8002; do timeout 1 bash -c "exec 3<>/dev/tcp/${host().v4}/$port" 2>/dev/null; done; true`,
            15_000,
        );
        assert.equal(wrong.code, 0);
        assert.equal(connect(workstation(), 22), "filtered");
    });

    it("reports knocking disabled by hand as drift, and the re-apply puts it back", () => {
        // The gate taken off SSH for the trusted sources: a plain jump to the SSH chain.
        const edit = sh(host(), "iptables -R MORH-TRUSTED 1 -p tcp -m tcp --dport 22 -j MORH-SSH");
        assert.equal(edit.code, 0, edit.stderr);
        const drift = labExec(workstation(), ["node", CLI, "drift", "--config", stackFile], { timeoutMs: 60_000 });
        assert.equal(drift.code, 1, drift.stdout + drift.stderr);
        assert.match(drift.stdout, /^-.*--dport 22 -m recent .*--name morh4-open/m, "the diff shows the lost gate");
        const run = applyFromWorkstation(lab, stackFile);
        assert.equal(run.code, 0, run.stderr);
        const clean = labExec(workstation(), ["node", CLI, "drift", "--config", stackFile], { timeoutMs: 60_000 });
        assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    });
});

describe("single packet authorization live", () => {
    let stackFile: string;
    const keys = generateSpaKeys();
    before(async () => {
        lab = await startTestLab(1);
    });
    after(() => lab?.stop());

    it("is turned on by an apply whose confirming login sent an SPA packet first", () => {
        const keyFile = join(lab.state.dir, "spa.keys");
        writeFileSync(keyFile, `KEY_BASE64: ${keys.key}\nHMAC_KEY_BASE64: ${keys.hmacKey}\n`, { mode: 0o600 });
        stackFile = labStackFile(lab, "knock-spa", { knocking: { mode: "spa", guards: ["ssh", "https"], openWindow: OPEN_WINDOW, spa: { keyFile } } });
        const run = applyFromWorkstation(lab, stackFile, 180_000);
        assert.equal(run.code, 0, run.stderr + run.stdout);
        assert.equal(statuses(run.report).knocking, "applied");
        assert.equal(statuses(run.report).firewall, "applied", "not rolled back: the new login got through fwknopd");
        assert.doesNotMatch(run.stdout + run.stderr, new RegExp(keys.key.slice(0, 20).replace(/[+/]/g, "."), "i"), "the key is never printed");
        assert.match(sh(host(), "stat -c %a /etc/fwknop/access.conf").stdout.trim(), /^600$/);
    });

    it("opens for the knocker only, and a replay of its packet from the attacker opens nothing", async () => {
        await pause(OPEN_WINDOW + 1);
        for (const from of [workstation(), attacker()]) assert.equal(connect(from, 22), "filtered", `${from.name}: SSH hidden`);
        // The workstation's packet as a sniffer would capture it: built and sent by the same code
        // as `mor-harden knock`, and printed.
        const send = `const { spaPacket } = require(${JSON.stringify(join(__dirname, "..", "..", "src", "knocking", "spa.js"))});
            const packet = spaPacket({ keys: ${JSON.stringify(keys)}, source: "${workstation().v4}", access: ["tcp/22", "tcp/443"] });
            const socket = require("node:dgram").createSocket("udp4");
            socket.send(Buffer.from(packet), 62201, "${host().v4}", () => { socket.close(); process.stdout.write(packet); });`;
        const sent = labExec(workstation(), ["node", "-e", send], { timeoutMs: 10_000 });
        assert.equal(sent.code, 0, sent.stderr);
        await pause(1);
        assert.equal(connect(workstation(), 22), "open");
        assert.equal(connect(workstation(), 443), "open");
        assert.equal(connect(attacker(), 22), "filtered");

        const replay = `const socket = require("node:dgram").createSocket("udp4");
            socket.send(Buffer.from(${JSON.stringify(sent.stdout)}), 62201, "${host().v4}", () => socket.close());`;
        assert.equal(labExec(attacker(), ["node", "-e", replay], { timeoutMs: 10_000 }).code, 0);
        await pause(1);
        assert.equal(connect(attacker(), 22), "filtered", "the replayed packet opened nothing for the attacker");
        assert.equal(connect(attacker(), 443), "filtered");
        assert.ok(!sh(host(), "iptables -S FWKNOP_INPUT").stdout.includes(attacker().v4));
    });

    it("closes after the open window; `mor-harden knock` opens it again", async () => {
        await pause(OPEN_WINDOW + 3);
        assert.equal(connect(workstation(), 22), "filtered", "closed after the window");
        const knocked = knock(stackFile);
        assert.equal(knocked.code, 0, knocked.stderr);
        assert.equal(connect(workstation(), 22), "open");
    });

    it("reports a rule added by hand to fwknopd's chain as drift, never fwknopd's own rules", () => {
        const drift = () => labExec(workstation(), ["node", CLI, "drift", "--config", stackFile], { timeoutMs: 60_000 });
        assert.match(sh(host(), "iptables -S FWKNOP_INPUT").stdout, /_exp_/, "fwknopd has opened for the workstation");
        const clean = drift();
        assert.equal(clean.code, 0, clean.stdout + clean.stderr);
        assert.equal(sh(host(), "iptables -I FWKNOP_INPUT 1 -p tcp --dport 22 -j ACCEPT").code, 0);
        const dirty = drift();
        assert.equal(dirty.code, 1, dirty.stdout + dirty.stderr);
        assert.match(dirty.stdout, /^\+-A FWKNOP_INPUT -p tcp -m tcp --dport 22 -j ACCEPT$/m);
        assert.equal(sh(host(), "iptables -D FWKNOP_INPUT -p tcp --dport 22 -j ACCEPT").code, 0);
        const again = drift();
        assert.equal(again.code, 0, again.stdout + again.stderr);
    });

    it("prints the settings of fwknop's own client, keys left out", () => {
        const printed = labExec(workstation(), ["node", CLI, "knock", "--config", stackFile, "--client-config"], { timeoutMs: 10_000 });
        assert.equal(printed.code, 0, printed.stderr);
        assert.match(printed.stdout, /^ACCESS +tcp\/22,tcp\/443$/m);
        assert.match(printed.stdout, /^KEY_BASE64 +<knockKey>$/m);
        assert.ok(!printed.stdout.includes(keys.key));
    });
});
