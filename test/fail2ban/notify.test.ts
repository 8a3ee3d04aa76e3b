// fail2ban.notify on a MOR-profile lab host (MOR's jail.conf with its own per-jail actions and
// mail underneath): each ban POSTs a JSON document to a receiver in the workstation's namespace
// and mails through the host's sendmail; MOR's own actions no longer run for the guide's jails;
// an unreachable receiver never delays or stops a ban.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { needs } from "../helpers/needs";
import { LAB_MAILBOX } from "../../src/lab/mor-profile";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const host = () => lab.host(1);
const workstation = () => lab.client("workstation");
const RECEIVED = "/tmp/morh-notify-received.jsonl";
const PORT = 8099;

/** A webhook receiver: appends each POST body as one line; ends by itself after 150 s. */
const RECEIVER = [
    "import http.server, sys",
    "class H(http.server.BaseHTTPRequestHandler):",
    "    def do_POST(self):",
    "        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))",
    `        open('${RECEIVED}', 'ab').write(body + b'\\n')`,
    "        self.send_response(204); self.end_headers()",
    "    def log_message(self, *args): pass",
    `http.server.HTTPServer(('0.0.0.0', ${PORT}), H).serve_forever()`,
].join("\n");

function apply(name: string, notify: Record<string, unknown>) {
    const run = applyFromWorkstation(lab, labStackFile(lab, name, { fail2ban: { notify } }));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(statuses(run.report).fail2ban, "applied");
}

/** An AMI failure as Asterisk logs it, stamped now: asterisk-manager bans at the first. */
function amiFailure(address: string) {
    const now = sh(host(), "date '+%Y-%m-%d %H:%M:%S'").stdout.trim();
    assert.equal(
        sh(
            host(),
            `echo '[${now}] NOTICE[3011] manager.c: ${address} tried to authenticate with nonexistent user '"'"'admin'"'"'' >> /var/log/asterisk/messages`,
        ).code,
        0,
    );
}

const bannedBy = (jail: string) => sh(host(), `fail2ban-client status ${jail}`, 15_000).stdout;

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
    }
}

before(async () => {
    lab = await startTestLab(1, { profile: "mor" });
    const receiver = join(lab.state.dir, "receiver.py");
    writeFileSync(receiver, RECEIVER + "\n");
    sh(workstation(), `rm -f ${RECEIVED}; setsid timeout 150 python3 ${receiver} </dev/null >/dev/null 2>&1 & sleep 1`);
});
after(() => {
    sh(workstation(), `pkill -f 'python3 ${lab?.state.dir}/receiver.py'; rm -f ${RECEIVED}`);
    lab?.stop();
});

describe("fail2ban.notify", () => {
    it("posts host, jail, address, time and failures to the webhook and mails, for each ban", async () => {
        apply("notify", { webhook: { url: `http://${workstation().v4}:${PORT}/bans`, timeout: 3 }, mail: { to: "noc@example.org" } });
        amiFailure("203.0.113.151");
        await waitFor("the webhook receives the ban", () => sh(workstation(), `cat ${RECEIVED} 2>/dev/null`).stdout.includes("203.0.113.151"), 20_000);
        const posted = JSON.parse(sh(workstation(), `grep 203.0.113.151 ${RECEIVED}`).stdout.trim().split("\n")[0]);
        assert.deepEqual(Object.keys(posted).sort(), ["address", "failures", "host", "jail", "time"]);
        assert.equal(posted.jail, "asterisk-manager");
        assert.equal(posted.address, "203.0.113.151");
        // The host's own name for itself (hostname -f).
        assert.match(posted.host, new RegExp(`^${host().name}(\\.|$)`));
        assert.equal(posted.failures, 1);
        assert.ok(Math.abs(Date.parse(posted.time) - Date.now()) < 120_000, `time ${posted.time}`);
        await waitFor(
            "the mail is sent",
            () => /To: noc@example\.org[\s\S]*203\.0\.113\.151 banned by asterisk-manager/.test(sh(host(), `cat ${LAB_MAILBOX} 2>/dev/null`).stdout),
            10_000,
        );
        // MOR's own jail.conf action for asterisk-manager (a 5038-only ban and a mail to root) no longer runs.
        assert.ok(!sh(host(), "iptables -S").stdout.includes("f2b-AST_MANAGER"), "MOR's port-limited chain is gone");
        assert.ok(
            !/Subject: \[Fail2Ban\] AST_MANAGER: banned 203\.0\.113\.151/.test(sh(host(), `cat ${LAB_MAILBOX}`).stdout),
            "MOR's mail to root is not sent",
        );
    });

    it("bans at once while the receiver does not answer, and logs the failure", async () => {
        // A documentation address with no host behind it: connections hang until curl's limit.
        apply("notify-unreachable", { webhook: { url: "http://192.0.2.99:8099/bans", timeout: 5 } });
        const started = Date.now();
        amiFailure("203.0.113.152");
        await waitFor(
            "the ban",
            () => bannedBy("asterisk-manager").includes("203.0.113.152") && sh(host(), "ipset save").stdout.includes("203.0.113.152"),
            10_000,
        );
        assert.ok(Date.now() - started < 5_000, `banned after ${Date.now() - started} ms, before the webhook's 5 s limit`);
        amiFailure("203.0.113.153");
        await waitFor("the next ban, while the first notification still waits", () => bannedBy("asterisk-manager").includes("203.0.113.153"), 5_000);
        await waitFor(
            "the failure logged",
            () => sh(host(), "grep -h 'mor-harden-notify' /var/log/syslog").stdout.includes("webhook failed for the ban of 203.0.113.152"),
            20_000,
        );
    });
});
