// The operating system under MOR: kernel and network sysctls, automatic security updates, core
// dumps, login.defs, the legal banner and USB storage. What dev-sec's os_hardening role does and
// Lynis suggests on a plain Debian host; every part has a default and can be turned off.
import { z } from "zod";
import { token } from "../config/values";

/** A sysctl key as `sysctl` names it: lower-case words, dots between (no slashes, no spaces). */
export const sysctlKey = token('a sysctl key like "net.ipv4.tcp_syncookies"', (v) => /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$/.test(v));
/** A sysctl value: a number or a short word (several numbers separated by spaces are refused: none of ours needs them). */
const sysctlValue = z
    .union([z.number().int(), z.string()], { error: (iss) => `${JSON.stringify(iss.input)} is not a sysctl value` })
    .transform((value) => String(value))
    .refine((value) => /^-?[A-Za-z0-9_]{1,32}$/.test(value), { error: (iss) => `${JSON.stringify(iss.input)} is not a sysctl value (a number or one word)` });

const sysctlSchema = z
    .object({
        enabled: z.boolean().default(true),
        /**
         * apply: kernel-wide keys (kernel.*, fs.*, net.core.bpf_jit_harden, dev.*) are written and
         * applied like the rest. render-only: they are rendered into their drop-in and their keys
         * checked on the host, but never applied now (they apply at the next boot). For hosts
         * that share a kernel: a container, or the lab's namespaces on the test machine.
         */
        kernelWide: z.enum(["apply", "render-only"], { error: (iss) => `${JSON.stringify(iss.input)} is not apply or render-only` }).default("apply"),
        /**
         * Reverse-path filtering (rp_filter): loose (2) by default. A VoIP host is often
         * multi-homed (a SIP trunk on one interface, customers on another, asymmetric routes):
         * strict (1) drops replies that arrive on the interface the route back does not use,
         * and calls fail one way. RFC 3704 section 2.4 describes loose mode for exactly this.
         */
        reversePathFilter: z.enum(["strict", "loose", "off"], { error: (iss) => `${JSON.stringify(iss.input)} is not strict, loose or off` }).default("loose"),
        /** Keys added or changed (`key: value`); a value of "leave" removes one of mor-harden's keys. */
        settings: z.record(sysctlKey, z.union([z.literal("leave"), sysctlValue])).default({}),
    })
    .strict();

const automaticUpdatesSchema = z
    .object({
        /** Security updates only: unattended-upgrades (Debian) or dnf-automatic (rhel). An apply itself never upgrades. */
        enabled: z.boolean().default(true),
        /** Reboot by itself when an update needs it (unattended-upgrades' Automatic-Reboot); off: a VoIP switch reboots when its operator says. */
        reboot: z.boolean().default(false),
    })
    .strict();

const offOrLeave = z.enum(["off", "leave"], { error: (iss) => `${JSON.stringify(iss.input)} is not off or leave` });

const umask = token('a umask like "027"', (v) => /^0?[0-7]{3}$/.test(v));

const loginDefsSchema = z
    .object({
        /** Debian only: mor-harden writes the whole of /etc/login.defs (Debian 12's keys with these changed). */
        enabled: z.boolean().default(true),
        /** New files are not world-readable (Lynis AUTH-9328). */
        umask: umask.default("027"),
        /** Password ageing for accounts created from now on (useradd reads these); existing accounts keep theirs (chage). */
        passMaxDays: z.number().int().min(1).max(99999).default(365),
        passMinDays: z.number().int().min(0).max(99999).default(1),
        passWarnAge: z.number().int().min(0).max(99999).default(14),
        /** SHA-512 rounds for passwords set with chpasswd or newusers (Lynis AUTH-9230). */
        shaCryptRounds: z.number().int().min(5000).max(999999999).default(65536),
    })
    .strict();

/** The banner's text: printable lines only (it goes into files verbatim; \ and escapes would be agetty's). */
const bannerText = z
    .string({ error: (iss) => `${JSON.stringify(iss.input)} is not text` })
    .refine((v) => v.length > 0 && v.length <= 2000 && /^[ -[\]-~\n]+$/.test(v), {
        error: "must be 1-2000 printable ASCII characters and newlines, without \\ (agetty reads \\ as an escape in /etc/issue)",
    });

export const DEFAULT_BANNER =
    "Authorized access only. This system is monitored and all activity is logged.\n" + "Unauthorized access is prohibited and may be prosecuted.\n";

const bannerSchema = z
    .object({
        /** /etc/issue and /etc/issue.net (what Lynis BANN-7126/7130 read). */
        enabled: z.boolean().default(true),
        text: bannerText.default(DEFAULT_BANNER),
        /** Also show it before SSH logins (sshd Banner /etc/issue.net). Off: scripts that parse SSH output see nothing new. */
        ssh: z.boolean().default(false),
    })
    .strict();

export const systemSchema = z
    .object({
        enabled: z.boolean().default(true),
        sysctl: sysctlSchema.default(sysctlSchema.parse({})),
        automaticUpdates: automaticUpdatesSchema.default(automaticUpdatesSchema.parse({})),
        /** Core dumps off: limits.d hard core 0, systemd-coredump Storage=none, fs.suid_dumpable 0 (a dump of Asterisk holds SIP secrets). */
        coreDumps: offOrLeave.default("off"),
        loginDefs: loginDefsSchema.default(loginDefsSchema.parse({})),
        banner: bannerSchema.default(bannerSchema.parse({})),
        /** USB and FireWire storage drivers never loaded: a rack server has no business with sticks and disks carried in (Lynis USB-3000, STRG-1846). */
        storageDrivers: offOrLeave.default("off"),
        /**
         * Network protocols nothing on a MOR host speaks, with a record of kernel holes (DCCP
         * CVE-2017-6074, RDS CVE-2010-3904, TIPC CVE-2021-43267), never loaded. SCTP stays: SIP
         * over SCTP (RFC 4168) and SIGTRAN use it.
         */
        uncommonProtocols: offOrLeave.default("off"),
    })
    .strict();

export type SystemConfig = z.infer<typeof systemSchema>;

/** Whether any part is on: a system concern with every part off renders nothing. */
export function systemHasParts(system: SystemConfig): boolean {
    return (
        system.enabled &&
        (system.sysctl.enabled ||
            system.automaticUpdates.enabled ||
            system.coreDumps === "off" ||
            system.loginDefs.enabled ||
            system.banner.enabled ||
            system.storageDrivers === "off" ||
            system.uncommonProtocols === "off")
    );
}
