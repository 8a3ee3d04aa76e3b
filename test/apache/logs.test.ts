// The hardened GUI vhosts log where mor_api and mor_ddos read (Debian: access.log, not the
// other_vhosts_access.log a vhost without CustomLog writes to): on a lab host, scanner requests
// to the hardened HTTPS GUI from the attacker get it banned by mor_ddos; the same from the
// trusted workstation ban nobody.
import assert from "node:assert/strict";
import { waitFor } from "../helpers/faults";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, tcpConnect, type TestLab } from "../helpers/lab";
import { needs } from "../helpers/needs";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const host = () => lab.host(1);
const ACCESS_LOG = "/var/log/apache2/access.log";

/** `count` scanner requests (bounded: each waits 3 s at most) from a lab client to the hardened GUI by its name. */
function scan(from: "attacker" | "workstation", count: number) {
    const name = `${host().name}.lab.example`;
    const run = sh(
        lab.client(from),
        `for i in $(seq ${count}); do curl -sk -o /dev/null --max-time 3 --resolve ${name}:443:${host().v4} https://${name}/phpmyadmin/index.php?n=$i; done; echo done`,
        150_000,
    );
    assert.match(run.stdout, /done/);
}

const banned = (jail: string) => sh(host(), `fail2ban-client status ${jail}`, 15_000).stdout.split("Banned IP list:")[1] ?? "";

before(async () => {
    lab = await startTestLab(1);
    const run = applyFromWorkstation(lab, labStackFile(lab, "gui-logs"));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(statuses(run.report).apache, "applied");
    assert.equal(statuses(run.report).fail2ban, "applied");
});
after(() => lab?.stop());

describe("the hardened vhosts' access log", () => {
    it("holds each request in the combined format, the client's address first (not other_vhosts_access.log)", () => {
        scan("workstation", 1);
        const workstation = lab.client("workstation").v4;
        const line = sh(host(), `grep -F 'phpmyadmin/index.php?n=1 ' ${ACCESS_LOG} | tail -n 1`).stdout.trim();
        assert.match(
            line,
            new RegExp(`^${workstation.replace(/\./g, "\\.")} - - \\[[^\\]]+\\] "GET /phpmyadmin/index\\.php\\?n=1 HTTP/1\\.1" 404 \\S+ "-" "curl/[^"]+"$`),
        );
        assert.equal(sh(host(), `grep -c 'phpmyadmin' /var/log/apache2/other_vhosts_access.log 2>/dev/null || true`).stdout.trim() || "0", "0");
    });

    it("mor_ddos bans the attacker's GUI scan, never the trusted workstation's", async () => {
        const attacker = lab.client("attacker").v4;
        const workstation = lab.client("workstation").v4;
        scan("workstation", 25);
        scan("attacker", 25);
        assert.ok(await waitFor(() => banned("mor_ddos").includes(attacker), 60_000), "the attacker banned by mor_ddos");
        assert.notEqual(tcpConnect(lab.client("attacker"), host().v4, 443), "open", "the attacker's connections are refused or dropped");
        assert.ok(!banned("mor_ddos").includes(workstation), "the workstation is not banned");
        assert.equal(tcpConnect(lab.client("workstation"), host().v4, 443), "open");
    });
});
