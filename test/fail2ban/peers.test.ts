// fail2ban.ignorePeers on a lab host with MOR's layout (Asterisk files, MariaDB with mor.devices):
// a static peer in the devices table is never banned, neither for forged Asterisk failures nor
// for real scans of the GUI from its address, while another address is; a device added to the
// database afterwards (no apply) is ignored once the lists are read again; the database down,
// the last list read stays ignored and the system log says why, until it is older than
// fail2ban.peers.staleAfter: then only sip.conf's peers are.
import assert from "node:assert/strict";
import { IGNORE_PEERS_SCRIPT, PEERS_STATE_DIR } from "../../src/fail2ban/render";
import { labSecrets } from "../../src/lab/voip-files";
import { waitFor } from "../helpers/faults";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, type TestLab } from "../helpers/lab";
import { needs } from "../helpers/needs";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const host = () => lab.host(1);
const attacker = () => lab.client("attacker");
/** Short, so that the test sees a device added without waiting long. */
const CACHE_TIME = 3;
const PEER = "203.0.113.66"; // the attacker's own address, a static peer in mor.devices
const OTHER = "192.0.2.99";
const ADDED = "192.0.2.98";

/** An AMI failure as Asterisk's manager.c logs it, stamped now: asterisk-manager bans at the first. */
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

const banned = (jail: string) => sh(host(), `fail2ban-client status ${jail}`, 15_000).stdout.split("Banned IP list:")[1] ?? "";
const fail2banLog = () => sh(host(), "cat /var/log/fail2ban.log").stdout;
const addDevice = (name: string, address: string) =>
    assert.equal(
        sh(
            host(),
            `mariadb -u root mor -e "INSERT INTO devices (name, secret, host, type, context) VALUES ('${name}', 'Lw4%nB7^kP2q', '${address}', 'peer', 'mor_trunk')"`,
        ).code,
        0,
    );

before(async () => {
    lab = await startTestLab(1, { voip: [{ secrets: "strong", database: "loopback" }] });
});
after(() => lab?.stop());

