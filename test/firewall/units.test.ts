// rhel: the firewall's firewalld steps, run as rendered against a stand-in systemctl that keeps
// unit states in files (this machine has no systemd): activation stops and masks firewalld,
// rollback and delete put every unit back as the snapshot found it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { renderFirewall } from "../../src/firewall/render";
import { minimalConfig, renderInputFor } from "../helpers/fixtures";

// <unit>.enabled holds enabled, disabled or masked (absent: the unit is not installed; masked
// anyway, it is only a link to /dev/null), <unit>.active holds active or inactive.
const fakeSystemctl = `#!/bin/sh
cmd=$1; shift
now=; quiet=
while :; do case $1 in --now) now=1; shift ;; --quiet) quiet=1; shift ;; *) break ;; esac; done
echo "$cmd $*" >> "$UNITS/log"
for unit in "$@"; do
    enabled=$UNITS/$unit.enabled; active=$UNITS/$unit.active; installed=$UNITS/$unit.installed
    case $cmd in
        is-enabled) [ -e "$enabled" ] || { echo "Failed to get unit file state for $unit.service" >&2; exit 1; }; state=$(cat "$enabled"); [ -n "$quiet" ] || echo "$state"; [ "$state" = enabled ] ;;
        is-active) state=$(cat "$active" 2>/dev/null || echo inactive); [ -n "$quiet" ] || echo "$state"; [ "$state" = active ] ;;
        enable) [ "$(cat "$enabled" 2>/dev/null)" != masked ] && [ -e "$installed" ] || { echo "Failed to enable unit: $unit" >&2; exit 1; }; echo enabled > "$enabled"; [ -z "$now" ] || echo active > "$active" ;;
        disable) [ -e "$installed" ] || { echo "Unit file $unit.service does not exist" >&2; exit 1; }; [ "$(cat "$enabled")" = masked ] || echo disabled > "$enabled"; [ -z "$now" ] || [ -n "\${STUBBORN:-}" ] || echo inactive > "$active" ;;
        mask) echo masked > "$enabled" ;;
        unmask) if [ -e "$installed" ]; then [ "$(cat "$enabled")" != masked ] || echo disabled > "$enabled"; else rm -f "$enabled"; fi ;;
        start) [ "$(cat "$enabled" 2>/dev/null)" != masked ] && [ -e "$installed" ] || { echo "Failed to start $unit.service" >&2; exit 1; }; echo active > "$active" ;;
        stop) echo inactive > "$active" ;;
        *) echo "fake systemctl: $cmd" >&2; exit 2 ;;
    esac || exit $?
done
`;

type Units = Record<string, { enabled?: string; active?: string }>;

function host(units: Units) {
    const dir = mkdtempSync(join(tmpdir(), "morh-units-"));
    const bin = join(dir, "bin");
    spawnSync("mkdir", [bin]);
    writeFileSync(join(bin, "systemctl"), fakeSystemctl);
    chmodSync(join(bin, "systemctl"), 0o755);
    for (const [unit, state] of Object.entries(units)) {
        if (state.enabled) writeFileSync(join(dir, `${unit}.installed`), "");
        if (state.enabled) writeFileSync(join(dir, `${unit}.enabled`), `${state.enabled}\n`);
        writeFileSync(join(dir, `${unit}.active`), `${state.active ?? "inactive"}\n`);
    }
    const state = join(dir, "state");
    spawnSync("mkdir", [state]);
    const run = (command: string, env: Record<string, string> = { MORH_STATE: state }) => {
        const result = spawnSync("sh", ["-c", command], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, UNITS: dir, ...env } });
        return { code: result.status, output: result.stdout + result.stderr, stdout: result.stdout };
    };
    const states = () =>
        Object.fromEntries(
            ["firewalld", "iptables", "ip6tables"].map((unit) => [
                unit,
                `${existsSync(join(dir, `${unit}.enabled`)) ? readFileSync(join(dir, `${unit}.enabled`), "utf8").trim() : "not-found"} ${existsSync(join(dir, `${unit}.active`)) ? readFileSync(join(dir, `${unit}.active`), "utf8").trim() : "inactive"}`,
            ]),
        );
    return { run, states };
}

async function unitSteps() {
    const plan = renderFirewall(await renderInputFor(minimalConfig({ os: "rhel" })));
    const pick = (commands: string[]) => {
        const found = commands.filter((command) => command.includes("systemctl"));
        assert.equal(found.length, 1);
        return found[0];
    };
    return {
        snapshot: pick(plan.snapshot),
        activate: pick(plan.activate),
        rollback: pick(plan.rollback),
        rollbackCheck: pick(plan.rollbackCheck),
        deactivate: pick(plan.deactivate),
    };
}

describe("firewall on rhel: firewalld and the iptables units", () => {
    it("stops and masks a running firewalld at activation and starts it again on rollback", async () => {
        const steps = await unitSteps();
        const { run, states } = host({
            firewalld: { enabled: "enabled", active: "active" },
            iptables: { enabled: "disabled" },
            ip6tables: { enabled: "disabled" },
        });
        const before = states();
        assert.equal(run(steps.snapshot).code, 0);
        const activated = run(steps.activate);
        assert.equal(activated.code, 0, activated.output);
        assert.deepEqual(states(), { firewalld: "masked inactive", iptables: "enabled inactive", ip6tables: "enabled inactive" });
        assert.equal(run(steps.rollback).code, 0);
        assert.deepEqual(states(), before);
        assert.deepEqual(run(steps.rollbackCheck), { code: 0, output: "", stdout: "" });
        run("systemctl stop firewalld");
        const check = run(steps.rollbackCheck);
        assert.notEqual(check.code, 0);
        assert.match(check.stdout, /^-firewalld enabled active$/m);
        assert.match(check.stdout, /^\+firewalld enabled inactive$/m);
    });

    it("leaves a firewalld that was not installed as it was on delete, and refuses to go on while firewalld runs", async () => {
        const steps = await unitSteps();
        const { run, states } = host({ iptables: { enabled: "enabled", active: "active" }, ip6tables: { enabled: "disabled" } });
        const before = states();
        run(steps.snapshot);
        assert.equal(run(steps.activate).code, 0);
        assert.equal(states().firewalld, "masked inactive");
        assert.equal(run(steps.deactivate).code, 0);
        assert.deepEqual(states(), before);
        // Without the first transaction's snapshot, delete leaves the units alone.
        assert.equal(run(steps.deactivate, {}).code, 0);

        // A firewalld that does not stop stops the activation (the engine then rolls back).
        const stubborn = host({ firewalld: { enabled: "enabled", active: "active" }, iptables: { enabled: "disabled" }, ip6tables: { enabled: "disabled" } });
        stubborn.run(steps.snapshot);
        const refused = stubborn.run(steps.activate, { MORH_STATE: "unused", STUBBORN: "1" });
        assert.notEqual(refused.code, 0);
        assert.match(refused.output, /firewalld is still running/);
        assert.equal(stubborn.states().iptables, "disabled inactive", "iptables is not enabled for boot beside it");
    });
});
