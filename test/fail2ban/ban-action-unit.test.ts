// The ban action's Python unit tests (templates/fail2ban/action.d/test_mor_harden_ipset.py: a
// stand-in jail, ipset and iptables; no root, no fail2ban-server), run with fail2ban's own Python:
// the interpreter of fail2ban-client's first line (the one the server runs the action with), which
// has fail2ban's package (Debian's python3-fail2ban; a python3 earlier on PATH may not).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BAN_ACTION, BAN_ACTION_FILE, BAN_JOURNAL_DIR, banActionFile, banActionLine } from "../../src/fail2ban/ban-action";
import { findTemplatesDir } from "../../src/render/templates";

const ACTION_DIR = join(findTemplatesDir(), "fail2ban", "action.d");

function fail2banInterpreter(): string[] {
    const client = spawnSync("sh", ["-c", "command -v fail2ban-client"], { encoding: "utf8" }).stdout.trim();
    assert.ok(client, "fail2ban-client is not installed (.ci/install-deps installs fail2ban): its Python package runs these tests");
    const shebang = readFileSync(client, "utf8")
        .split("\n", 1)[0]
        .match(/^#!\s*(.+)$/)?.[1];
    // The interpreter line may carry options (#!/usr/bin/python3 -s).
    return shebang ? shebang.trim().split(/\s+/) : ["python3"];
}

describe("mor-harden's ipset action, unit tests (Python)", () => {
    it("passes test_mor_harden_ipset: journal read and write, torn lines, compaction, reconcile, carried-over bans, maxelem", () => {
        const [python, ...options] = fail2banInterpreter();
        // -B: no __pycache__ written into templates/.
        const result = spawnSync(python, [...options, "-B", "-m", "unittest", "-v", "test_mor_harden_ipset"], {
            cwd: ACTION_DIR,
            encoding: "utf8",
            timeout: 60_000,
        });
        assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
        // unittest's summary: a file that found no tests would pass too.
        const ran = Number(result.stderr.match(/^Ran (\d+) tests? /m)?.[1] ?? 0);
        assert.ok(ran >= 20, `only ${ran} tests ran:\n${result.stderr}`);
    });

    it("is installed as it is, and the journal directory the jails' lines leave out is the action's own default", () => {
        const artifact = banActionFile();
        assert.equal(artifact.path, BAN_ACTION_FILE);
        assert.equal(artifact.content, readFileSync(join(ACTION_DIR, `${BAN_ACTION}.py`), "utf8"));
        const [python, ...options] = fail2banInterpreter();
        const source =
            "import importlib.util as u, sys; s = u.spec_from_file_location('a', sys.argv[1]); m = u.module_from_spec(s); s.loader.exec_module(m); print(m.JOURNAL_DIR)";
        const printed = spawnSync(python, [...options, "-B", "-c", source, join(ACTION_DIR, `${BAN_ACTION}.py`)], { encoding: "utf8", timeout: 30_000 });
        assert.equal(printed.status, 0, printed.stderr);
        assert.equal(printed.stdout.trim(), BAN_JOURNAL_DIR);
        assert.equal(banActionLine("t", -1), `${BAN_ACTION}.py[settimeout=0, set=morh-ban-t, otherset=morh-ban-t-t]`);
        assert.equal(banActionLine("t", 600, "/tmp/j"), `${BAN_ACTION}.py[settimeout=600, set=morh-ban-t-t, otherset=morh-ban-t, journaldir=/tmp/j]`);
    });
});