describe("fail2ban.ignorePeers on a MOR-like host", () => {
    it("never bans a static peer of MOR's devices table; bans another address", async () => {
        addDevice("carrier-66", PEER);
        const run = applyFromWorkstation(lab, labStackFile(lab, "peers", { fail2ban: { peers: { cacheTime: CACHE_TIME } } }));
        assert.equal(run.code, 0, run.stderr);
        assert.equal(statuses(run.report).fail2ban, "applied");
        amiFailure(PEER);
        amiFailure(OTHER);
        assert.ok(await waitFor(() => banned("asterisk-manager").includes(OTHER), 30_000), `${OTHER} banned`);
        assert.ok(await waitFor(() => fail2banLog().includes(`[asterisk-manager] Ignore ${PEER} by command`), 30_000), `${PEER} ignored by the command`);
        assert.ok(!banned("asterisk-manager").includes(PEER), "the peer is not banned");
        // Real failures from the peer: scanner requests to the GUI, more than mor_ddos bans for.
        const scan = sh(
            attacker(),
            `for i in $(seq 25); do curl -sk -o /dev/null --max-time 3 https://${host().v4}/wp-login.php?n=$i; done; echo done`,
            150_000,
        );
        assert.match(scan.stdout, /done/);
        assert.ok(await waitFor(() => fail2banLog().includes(`[mor_ddos] Ignore ${PEER} by command`), 30_000), "mor_ddos saw the peer's requests");
        assert.equal(
            sh(host(), `grep -c '^${PEER.replace(/\./g, "\\.")} .*wp-login' /var/log/apache2/access.log`).stdout.trim(),
            "25",
            "the requests are in the log mor_ddos reads",
        );
        assert.ok(!banned("mor_ddos").includes(PEER), "not banned by mor_ddos");
        assert.equal(
            sh(attacker(), `curl -sk -o /dev/null -w '%{http_code}' --max-time 3 https://${host().v4}/`).stdout,
            "200",
            "the peer still reaches the host",
        );
    });

    it("ignores a device added to the database without an apply, once fail2ban's cached answer is older than cacheTime", async (t) => {
        // A request from ADDED as Apache logs it: mor_ddos counts it (20 ban) and asks the command.
        const request = () =>
            assert.equal(
                sh(
                    host(),
                    `echo "${ADDED} - - [$(date '+%d/%b/%Y:%H:%M:%S %z')] \\"GET /wp-login.php HTTP/1.1\\" 404 196 \\"-\\" \\"scan\\"" >> /var/log/apache2/access.log`,
                ).code,
                0,
            );
        request();
        assert.ok(
            await waitFor(() => fail2banLog().includes(`[mor_ddos] Found ${ADDED}`), 30_000),
            "mor_ddos counted the first, not a peer yet: its answer is cached",
        );
        addDevice("pbx-98", ADDED);
        // One request a second at most, fewer than mor_ddos bans for, until the answer is asked again.
        let ignoredAfter = 0;
        for (let requests = 1; requests < 15 && ignoredAfter === 0; requests++) {
            request();
            if (await waitFor(() => fail2banLog().includes(`[mor_ddos] Ignore ${ADDED} by command`), 1_000)) ignoredAfter = requests;
        }
        assert.ok(ignoredAfter > 0, `${ADDED} ignored by the command after the cache time`);
        t.diagnostic(
            `ignored from the ${ignoredAfter}. request after the device was added (${fail2banLog().split(`[mor_ddos] Found ${ADDED}`).length - 1} counted before)`,
        );
        assert.ok(!banned("mor_ddos").includes(ADDED));
        amiFailure(ADDED);
        assert.ok(await waitFor(() => fail2banLog().includes(`[asterisk-manager] Ignore ${ADDED} by command`), 30_000), "asterisk-manager ignores it too");
        assert.ok(!banned("asterisk-manager").includes(ADDED));
    });

    it("the database down: the last list read stays ignored and the system log says why", async () => {
        assert.equal(
            sh(host(), "kill $(cat /run/mysqld/mysqld.pid) && for i in $(seq 100); do [ -S /run/mysqld/mysqld.sock ] || exit 0; sleep 0.1; done; exit 1").code,
            0,
            "MariaDB stopped",
        );
        assert.ok(
            await waitFor(
                () => {
                    sh(host(), `${IGNORE_PEERS_SCRIPT} ${OTHER}`);
                    return /mor-harden-peers.*MOR's database not read, the peers it listed at .* stay ignored/.test(sh(host(), "cat /var/log/syslog").stdout);
                },
                4 * CACHE_TIME * 1000 + 10_000,
            ),
            "the failed read logged",
        );
        assert.equal(sh(host(), `${IGNORE_PEERS_SCRIPT} ${PEER}`).code, 0, "the peer is still ignored");
        assert.equal(sh(host(), `${IGNORE_PEERS_SCRIPT} 192.0.2.97`).code, 1, "another address is not");
        assert.ok(!sh(host(), "cat /var/log/syslog").stdout.includes(labSecrets.strong.database), "the database's password is not logged");
    });

    it("the database down longer than staleAfter (1 day by default): its last list is no longer used", () => {
        // The last read a day and a minute ago, the lists due again.
        assert.equal(sh(host(), `touch -d '1 day ago 1 minute ago' ${PEERS_STATE_DIR}/database && touch -d '1 hour ago' ${PEERS_STATE_DIR}/stamp`).code, 0);
        assert.equal(sh(host(), `${IGNORE_PEERS_SCRIPT} ${PEER}`).code, 1, "the device read from the database a day ago is no longer ignored");
        assert.match(
            sh(host(), "cat /var/log/syslog").stdout,
            /mor-harden-peers.*its last list \(read at .*\) is older than 86400 s \(fail2ban\.peers\.staleAfter\)/,
        );
    });
});
