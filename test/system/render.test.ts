// The system concern's renderer and schema, without a host: which sysctls go where, what an
// apply may write in a shared kernel, the parts each setting turns off, and bad input named by key.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError } from "../../src/config/schema";
import { concernsOf } from "../../src/compose/host";
import { isNamespaceKey, KERNEL_DROP_IN, MODPROBE_FILE, NETWORK_DROP_IN, renderSystem, sysctlSettings } from "../../src/system/render";
import { renderSshd } from "../../src/sshd/render";
import { minimalConfig, renderInputFor } from "../helpers/fixtures";

const system = (overrides: Record<string, unknown> = {}, rest: Record<string, unknown> = {}) => minimalConfig({ system: overrides, ...rest });
const planOf = async (config = system()) => renderSystem(await renderInputFor(config))!;
const contentOf = (plan: Awaited<ReturnType<typeof planOf>>, path: string) => plan.artifacts.find((artifact) => artifact.path === path)?.content;

describe("system renderer", () => {
    it("puts the network namespace's keys and the kernel-wide ones in two drop-ins", async () => {
        const plan = await planOf();
        const network = contentOf(plan, NETWORK_DROP_IN)!;
        const kernel = contentOf(plan, KERNEL_DROP_IN)!;
        for (const line of [
            "net.ipv4.tcp_syncookies = 1",
            "net.ipv4.conf.all.accept_source_route = 0",
            "net.ipv4.conf.all.log_martians = 1",
            "net.ipv6.conf.all.accept_redirects = 0",
        ])
            assert.match(network, new RegExp(`^${line.replace(/\./g, "\\.")}$`, "m"));
        for (const line of ["fs.suid_dumpable = 0", "kernel.kptr_restrict = 2", "net.core.bpf_jit_harden = 2"]) assert.ok(kernel.includes(`\n${line}\n`), line);
        assert.ok(!/^(kernel|fs|net\.core)\./m.test(network), "no kernel-wide key among the namespace's");
        assert.deepEqual(plan.activate.slice(0, 2), [`sysctl -q -p ${NETWORK_DROP_IN}`, `sysctl -q -p ${KERNEL_DROP_IN}`]);
        assert.equal(plan.needsConfirm, false);
    });

    it("classifies keys by namespace as Linux registers them", () => {
        assert.ok(isNamespaceKey("net.ipv4.conf.all.rp_filter"));
        assert.ok(isNamespaceKey("net.ipv4.tcp_syncookies"));
        assert.ok(isNamespaceKey("net.ipv6.conf.default.accept_redirects"));
        assert.ok(!isNamespaceKey("net.core.bpf_jit_harden"));
        assert.ok(!isNamespaceKey("net.ipv4.tcp_mem"));
        assert.ok(!isNamespaceKey("kernel.dmesg_restrict"));
        assert.ok(!isNamespaceKey("fs.suid_dumpable"));
    });

    it("render-only writes the kernel-wide drop-in but never applies or reads back its keys", async () => {
        const plan = await planOf(system({ sysctl: { kernelWide: "render-only" } }));
        assert.match(contentOf(plan, KERNEL_DROP_IN)!, /render-only/);
        assert.deepEqual(plan.activate, [`sysctl -q -p ${NETWORK_DROP_IN}`, ...plan.activate.slice(1).filter((command) => !command.includes(KERNEL_DROP_IN))]);
        assert.ok(!plan.activate.some((command) => command.includes(KERNEL_DROP_IN)));
        const view = plan.liveViews.find((v) => v.name === "sysctl values")!;
        assert.ok(!view.live.includes("kernel."), "drift reads only what the apply wrote");
        assert.ok(!("text" in view.expected && view.expected.text.includes("kernel.")));
        assert.ok(plan.snapshot[0].includes("net.ipv4.tcp_syncookies") && !plan.snapshot[0].includes("kernel."));
        // The kernel-wide keys are still checked (they exist on the kernel).
        assert.ok(plan.validate[0].includes("kernel.kptr_restrict"));
    });

    it("reverse-path filtering is loose by default, strict or off when set", async () => {
        const rp = async (mode?: string) =>
            sysctlSettings((mode ? system({ sysctl: { reversePathFilter: mode } }) : system()).system).find((s) => s.key === "net.ipv4.conf.all.rp_filter")
                ?.value;
        assert.equal(await rp(), "2");
        assert.equal(await rp("strict"), "1");
        assert.equal(await rp("off"), "0");
    });

    it("settings add and change keys, and leave drops one of mor-harden's", async () => {
        const settings = sysctlSettings(
            system({ sysctl: { settings: { "kernel.sysrq": 0, "net.ipv4.tcp_syncookies": "leave", "kernel.kptr_restrict": 1 } } }).system,
        );
        const value = (key: string) => settings.find((s) => s.key === key)?.value;
        assert.equal(value("kernel.sysrq"), "0");
        assert.equal(value("net.ipv4.tcp_syncookies"), undefined);
        assert.equal(value("kernel.kptr_restrict"), "1");
    });

    it("configures security updates only and never runs an upgrade", async () => {
        const plan = await planOf();
        assert.deepEqual(plan.packages, ["unattended-upgrades"]);
        assert.match(contentOf(plan, "/etc/apt/apt.conf.d/20auto-upgrades")!, /^APT::Periodic::Unattended-Upgrade "1";$/m);
        const origins = contentOf(plan, "/etc/apt/apt.conf.d/52mor-harden-unattended-upgrades")!;
        assert.match(origins, /^#clear Unattended-Upgrade::Origins-Pattern;$/m);
        assert.match(origins, /^Unattended-Upgrade::Automatic-Reboot "false";$/m);
        const commands = [...plan.prepare, ...plan.validate, ...plan.activate, ...plan.verify].join("\n");
        assert.ok(!/unattended-upgrade\b(?!s)|apt-get (upgrade|dist-upgrade)|dnf (upgrade|update)/.test(commands), commands);
    });

    it("apt reads the unattended-upgrades drop-in as Debian-Security's origins only", async (t) => {
        const plan = await planOf();
        let dump: string;
        try {
            dump = execFileSync("sh", ["-c", 'f=$(mktemp); cat > "$f"; apt-config -c "$f" dump Unattended-Upgrade::Origins-Pattern; rm -f "$f"'], {
                input: contentOf(plan, "/etc/apt/apt.conf.d/52mor-harden-unattended-upgrades")!,
                encoding: "utf8",
            });
        } catch {
            t.skip("apt-config is not installed");
            return;
        }
        const origins = dump.split("\n").filter((line) => line.includes("::Origins-Pattern:: "));
        assert.equal(origins.length, 2, dump);
        assert.ok(
            origins.every((line) => line.includes("label=Debian-Security")),
            dump,
        );
    });

    it("rhel: dnf-automatic with security updates applied, its timer enabled", async () => {
        const plan = await planOf(system({}, { os: "rhel" }));
        assert.deepEqual(plan.packages, ["dnf-automatic"]);
        const conf = contentOf(plan, "/etc/dnf/automatic.conf")!;
        assert.match(conf, /^upgrade_type = security$/m);
        assert.match(conf, /^apply_updates = yes$/m);
        assert.match(conf, /^reboot = never$/m);
        assert.ok(plan.activate.includes("systemctl enable --now dnf-automatic.timer >/dev/null 2>&1"));
        assert.equal(contentOf(plan, "/etc/login.defs"), undefined, "rhel's login.defs is left");
    });

    it("rhel: a rollback or a delete puts dnf-automatic's timer back as the apply found it (a stand-in systemctl)", async () => {
        const plan = await planOf(system({ sysctl: { enabled: false } }, { os: "rhel" }));
        const dir = mkdtempSync(join(tmpdir(), "morh-timer-"));
        try {
            // systemctl as far as these steps use it: is-enabled, is-active, enable/disable [--now], stop.
            mkdirSync(join(dir, "bin"));
            writeFileSync(
                join(dir, "bin", "systemctl"),
                [
                    "#!/bin/sh",
                    'verb=$1; shift; now=""; for a in "$@"; do case "$a" in --now) now=1 ;; --quiet) ;; *) unit=$a ;; esac; done',
                    '[ "$unit" = dnf-automatic.timer ] || { echo "unexpected unit $unit" >&2; exit 2; }',
                    'case "$verb" in',
                    '  is-enabled) [ -e "$UNITS/enabled" ] ;;',
                    '  is-active) [ -e "$UNITS/active" ] ;;',
                    '  enable) touch "$UNITS/enabled"; [ -z "$now" ] || touch "$UNITS/active" ;;',
                    '  disable) rm -f "$UNITS/enabled"; [ -z "$now" ] || rm -f "$UNITS/active" ;;',
                    '  stop) rm -f "$UNITS/active" ;;',
                    "  *) exit 2 ;;",
                    "esac",
                ].join("\n") + "\n",
                { mode: 0o755 },
            );
            const run = (steps: string[], state: string) =>
                spawnSync("sh", ["-c", steps.map((step) => `( ${step} ) || exit 1`).join("\n")], {
                    env: { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}`, UNITS: join(dir, "units"), MORH_STATE: join(dir, state) },
                    encoding: "utf8",
                });
            const unitState = () => ["enabled", "active"].filter((name) => existsSync(join(dir, "units", name))).join(" ");
            for (const before of ["", "enabled active", "enabled"]) {
                rmSync(join(dir, "units"), { recursive: true, force: true });
                mkdirSync(join(dir, "units"));
                for (const name of before.split(" ").filter(Boolean)) writeFileSync(join(dir, "units", name), "");
                rmSync(join(dir, "state"), { recursive: true, force: true });
                mkdirSync(join(dir, "state"));
                assert.equal(run([...plan.snapshot, ...plan.activate, ...plan.verify], "state").status, 0);
                assert.equal(unitState(), "enabled active", "the apply enables and starts the timer");
                assert.equal(run(plan.rollback, "state").status, 0);
                assert.equal(unitState(), before, `rolled back to "${before}"`);
                assert.equal(run(plan.rollbackCheck, "state").status, 0, "the check passes once it is back");
                writeFileSync(join(dir, "units", "active"), "");
                const mismatch = run(plan.rollbackCheck, "state");
                if (before !== "enabled active") assert.notEqual(mismatch.status, 0, "the check fails while the timer is not as it was");
                // The delete, with the first snapshot as its state, after a later apply.
                run(plan.activate, "state");
                assert.equal(run(plan.deactivate, "state").status, 0);
                assert.equal(unitState(), before, `deleted back to "${before}"`);
            }
            // A delete on a host applied before the snapshot existed: the timer goes off, as before.
            run(plan.activate, "none");
            assert.equal(run(plan.deactivate, "none").status, 0);
            assert.equal(unitState(), "");
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("core dumps off in limits.d and systemd-coredump", async () => {
        const plan = await planOf();
        assert.match(contentOf(plan, "/etc/security/limits.d/90-mor-harden-core.conf")!, /^\*\s+hard\s+core\s+0$/m);
        assert.match(contentOf(plan, "/etc/systemd/coredump.conf.d/90-mor-harden.conf")!, /^Storage=none$/m);
        const leave = await planOf(system({ coreDumps: "leave" }));
        assert.equal(contentOf(leave, "/etc/security/limits.d/90-mor-harden-core.conf"), undefined);
        assert.ok(!contentOf(leave, KERNEL_DROP_IN)!.includes("fs.suid_dumpable"));
    });

    it("login.defs is Debian's whole file with umask, ageing and rounds changed", async () => {
        const defs = contentOf(await planOf(system({ loginDefs: { umask: "077", passMaxDays: 90 } })), "/etc/login.defs")!;
        assert.match(defs, /^UMASK\s+077$/m);
        assert.match(defs, /^PASS_MAX_DAYS\s+90$/m);
        assert.match(defs, /^SHA_CRYPT_MIN_ROUNDS 65536$/m);
        assert.match(defs, /^ENV_SUPATH\s+PATH=\/usr\/local\/sbin/m, "the stock keys stay");
    });

    it("the banner goes to /etc/issue and /etc/issue.net, and before SSH logins only when asked", async () => {
        const plan = await planOf(system({ banner: { text: "Private system." } }));
        assert.equal(contentOf(plan, "/etc/issue"), "Private system.\n");
        assert.equal(contentOf(plan, "/etc/issue.net"), "Private system.\n");
        const banner = async (config: ReturnType<typeof system>) =>
            renderSshd(await renderInputFor(config)).artifacts[0].content.includes("Banner /etc/issue.net");
        assert.equal(await banner(system()), false);
        assert.equal(await banner(system({ banner: { ssh: true } })), true);
    });

    it("modules a MOR host never needs are never loaded, SCTP kept", async () => {
        const modprobe = contentOf(await planOf(), MODPROBE_FILE)!;
        for (const module of ["usb-storage", "firewire-core", "dccp", "rds", "tipc"]) {
            assert.match(modprobe, new RegExp(`^install ${module} /bin/true$`, "m"));
            assert.match(modprobe, new RegExp(`^blacklist ${module}$`, "m"));
        }
        assert.ok(!modprobe.includes("sctp"));
        const protocolsOnly = contentOf(await planOf(system({ storageDrivers: "leave" })), MODPROBE_FILE)!;
        assert.ok(!protocolsOnly.includes("usb-storage") && protocolsOnly.includes("install dccp /bin/true"));
    });

    it("every part can be off, and all off is no concern at all", async () => {
        const off = system({
            sysctl: { enabled: false },
            automaticUpdates: { enabled: false },
            coreDumps: "leave",
            loginDefs: { enabled: false },
            banner: { enabled: false },
            storageDrivers: "leave",
            uncommonProtocols: "leave",
        });
        assert.equal(renderSystem(await renderInputFor(off)), undefined);
        assert.ok(!concernsOf(off).includes("system"));
        assert.ok(!concernsOf(system({ enabled: false })).includes("system"));
        assert.ok(concernsOf(system()).includes("system"));
    });

    it("names the key and the problem for bad input", () => {
        const problems = (overrides: Record<string, unknown>) => {
            try {
                system(overrides);
            } catch (error) {
                return (error as ConfigError).problems.join("\n");
            }
            return "";
        };
        assert.match(problems({ sysctl: { kernelWide: "yes" } }), /^system\.sysctl\.kernelWide: "yes" is not apply or render-only$/m);
        assert.match(problems({ sysctl: { settings: { "Kernel/Sysrq": 0 } } }), /system\.sysctl\.settings/);
        assert.match(problems({ sysctl: { settings: { "kernel.sysrq": "0; reboot" } } }), /system\.sysctl\.settings\.kernel\.sysrq: .*not a sysctl value/);
        assert.match(problems({ loginDefs: { umask: "0777x" } }), /^system\.loginDefs\.umask: "0777x" is not a umask like "027"$/m);
        assert.match(problems({ banner: { text: "a \\l b" } }), /^system\.banner\.text: must be 1-2000 printable ASCII/m);
        assert.match(problems({ reboot: true }), /^system\.reboot: is not a known key$/m);
    });
});
