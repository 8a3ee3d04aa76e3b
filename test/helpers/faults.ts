// Faults a lab host can be put through: a simulated reboot, a full file system over a path, a
// slow tool, a slow and lossy link, concurrent applies. Each undoes itself or dies with the host.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { execArgv, type LabHost } from "../../src/lab/lab";
import { LAB_SERVICES } from "../../src/lab/host-files";
import { BOOT_SCRIPT } from "../../src/apply/scripts";
import { sh, singleHostReport, type CliRun, type TestLab } from "./lab";
import { CLI_FILE as CLI } from "../../src/cli/bin";

/** A running `mor-harden` from the workstation: its result, and a way to kill it (its whole process group). */
export interface BackgroundRun {
    done: Promise<CliRun>;
    kill(): void;
}

/** `mor-harden <args>` from the workstation without waiting (bounded by `timeoutMs`). */
export function cliInBackground(lab: TestLab, args: string[], timeoutMs = 240_000): BackgroundRun {
    const [command, ...rest] = execArgv(lab.client("workstation"), ["node", CLI, ...args]);
    const child = spawn(command, rest, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const kill = () => {
        try {
            process.kill(-child.pid!, "SIGKILL");
        } catch {
            // already gone
        }
    };
    const timer = setTimeout(kill, timeoutMs);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const done = new Promise<CliRun>((resolve) =>
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, report: singleHostReport(stdout) });
        }),
    );
    return { done, kill };
}

export const applyInBackground = (lab: TestLab, stackFile: string, timeoutMs?: number) =>
    cliInBackground(lab, ["apply", "--config", stackFile, "--json"], timeoutMs);

/** Polls `check` every 100 ms until it holds or `ms` pass; returns whether it held. */
export async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (check()) return true;
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return check();
}

/**
 * What must not change when a transaction is refused: every file under /etc (path, type, mode,
 * owner, size, link target, mtime, content digest) and the live filter tables of both families.
 * /etc/netns is the lab's own (it names lab hosts for the clients), shared with other labs.
 * `exclude` names a path left out (a test's own filler file).
 */
export function hostFingerprint(host: LabHost, exclude = "/nonexistent"): string {
    const result = sh(
        host,
        `find /etc \\( -path '${exclude}' -o -path /etc/netns \\) -prune -o ! -type d -printf '%p %y %m %u:%g %s %l %T@\\n' | LC_ALL=C sort; ` +
            `find /etc \\( -path '${exclude}' -o -path /etc/netns \\) -prune -o -type f -print0 | xargs -0 sha256sum | LC_ALL=C sort; ` +
            "for t in iptables ip6tables; do echo \"== $t\"; $t-save -t filter 2>/dev/null | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'; done",
        120_000,
    );
    if (result.code !== 0 && !result.stdout) throw new Error(`fingerprint of ${host.name}: ${result.stderr}`);
    return result.stdout;
}

/**
 * A reboot of a lab host, as far as a namespace can have one: every process dies but the
 * host's init (the confirm timer with them), the kernel's firewall is empty, /run is new; then
 * the boot order of a real host: mor-harden's boot hook (what mor-harden-boot.service runs,
 * before the firewall), netfilter-persistent, and the services the lab's init starts.
 */
export function simulateReboot(host: LabHost): void {
    const script = [
        // PID 1 (tini) and the init's `sleep infinity` keep the namespace alive: everything else dies.
        "keep=\" 1 $$ $(for p in /proc/[0-9]*; do p=${p#/proc/}; [ \"$(tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null)\" = \"sleep infinity \" ] && echo $p; done | tr '\\n' ' ') \"",
        'for p in /proc/[0-9]*; do p=${p#/proc/}; case "$keep" in *" $p "*) ;; *) kill -9 "$p" 2>/dev/null;; esac; done',
        "sleep 0.5",
        "for t in iptables ip6tables; do $t -P INPUT ACCEPT; $t -F; $t -X; done; nft flush ruleset 2>/dev/null",
        "rm -rf /run/sshd.pid /run/apache2/* /run/fail2ban/* /run/xtables.lock /run/ulogd* /run/lab-ready",
        "mkdir -p /run/sshd /run/lock /run/apache2 /run/fail2ban",
        `[ ! -f ${BOOT_SCRIPT} ] || sh ${BOOT_SCRIPT}`,
        "/usr/share/netfilter-persistent/plugins.d/15-ip4tables start; /usr/share/netfilter-persistent/plugins.d/25-ip6tables start",
        ...LAB_SERVICES,
    ].join("\n");
    const result = sh(host, script, 120_000);
    if (result.code !== 0) throw new Error(`simulated reboot of ${host.name}: ${result.stdout}${result.stderr}`);
}

