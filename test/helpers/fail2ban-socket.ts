// A stand-in for fail2ban-server behind fail2ban's socket client: a Python module first on
// PYTHONPATH (fail2ban.client.csocket) answering as the server does, and a fail2ban-client whose
// first line names the Python to run. Host scripts that ask fail2ban through its socket run
// against it without a fail2ban-server; what they asked is kept.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface StandInJail {
    /** As fail2ban prints them (inet_ntop's lower case, zeros compressed). */
    bans: string[];
    /** Action name -> its parameters (actionban, name, ...); a Python action has no actionban. */
    actions?: Record<string, Record<string, string>>;
}

// The server's answers: status as pairs, banip and actions as lists, an action's parameter by
// name (an error for one it does not have), unbanip of an address it does not hold an error.
const CSOCKET = `import json, os
class CSocket:
    def __init__(self, path):
        self.jails = json.loads(os.environ["STAND_IN_JAILS"])
    def send(self, command):
        with open(os.environ["STAND_IN_LOG"], "a") as log:
            log.write(" ".join(command) + "\\n")
        if command == ["status"]:
            return 0, [("Number of jail", len(self.jails)), ("Jail list", ", ".join(self.jails))]
        jail = self.jails[command[1]]
        if command[0] == "get" and command[2] == "banip":
            return 0, list(jail["bans"])
        if command[0] == "get" and command[2] == "actions":
            return 0, list(jail.get("actions", {}))
        if command[0] == "get" and command[2] == "action":
            parameters = jail["actions"][command[3]]
            if command[4] not in parameters:
                return 1, AttributeError(command[4])
            return 0, parameters[command[4]]
        if command[0] == "set" and command[2] == "unbanip":
            if command[3] not in jail["bans"]:
                return 1, "IP %s is not banned" % command[3]
            jail["bans"].remove(command[3])
            return 0, 1
        return 1, "unknown command"
    def close(self):
        pass
`;

export interface Fail2banStandIn {
    dir: string;
    /** The environment a script runs in: the stand-in first on PATH and PYTHONPATH. */
    env: NodeJS.ProcessEnv;
    /** Each command the script sent fail2ban, words joined by spaces. */
    asked(): string[];
    cleanup(): void;
}

export function fail2banStandIn(jails: Record<string, StandInJail>): Fail2banStandIn {
    const dir = mkdtempSync(join(tmpdir(), "mor-harden-f2b-socket-"));
    mkdirSync(join(dir, "fail2ban", "client"), { recursive: true });
    writeFileSync(join(dir, "fail2ban", "__init__.py"), "");
    writeFileSync(join(dir, "fail2ban", "client", "__init__.py"), "");
    writeFileSync(join(dir, "fail2ban", "client", "csocket.py"), CSOCKET);
    mkdirSync(join(dir, "bin"));
    writeFileSync(join(dir, "bin", "fail2ban-client"), "#!/usr/bin/python3\n");
    chmodSync(join(dir, "bin", "fail2ban-client"), 0o755);
    const log = join(dir, "asked");
    writeFileSync(log, "");
    return {
        dir,
        env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, PYTHONPATH: dir, STAND_IN_JAILS: JSON.stringify(jails), STAND_IN_LOG: log },
        asked: () => readFileSync(log, "utf8").split("\n").filter(Boolean),
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
}
