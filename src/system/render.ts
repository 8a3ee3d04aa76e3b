// The operating system under MOR (dev-sec's os_hardening role is the model; Lynis the judge):
// sysctl drop-ins applied and read back, automatic security updates configured (never run by
// an apply), core dumps off, login.defs, the legal banner, USB storage off.
import { file, type Artifact, type ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";
import { renderTemplate } from "../render/templates";
import { systemHasParts, type SystemConfig } from "./schema";

export const NETWORK_DROP_IN = "/etc/sysctl.d/90-mor-harden-network.conf";
export const KERNEL_DROP_IN = "/etc/sysctl.d/90-mor-harden-kernel.conf";

export const MODPROBE_FILE = "/etc/modprobe.d/mor-harden.conf";
const STORAGE_DRIVERS = ["usb-storage", "firewire-core", "firewire-ohci"];
const UNCOMMON_PROTOCOLS = ["dccp", "rds", "tipc"];

export interface SysctlSetting {
    key: string;
    value: string;
    why: string;
}

const RP_FILTER = { strict: "1", loose: "2", off: "0" } as const;

/**
 * Keys of a network namespace (each namespace has its own; Linux's net/ipv4/sysctl_net_ipv4.c
 * and devinet.c register them per namespace): every net.ipv4.* and net.ipv6.* key but these,
 * which are global (ipv4_table in sysctl_net_ipv4.c).
 */
const GLOBAL_NET_KEYS = new Set(["net.ipv4.tcp_mem", "net.ipv4.udp_mem", "net.ipv4.tcp_max_orphans", "net.ipv4.inet_peer_threshold"]);
export function isNamespaceKey(key: string): boolean {
    return /^net\.ipv[46]\./.test(key) && !GLOBAL_NET_KEYS.has(key);
}

/** mor-harden's sysctls with why, then the operator's settings (changed, added, or left). */
export function sysctlSettings(system: SystemConfig): SysctlSetting[] {
    const s = (key: string, value: string | number, why: string): SysctlSetting => ({ key, value: String(value), why });
    const both = (prefix: string, name: string, value: number, why: string) => [
        s(`${prefix}.all.${name}`, value, why),
        s(`${prefix}.default.${name}`, value, why),
    ];
    const rp = RP_FILTER[system.sysctl.reversePathFilter];
    const ours: SysctlSetting[] = [
        ...both("net.ipv4.conf", "accept_source_route", 0, "no source-routed packets: the sender would choose the path back"),
        ...both("net.ipv6.conf", "accept_source_route", 0, "no source-routed packets (IPv6)"),
        ...both("net.ipv4.conf", "accept_redirects", 0, "ICMP redirects could reroute SIP and RTP through an attacker"),
        ...both("net.ipv4.conf", "secure_redirects", 0, "not even from the listed gateways"),
        ...both("net.ipv6.conf", "accept_redirects", 0, "ICMPv6 redirects likewise"),
        ...both("net.ipv4.conf", "send_redirects", 0, "a server is not a router"),
        ...both("net.ipv4.conf", "log_martians", 1, "packets with impossible source addresses are logged"),
        ...both(
            "net.ipv4.conf",
            "rp_filter",
            Number(rp),
            `reverse-path filtering ${system.sysctl.reversePathFilter}: loose by default, strict drops the asymmetric replies of multi-homed VoIP hosts (RFC 3704 2.4)`,
        ),
        s("net.ipv4.tcp_syncookies", 1, "SYN floods do not fill the backlog of the GUI and SIP over TCP"),
        s("net.ipv4.icmp_echo_ignore_broadcasts", 1, "no smurf amplification"),
        s("net.ipv4.icmp_ignore_bogus_error_responses", 1, "bogus ICMP errors are not logged"),
        s("kernel.kptr_restrict", 2, "kernel addresses are hidden from everyone"),
        s("kernel.dmesg_restrict", 1, "only root reads the kernel log"),
        s("kernel.randomize_va_space", 2, "full address-space randomisation"),
        s("kernel.unprivileged_bpf_disabled", 1, "no BPF programs from unprivileged users"),
        s("kernel.core_uses_pid", 1, "a core file (when enabled) never overwrites another"),
        s("net.core.bpf_jit_harden", 2, "BPF's JIT hardened for every user"),
        s("dev.tty.ldisc_autoload", 0, "no line disciplines loaded on demand (CVE-2017-2636's route)"),
        s("fs.protected_hardlinks", 1, "no hard links to files a user cannot read"),
        s("fs.protected_symlinks", 1, "no symlink races in sticky directories"),
        s("fs.protected_fifos", 2, "no FIFO races in sticky directories"),
        s("fs.protected_regular", 2, "no regular-file races in sticky directories"),
        ...(system.coreDumps === "off" ? [s("fs.suid_dumpable", 0, "set-uid programs never dump core")] : []),
    ];
    const settings = system.sysctl.settings;
    const kept = ours
        .filter((setting) => !(setting.key in settings))
        .concat(
            Object.entries(settings)
                .filter(([, value]) => value !== "leave")
                .map(([key, value]) =>
                    s(key, value, ours.some((setting) => setting.key === key) ? "changed in system.sysctl.settings" : "added in system.sysctl.settings"),
                ),
        );
    return kept;
}

/** rhel's automatic updates: dnf-automatic's timer, which the apply enables and starts. */
const DNF_TIMER = "dnf-automatic.timer";

function automaticUpdates(input: RenderInput): {
    packages: string[];
    artifacts: Artifact[];
    validate: string[];
    activate: string[];
    verify: string[];
    deactivate: string[];
    snapshot: string[];
    rollback: string[];
    rollbackCheck: string[];
} {
    const { system, os } = input.config;
    const stack = input.stack;
    if (os === "debian") {
        return {
            packages: ["unattended-upgrades"],
            artifacts: [
                file("/etc/apt/apt.conf.d/20auto-upgrades", renderTemplate("system/20auto-upgrades.hbs", { stack })),
                file(
                    "/etc/apt/apt.conf.d/52mor-harden-unattended-upgrades",
                    renderTemplate("system/unattended-upgrades.hbs", { stack, reboot: String(system.automaticUpdates.reboot) }),
                ),
            ],
            // apt-config parses every file (a syntax error fails it); only Debian-Security's origins remain.
            validate: [
                "apt-config dump >/dev/null",
                `[ "$(apt-config dump Unattended-Upgrade::Origins-Pattern | grep -c '::Origins-Pattern:: ')" = 2 ] && ! apt-config dump Unattended-Upgrade::Origins-Pattern | grep '::Origins-Pattern:: ' | grep -qv 'label=Debian-Security' || { echo "unattended-upgrades would install more than security updates:"; apt-config dump Unattended-Upgrade::Origins-Pattern; exit 1; }`,
            ],
            activate: [],
            verify: [
                `apt-config dump APT::Periodic::Unattended-Upgrade | grep -qx 'APT::Periodic::Unattended-Upgrade "1";' || { echo "APT::Periodic::Unattended-Upgrade is not 1"; exit 1; }`,
            ],
            deactivate: [],
            snapshot: [],
            rollback: [],
            rollbackCheck: [],
        };
    }
    // The timer is a unit's state, not a file: the snapshot records it, so a rollback turns it off
    // again on a host where the apply turned it on (the files alone would leave it running).
    const timer = { unit: DNF_TIMER };
    return {
        packages: ["dnf-automatic"],
        artifacts: [
            file(
                "/etc/dnf/automatic.conf",
                renderTemplate("system/dnf-automatic.conf.hbs", { stack, reboot: system.automaticUpdates.reboot ? "when-needed" : "never" }),
            ),
        ],
        validate: [],
        activate: [`systemctl enable --now ${DNF_TIMER} >/dev/null 2>&1`],
        verify: [`systemctl is-enabled --quiet ${DNF_TIMER} || { echo "${DNF_TIMER} is not enabled"; exit 1; }`],
        // As the first snapshot found it (the delete's state is that one).
        deactivate: [renderTemplate("system/timer-restore.sh.hbs", { ...timer, withoutSnapshot: "off, as before" }).trim()],
        snapshot: [renderTemplate("system/timer-snapshot.sh.hbs", timer).trim()],
        rollback: [renderTemplate("system/timer-restore.sh.hbs", timer).trim()],
        rollbackCheck: [renderTemplate("system/timer-restored.sh.hbs", timer).trim()],
    };
}

const listOf = (settings: SysctlSetting[]) => settings.map((setting) => `${setting.key} = ${setting.value}`).join("\n") + "\n";

export function renderSystem(input: RenderInput): ConcernPlan | undefined {
    const { system, os } = input.config;
    if (!systemHasParts(system)) return undefined;
    const stack = input.stack;
    const artifacts: Artifact[] = [];
    const summary: string[] = [];
    const packages: string[] = [];
    const validate: string[] = [];
    const activate: string[] = [];
    const verify: string[] = [];
    const deactivate: string[] = [];
    const liveViews: ConcernPlan["liveViews"] = [];
    const snapshot: string[] = [];
    const rollback: string[] = [];
    const rollbackCheck: string[] = [];

    if (system.sysctl.enabled) {
        const all = sysctlSettings(system);
        const network = all.filter((setting) => isNamespaceKey(setting.key));
        const kernel = all.filter((setting) => !isNamespaceKey(setting.key));
        const applyKernel = system.sysctl.kernelWide === "apply";
        const written = applyKernel ? all : network;
        const dropIn = (path: string, settings: SysctlSetting[], what: string) => {
            if (settings.length > 0) artifacts.push(file(path, renderTemplate("system/sysctl.conf.hbs", { stack, what, settings })));
        };
        dropIn(NETWORK_DROP_IN, network, "Keys of the network namespace: applied at once, read back by drift.");
        dropIn(
            KERNEL_DROP_IN,
            kernel,
            applyKernel
                ? "Kernel-wide keys: applied at once, read back by drift."
                : "Kernel-wide keys, render-only (system.sysctl.kernelWide): this host shares its kernel, so they are checked but not applied until a boot reads this file.",
        );
        const values = (settings: SysctlSetting[]) => renderTemplate("system/sysctl-values.sh.hbs", { keys: settings.map((setting) => setting.key) }).trim();
        summary.push(
            `sysctl: ${network.length} network keys applied, ${kernel.length} kernel-wide keys ${applyKernel ? "applied" : "rendered only"}; rp_filter ${system.sysctl.reversePathFilter}`,
        );
        // Global net.* keys (net.core.bpf_jit_harden) exist in the initial network namespace only:
        // a host that shares its kernel (render-only) is in another one and cannot see them.
        const checked = applyKernel ? all : all.filter((setting) => isNamespaceKey(setting.key) || !setting.key.startsWith("net."));
        validate.push(renderTemplate("system/sysctl-check.sh.hbs", { keys: checked.map((setting) => setting.key) }).trim());
        snapshot.push(`{ ${values(written)}; } > "$MORH_STATE/sysctl"`);
        activate.push(
            ...[network.length > 0 ? NETWORK_DROP_IN : [], applyKernel && kernel.length > 0 ? KERNEL_DROP_IN : []].flat().map((path) => `sysctl -q -p ${path}`),
        );
        verify.push(
            `live=$(${values(written)}); [ "$live" = '${listOf(written).trimEnd()}' ] || { echo "sysctl values after the apply:"; echo "$live"; exit 1; }`,
        );
        rollback.push(renderTemplate("system/sysctl-restore.sh.hbs", {}).trim());
        rollbackCheck.push(renderTemplate("system/sysctl-restored.sh.hbs", { values: values(written) }).trim());
        deactivate.push(renderTemplate("system/sysctl-restore.sh.hbs", {}).trim());
        liveViews.push({ name: "sysctl values", live: values(written), expected: { text: listOf(written) } });
    }
    if (system.automaticUpdates.enabled) {
        const updates = automaticUpdates(input);
        packages.push(...updates.packages);
        artifacts.push(...updates.artifacts);
        validate.push(...updates.validate);
        activate.push(...updates.activate);
        verify.push(...updates.verify);
        deactivate.push(...updates.deactivate);
        snapshot.push(...updates.snapshot);
        rollback.push(...updates.rollback);
        rollbackCheck.push(...updates.rollbackCheck);
        summary.push(`automatic security updates by ${updates.packages[0]}${system.automaticUpdates.reboot ? ", rebooting when needed" : ", never rebooting"}`);
    }
    if (system.coreDumps === "off") {
        artifacts.push(
            file("/etc/security/limits.d/90-mor-harden-core.conf", renderTemplate("system/core-limits.conf.hbs", { stack })),
            file("/etc/systemd/coredump.conf.d/90-mor-harden.conf", renderTemplate("system/coredump.conf.hbs", { stack })),
        );
        summary.push("core dumps off (limits.d, systemd-coredump, fs.suid_dumpable)");
    }
    if (system.loginDefs.enabled && os === "debian") {
        const defs = system.loginDefs;
        artifacts.push(
            file(
                "/etc/login.defs",
                renderTemplate("system/login.defs.hbs", {
                    stack,
                    umask: defs.umask,
                    passMaxDays: defs.passMaxDays,
                    passMinDays: defs.passMinDays,
                    passWarnAge: defs.passWarnAge,
                    rounds: defs.shaCryptRounds,
                }),
            ),
        );
        // shadow's tools print "configuration error - unknown item" for a key they do not know.
        validate.push(`out=$(useradd -D 2>&1 >/dev/null); [ -z "$out" ] || { echo "login.defs: $out"; exit 1; }`);
        summary.push(`login.defs: umask ${defs.umask}, passwords of new accounts expire after ${defs.passMaxDays} days`);
    } else if (system.loginDefs.enabled) {
        summary.push("login.defs left as it is (only Debian's is written)");
    }
    if (system.banner.enabled) {
        const text = system.banner.text.endsWith("\n") ? system.banner.text : `${system.banner.text}\n`;
        const banner = renderTemplate("system/issue.hbs", { text });
        artifacts.push(file("/etc/issue", banner), file("/etc/issue.net", banner));
        summary.push(`legal banner in /etc/issue and /etc/issue.net${system.banner.ssh ? ", shown before SSH logins" : ""}`);
    }
    const modules = [...(system.storageDrivers === "off" ? STORAGE_DRIVERS : []), ...(system.uncommonProtocols === "off" ? UNCOMMON_PROTOCOLS : [])];
    if (modules.length > 0) {
        artifacts.push(file(MODPROBE_FILE, renderTemplate("system/modprobe.conf.hbs", { stack, modules })));
        summary.push(`never loaded: ${modules.join(", ")}`);
    }
    return {
        concern: "system",
        summary,
        packages,
        artifacts,
        prepare: [],
        validate,
        activate,
        verify,
        snapshot,
        rollback,
        rollbackCheck,
        deactivate,
        liveViews,
        needsConfirm: false,
    };
}