/**
 * A small file system mounted over `path`, holding a copy of what was there, then filled up
 * (writes fail with ENOSPC). Returns the filler's path; `unmount` puts the original back.
 */
export function fillOver(host: LabHost, path: string): { filler: string; unmount: () => void } {
    const filler = `${path}/morh-test-filler`;
    const result = sh(
        host,
        `mkdir -p '${path}' && used=$(du -sk '${path}' | cut -f1) && mkdir -p /tmp/morh-copy && cp -a '${path}/.' /tmp/morh-copy/ && ` +
            `mount -t tmpfs -o size=$((used + 512))k,nr_inodes=0 morh-full '${path}' && cp -a /tmp/morh-copy/. '${path}/' && rm -rf /tmp/morh-copy && ` +
            `{ dd if=/dev/zero of='${filler}' bs=4k 2>/dev/null; true; } && ! sh -c 'echo x > "$0/morh-probe"' '${path}' 2>/dev/null`,
        120_000,
    );
    if (result.code !== 0) throw new Error(`filling ${path} on ${host.name}: ${result.stdout}${result.stderr}`);
    return { filler, unmount: () => void sh(host, `umount '${path}'`) };
}

/** A wrapper that makes `tool` take `seconds` longer on the host (first in root's PATH); returns the undo. */
export function slowTool(host: LabHost, tool: string, real: string, seconds: number): () => void {
    const wrapper = `/usr/local/sbin/${tool}`;
    sh(host, `printf '#!/bin/sh\\nsleep ${seconds}\\nexec ${real} "$@"\\n' > ${wrapper} && chmod 755 ${wrapper}`);
    return () => void sh(host, `rm -f ${wrapper}`);
}

/**
 * A slow, lossy path to a host's SSH: a TCP relay in the workstation that holds each chunk for
 * `delayMs` each way (round trip + 2 x delay), and `lossPercent` of the workstation's packets on
 * its link dropped at random. Returns the relay's address and port, and the undo.
 */
export function slowLossyLink(
    lab: TestLab,
    host: LabHost,
    options: { delayMs: number; lossPercent: number; listenPort: number },
): { address: string; port: number; stop: () => void } {
    const workstation = lab.client("workstation");
    const relay = join(lab.state.dir, "relay.js");
    writeFileSync(
        relay,
        `// Relays ${workstation.v4}:${options.listenPort} to ${host.v4}:22, holding each chunk ${options.delayMs} ms.
const net = require("node:net");
const hold = (from, to) => from.on("data", (chunk) => setTimeout(() => to.write(chunk), ${options.delayMs}));
net.createServer((client) => {
    const server = net.connect(22, "${host.v4}");
    hold(client, server); hold(server, client);
    const end = () => { client.destroy(); server.destroy(); };
    client.on("close", end); server.on("close", end); client.on("error", end); server.on("error", end);
}).listen(${options.listenPort}, "${workstation.v4}");
// Bounded: the relay stops by itself after ten minutes.
setTimeout(() => process.exit(0), 600000).unref();
`,
    );
    const [command, ...args] = execArgv(workstation, ["node", relay]);
    const child = spawn(command, args, { detached: true, stdio: "ignore" });
    const probability = (options.lossPercent / 100).toFixed(3);
    sh(
        workstation,
        `for t in iptables ip6tables; do $t -I INPUT ! -i lo -m statistic --mode random --probability ${probability} -j DROP; $t -I OUTPUT ! -o lo -m statistic --mode random --probability ${probability} -j DROP; done`,
    );
    return {
        address: workstation.v4,
        port: options.listenPort,
        stop: () => {
            try {
                process.kill(-child.pid!, "SIGKILL");
            } catch {
                // already gone
            }
            sh(
                workstation,
                `for t in iptables ip6tables; do $t -D INPUT ! -i lo -m statistic --mode random --probability ${probability} -j DROP; $t -D OUTPUT ! -o lo -m statistic --mode random --probability ${probability} -j DROP; done`,
            );
        },
    };
}
