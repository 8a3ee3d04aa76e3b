// The host script of `mor-harden bans`/`unban`, run as rendered under bash against a stand-in for
// fail2ban's socket client (a Python module first on PYTHONPATH, with the bans it holds), so what
// the script asks fail2ban and what it reports is checked without a fail2ban-server.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { bansScript, checkBanArguments, parseBansOutput } from "../../src/fail2ban/bans";

// fail2ban's answers as its server gives them: status as pairs, banip as fail2ban prints addresses
// (inet_ntop's lower case, zeros compressed), unbanip of an address it does not hold an error.
const STAND_IN = `import json, os
class CSocket:
    def __init__(self, path):
        self.bans = json.loads(os.environ["STAND_IN_BANS"])
    def send(self, command):
        with open(os.environ["STAND_IN_LOG"], "a") as log:
            log.write(" ".join(command) + "\\n")
        if command == ["status"]:
            return 0, [("Number of jail", len(self.bans)), ("Jail list", ", ".join(self.bans))]
        if command[0] == "get" and command[2] == "banip":
            return 0, list(self.bans[command[1]])
        if command[0] == "set" and command[2] == "unbanip":
            if command[3] not in self.bans[command[1]]:
                return 1, "IP %s is not banned" % command[3]
            self.bans[command[1]].remove(command[3])
            return 0, 1
        return 1, "unknown command"
    def close(self):
        pass
`;

/** Runs the rendered script with fail2ban holding `bans` (jail: addresses); its output and what fail2ban was asked. */
function runAgainst(bans: Record<string, string[]>, script: string): { stdout: string; asked: string[] } {
    const dir = mkdtempSync(join(tmpdir(), "mor-harden-bans-"));
    try {
        mkdirSync(join(dir, "fail2ban", "client"), { recursive: true });
        writeFileSync(join(dir, "fail2ban", "__init__.py"), "");
        writeFileSync(join(dir, "fail2ban", "client", "__init__.py"), "");
        writeFileSync(join(dir, "fail2ban", "client", "csocket.py"), STAND_IN);
        mkdirSync(join(dir, "bin"));
        // The script runs fail2ban-client's own interpreter, read from its first line.
        writeFileSync(join(dir, "bin", "fail2ban-client"), "#!/usr/bin/python3\n");
        chmodSync(join(dir, "bin", "fail2ban-client"), 0o755);
        const log = join(dir, "asked");
        writeFileSync(log, "");
        const run = spawnSync("bash", ["-c", script], {
            encoding: "utf8",
            timeout: 30_000,
            env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, PYTHONPATH: dir, STAND_IN_BANS: JSON.stringify(bans), STAND_IN_LOG: log },
        });
        assert.equal(run.status, 0, run.stderr);
        return { stdout: run.stdout, asked: readFileSync(log, "utf8").split("\n").filter(Boolean) };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

describe("the bans host script", () => {
    it("unbans an address however it is written, telling fail2ban and reporting it as fail2ban holds it", () => {
        const typed = ["2001:DB8::1", "2001:db8:0:0::1", "::ffff:203.0.113.5", "2001:db8::2", "198.51.100.7"];
        checkBanArguments(typed, undefined);
        const bans = { "ssh-iptables": ["2001:db8::1", "203.0.113.5"], mor_api: ["2001:db8:113::66", "203.0.113.5", "198.51.100.7"] };
        const { stdout, asked } = runAgainst(bans, bansScript("unban", undefined, typed));
        assert.deepEqual(
            asked.filter((command) => command.includes("unbanip")),
            ["set ssh-iptables unbanip 2001:db8::1", "set ssh-iptables unbanip 203.0.113.5", "set mor_api unbanip 203.0.113.5", "set mor_api unbanip 198.51.100.7"],
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
        const { stdout, asked } = runAgainst({ "ssh-iptables": ["2001:db8::1"], mor_api: ["2001:db8::1"] }, bansScript("unban", "mor_api", ["2001:0DB8::0001"]));
        assert.deepEqual(asked.filter((command) => command.includes("unbanip")), ["set mor_api unbanip 2001:db8::1"]);
        assert.deepEqual(parseBansOutput(stdout).unbanned, [{ jail: "mor_api", address: "2001:db8::1" }]);
    });
});
