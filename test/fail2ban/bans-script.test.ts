// The host script of `mor-harden bans`/`unban`, run as rendered under bash against a stand-in for
// fail2ban's socket client, so what the script asks fail2ban and what it reports is checked
// without a fail2ban-server.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { bansScript, checkBanArguments, parseBansOutput } from "../../src/fail2ban/bans";
import { fail2banStandIn, type StandInJail } from "../helpers/fail2ban-socket";

/** Runs the rendered script with fail2ban holding `bans` (jail: addresses); its output and what fail2ban was asked. */
function runAgainst(bans: Record<string, string[]>, script: string): { stdout: string; asked: string[] } {
    const standIn = fail2banStandIn(Object.fromEntries(Object.entries(bans).map(([jail, addresses]): [string, StandInJail] => [jail, { bans: addresses }])));
    try {
        const run = spawnSync("bash", ["-c", script], { encoding: "utf8", timeout: 30_000, env: standIn.env });
        assert.equal(run.status, 0, run.stderr);
        return { stdout: run.stdout, asked: standIn.asked() };
    } finally {
        standIn.cleanup();
    }
}

const unbans = (asked: string[]) => asked.filter((command) => command.includes("unbanip"));

describe("the bans host script", () => {
    it("unbans an address however it is written, telling fail2ban and reporting it as fail2ban holds it", () => {
        const typed = ["2001:DB8::1", "2001:db8:0:0::1", "::ffff:203.0.113.5", "2001:db8::2", "198.51.100.7"];
        checkBanArguments(typed, undefined);
        const bans = { "ssh-iptables": ["2001:db8::1", "203.0.113.5"], mor_api: ["2001:db8:113::66", "203.0.113.5", "198.51.100.7"] };
        const { stdout, asked } = runAgainst(bans, bansScript("unban", undefined, typed));
        assert.deepEqual(
            unbans(asked),
            [
                "set ssh-iptables unbanip 2001:db8::1",
                "set ssh-iptables unbanip 203.0.113.5",
                "set mor_api unbanip 203.0.113.5",
                "set mor_api unbanip 198.51.100.7",
            ],
            "each address once per jail, in fail2ban's own form",
        );
        const parsed = parseBansOutput(stdout);
        assert.deepEqual(parsed.unbanned, [
            { jail: "ssh-iptables", address: "2001:db8::1" },
            { jail: "ssh-iptables", address: "203.0.113.5" },
            { jail: "mor_api", address: "203.0.113.5" },
            { jail: "mor_api", address: "198.51.100.7" },
        ]);
        assert.deepEqual(parsed.notBanned, ["2001:db8::2"], "named as the operator wrote it");
        assert.equal(parsed.error, undefined);
    });

    it("unbans in the one jail asked", () => {
        const { stdout, asked } = runAgainst(
            { "ssh-iptables": ["2001:db8::1"], mor_api: ["2001:db8::1"] },
            bansScript("unban", "mor_api", ["2001:0DB8::0001"]),
        );
        assert.deepEqual(unbans(asked), ["set mor_api unbanip 2001:db8::1"]);
        assert.deepEqual(parseBansOutput(stdout).unbanned, [{ jail: "mor_api", address: "2001:db8::1" }]);
    });
});
