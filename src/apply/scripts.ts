// The shell scripts mor-harden runs on a host, built from plans as plain text (pure, tested
// without a host). One script is one round trip. Every path and command in them comes from a
// validated config; file contents travel base64-encoded, so no content is ever parsed by sh.
import { createHash } from "node:crypto";
import type { OsFamily } from "../config/os";
import { FILL_VIEWS_VARIABLE, sha256Hex, VIEW_MEMORY_DIR, type ConcernPlan, type LiveView } from "../render/artifact";
import { changedLines } from "../render/changed-lines";
import { base64Lines, heredoc, wholeScript } from "../render/shell";
import type { LineDelta } from "./bulk";

/** Where mor-harden keeps its transactions and the files as they were before it first wrote them. */
export const STATE_DIR = "/var/lib/mor-harden";

/** A plan whose secret placeholders are filled in: only ever held in memory and sent over SSH. */
export interface FilledPlan extends ConcernPlan {
    /** Contents in the order of `artifacts`, secrets filled in. */
    contents: string[];
    /** For artifacts with a merge command: only the changed lines, against the host's current file. */
    deltas?: (LineDelta | undefined)[];
}

export interface LiveFile {
    sha256: string;
    mode: string;
    owner: string;
}

export interface LiveState {
    /** Each managed path -> what is there (undefined: no file). */
    files: Record<string, LiveFile | undefined>;
    /** Each concern -> did its verify commands pass (is it running as configured)? */
    running: Record<string, boolean>;
    /** "9.2" as the host's sshd reports it. */
    openssh?: string;
    /** Packages that are not installed, per concern. */
    missingPackages: Record<string, string[]>;
    /** Transactions waiting for their confirmation: what is live may still be rolled back. */
    pending: { txid: string; deadline: number }[];
}

const installers: Record<OsFamily, (packages: string[]) => string> = {
    // iptables-persistent asks whether to save the current rules: it must not (they are not ours).
    debian: (packages) =>
        `echo 'iptables-persistent iptables-persistent/autosave_v4 boolean false' | debconf-set-selections 2>/dev/null; echo 'iptables-persistent iptables-persistent/autosave_v6 boolean false' | debconf-set-selections 2>/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${packages.join(" ")}`,
    rhel: (packages) => `if command -v dnf >/dev/null; then dnf install -y -q ${packages.join(" ")}; else yum install -y -q ${packages.join(" ")}; fi`,
};

const installedCheck: Record<OsFamily, string> = {
    debian: `dpkg-query -W -f='\${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'`,
    rhel: `rpm -q "$pkg" >/dev/null 2>&1`,
};

/**
 * Where the canonical form of an artifact's live view is kept on the host, keyed by what produces
 * it (the artifact and the command). Computing it (a scratch network namespace, the host's own
 * iptables) is most of a drift check's cost; the cache makes a clean check cheap, and a stale or
 * missing entry only costs the computation again (see expectedOfView).
 */
export function viewCachePath(plan: ConcernPlan, index: number): string | undefined {
    const view = plan.liveViews[index];
    if (!("artifact" in view.expected)) return undefined;
    const key = createHash("sha256").update(plan.artifacts[view.expected.artifact].content).update("\0").update(view.expected.command).digest("hex").slice(0, 32);
    return `${VIEW_MEMORY_DIR}/${plan.concern}-${index}-${key}`;
}

/**
 * Shell that sets $exp to what view `index` must print, given $live: the cached form when it
 * equals $live (nothing to compute on a clean host), else computed. With `fill`, a computed form
 * is cached (apply only: reads for drift and refresh write nothing).
 */
export function expectedOfView(plan: ConcernPlan, index: number, fill = false): string {
    const compute = `exp=$( (${expectedOf(plan.liveViews[index], plan)}) 2>&1)`;
    const cache = viewCachePath(plan, index);
    if (!cache) return compute;
    const store = fill ? `; mkdir -p '${VIEW_MEMORY_DIR}' && rm -f '${VIEW_MEMORY_DIR}/${plan.concern}-${index}-'* && printf '%s\\n' "$exp" > '${cache}'` : "";
    return `exp=$(cat '${cache}' 2>/dev/null); { [ -n "$exp" ] && [ "$exp" = "$live" ]; } || { ${compute}${store}; }`;
}

const BACKGROUND_DIR = "morh_views";

/**
 * Starts the plans' background views (slow ones, such as a blocklist's 100,000 set entries) at
 * the top of a read-only script, each writing to a file of a private temporary directory, so they
 * run beside the rest of the script; `liveOfView` collects each one in its turn. Without a
 * temporary directory (a full /tmp), every view runs in its turn, as the others do.
 */
export function startBackgroundViews(plans: ConcernPlan[]): string[] {
    const starts = plans.flatMap((plan) => plan.liveViews.flatMap((view, index) => (view.background ? [`( (${view.live}) > "$${BACKGROUND_DIR}/${plan.concern}-${index}" 2>&1 9>&- ) &`] : [])));
    if (starts.length === 0) return [];
    return [`${BACKGROUND_DIR}=$(mktemp -d 2>/dev/null) || ${BACKGROUND_DIR}=''`, `if [ -n "$${BACKGROUND_DIR}" ]; then`, ...starts, "fi"];
}

/** Shell that sets $live to what view `index` prints now (a background view: what it printed, once it ended). */
export function liveOfView(plan: ConcernPlan, index: number): string {
    const view = plan.liveViews[index];
    const inline = `live=$( (${view.live}) 2>&1)`;
    if (!view.background) return inline;
    const output = `"$${BACKGROUND_DIR}/${plan.concern}-${index}"`;
    // `wait` for all: a background view ends with the script's other reads, long before it ends itself.
    return `if [ -n "$${BACKGROUND_DIR}" ]; then wait; live=$(cat ${output}); else ${inline}; fi`;
}

/** The plans in the order a read-only script reads them: those with a background view last, so it has run meanwhile. */
export const backgroundLast = (plans: ConcernPlan[]) => [...plans.filter((plan) => !plan.liveViews.some((view) => view.background)), ...plans.filter((plan) => plan.liveViews.some((view) => view.background))];

/** Removes the background views' directory (the end of a read-only script). */
export const END_BACKGROUND_VIEWS = `[ -z "\${${BACKGROUND_DIR}:-}" ] || rm -rf "$${BACKGROUND_DIR}"`;

/** Lines `T <txid> <deadline>`: the transactions waiting for their confirmation (read-only). */
export const PENDING_LINES = `for morh_p in '${STATE_DIR}'/tx/*/pending; do [ -e "$morh_p" ] || continue; morh_t=\${morh_p%/pending}; echo "T \${morh_t##*/} $(head -n 1 "$morh_p" | tr -cd 0-9)"; done`;

/**
 * One script that reports every managed file, every concern's running state, facts, packages
 * and pending transactions. With `lockSeconds` (an apply's read) it first waits, under the host's
 * lock, for another operator's transaction to end, so what it reports is not about to be rolled
 * back; without (drift, refresh) it writes nothing and only reports what is pending.
 */
export function readScript(plans: ConcernPlan[], os: OsFamily, options: { fillViewCache?: boolean; lockSeconds?: number } = {}): string {
    const paths = plans.flatMap((plan) => plan.artifacts.map((artifact) => `'${artifact.path}'`)).join(" ");
    // One stat and one sha256sum for all files; a missing file prints no line.
    const lines = [
        ...(options.lockSeconds !== undefined ? [lockAndWait(options.lockSeconds)] : []),
        ...(options.fillViewCache ? [`export ${FILL_VIEWS_VARIABLE}=1`] : []),
        ...startBackgroundViews(plans),
        PENDING_LINES,
        `stat -c 'M %n %a %U:%G' ${paths} 2>/dev/null`,
        `sha256sum ${paths} 2>/dev/null | sed 's/^\\([0-9a-f]*\\)  /H \\1 /'`,
    ];
    for (const plan of backgroundLast(plans)) {
        // Live as configured: the checks pass and every live view prints what it must (a rule
        // added by hand, a drop-in that wins over ours), so `pulumi refresh` sees that drift too.
        const views = plan.liveViews.map((_, index) => `{ ${liveOfView(plan, index)}; ${expectedOfView(plan, index, options.fillViewCache)}; [ "$live" = "$exp" ]; }`);
        const checks = [...plan.verify.map((command) => `( ${command} )`), ...views];
        lines.push(`if ${checks.length > 0 ? checks.join(" && ") : "true"} >/dev/null 2>&1; then echo 'V ${plan.concern} 0'; else echo 'V ${plan.concern} 1'; fi`);
        if (plan.packages.length > 0) lines.push(`for pkg in ${plan.packages.join(" ")}; do ${installedCheck[os]} || echo "P ${plan.concern} $pkg"; done`);
    }
    lines.push(`printf 'X openssh %s\\n' "$( (sshd -V 2>&1 || true) | sed -n 's/^OpenSSH_\\([0-9]*\\.[0-9]*\\).*/\\1/p' | head -1)"`, END_BACKGROUND_VIEWS);
    return wholeScript(lines);
}

/** The command printing what a live view must print (a view never reads a secret artifact). */
export function expectedOf(view: LiveView, plan: ConcernPlan): string {
    if ("text" in view.expected) return `printf '%s' '${Buffer.from(view.expected.text.trim()).toString("base64")}' | base64 -d`;
    const content = Buffer.from(plan.artifacts[view.expected.artifact].content).toString("base64");
    return `printf '%s' '${content}' | base64 -d | ${view.expected.command}`;
}

export function parseReadOutput(output: string): LiveState {
    const state: LiveState = { files: {}, running: {}, missingPackages: {}, pending: [] };
    const hashes: Record<string, string> = {};
    for (const line of output.split("\n")) {
        const [kind, ...fields] = line.split(" ");
        if (kind === "M" && fields.length === 3) {
            state.files[fields[0]] = { sha256: "", mode: fields[1].padStart(4, "0"), owner: fields[2] };
        } else if (kind === "H" && fields.length === 2) {
            hashes[fields[1]] = fields[0];
        } else if (kind === "V") {
            state.running[fields[0]] = fields[1] === "0";
        } else if (kind === "P") {
            (state.missingPackages[fields[0]] ??= []).push(fields[1]);
        } else if (kind === "T" && fields.length === 2) {
            state.pending.push({ txid: fields[0], deadline: Number(fields[1]) });
        } else if (kind === "X" && fields[0] === "openssh" && fields[1]) {
            state.openssh = fields[1];
        }
    }
    for (const [path, file] of Object.entries(state.files)) if (file) file.sha256 = hashes[path] ?? "";
    return state;
}

/** Transactions kept on the host per concern (each holds backups of the files it replaced). */
export const KEEP_TRANSACTIONS = 5;

/**
 * Exit codes of an apply script, by the step that failed. `state` means nothing was changed: the
 * host could not protect the transaction (lock held, disk full, read-only, a tool missing).
 */
export const applyExit = { write: 10, packages: 11, prepare: 12, validate: 13, snapshot: 14, activate: 15, verify: 16, state: 17, rollback: 18 } as const;
export type ApplyStep = keyof typeof applyExit;

export function stepOfExit(code: number): ApplyStep | undefined {
    return (Object.keys(applyExit) as ApplyStep[]).find((step) => applyExit[step] === code);
}

const LOCK = `${STATE_DIR}/lock`;
/** Printed once a script holds the host's lock: its own time starts there (see HostSession.run). */
export const LOCKED_MARKER = "MORH-LOCKED";
const HOLDER = `${STATE_DIR}/lock.holder`;
/** A pending transaction whose deadline passed this long ago has lost its timer (killed, or the host rebooted without the boot hook). */
const STALE_GRACE_SECONDS = 15;
/** The boot hook: rolls back every transaction a reboot interrupted, before the firewall and sshd start. */
export const BOOT_SCRIPT = `${STATE_DIR}/boot-rollback.sh`;
const BOOT_UNIT = "/etc/systemd/system/mor-harden-boot.service";

/** The concern a transaction id names (`<time>-<concern>-<random>`, see the engine). */
export function concernOfTransaction(txid: string): string {
    return txid.split("-").slice(1, -1).join("-");
}

/** The transaction directory of a transaction id. */
export const txDir = (txid: string) => `${STATE_DIR}/tx/${txid}`;

/**
 * Shell functions that end a transaction nobody is running any more (under the lock, or at
 * boot): `morh_commit DIR` finishes a confirmed one (its old files' links go); `morh_rollback DIR
 * WHY` rolls one back and records how that went.
 */
const END_FUNCTIONS = [
    `morh_commit() { [ ! -f "$1/links" ] || while IFS= read -r morh_link; do rm -f "$morh_link"; done < "$1/links"; rm -f "$1/open"; echo applied > "$1/result"; }`,
    `morh_rollback() { rm -f "$1/open"; if sh "$1/rollback.sh" > "$1/rollback.log" 2>&1 9>&-; then echo "rolled-back $2" > "$1/result"; else echo "rollback-incomplete $2" > "$1/result"; fi; echo "MORH-NOTE rolled back \${1##*/} ($2): $(cat "$1/result")"; }`,
].join("\n");

/**
 * The start of a script that works under the host's lock: the signals of a lost connection
 * ignored, the lock taken on fd 9 by `take` (a flock command: how long it waits, and what it does
 * when it cannot have the lock), and the END_FUNCTIONS.
 */
function underLock(take: string): string[] {
    return ["trap '' HUP PIPE", `exec 9>>'${LOCK}'`, take, END_FUNCTIONS];
}

/**
 * Shell that takes the host's mor-harden lock on fd 9 and waits until no other transaction is
 * open or waiting for its confirmation, for at most `seconds` in all. Under the lock it ends
 * what nobody runs any more: a confirmed transaction whose commit was cut short is committed, a
 * pending one past its deadline (its timer is gone) and an open one (its script died: it no
 * longer holds the lock) are rolled back. On time-out it prints who holds the host and exits 17.
 * The marker tells the caller its own time starts; if the caller is gone (EPIPE: SIGPIPE is
 * ignored), the script stops before it changes anything.
 */
function lockAndWait(seconds: number): string {
    return [
        `mkdir -p '${STATE_DIR}/tx' && chmod 0700 '${STATE_DIR}' || { echo "MORH-ABORTED cannot create ${STATE_DIR}"; exit ${applyExit.state}; }`,
        `command -v flock >/dev/null || { echo 'MORH-ABORTED flock is missing (util-linux): transactions cannot be serialized'; exit ${applyExit.state}; }`,
        // A failed redirection on exec ends the shell before any handler: try it in a subshell first.
        `( : >> '${LOCK}' ) 2>/dev/null || { echo 'MORH-ABORTED cannot open ${LOCK}'; exit ${applyExit.state}; }`,
        `exec 9>>'${LOCK}'`,
        END_FUNCTIONS,
        `morh_until=$(( $(date +%s) + ${seconds} ))`,
        "while :; do",
        '  morh_left=$(( morh_until - $(date +%s) )); [ "$morh_left" -gt 0 ] || morh_left=0',
        `  flock -w "$morh_left" 9 || { echo "MORH-ABORTED another mor-harden transaction holds the host for more than ${seconds} s: $(cat '${HOLDER}' 2>/dev/null)"; exit ${applyExit.state}; }`,
        "  morh_waiting=''",
        `  for morh_tx in '${STATE_DIR}'/tx/*; do`,
        '    [ -d "$morh_tx" ] || continue',
        '    if [ -e "$morh_tx/confirmed" ]; then',
        '      [ ! -e "$morh_tx/open" ] || morh_commit "$morh_tx"',
        '    elif [ -e "$morh_tx/pending" ]; then',
        `      if [ "$(date +%s)" -gt $(( $(head -n 1 "$morh_tx/pending" | tr -cd 0-9) + ${STALE_GRACE_SECONDS} )) ]; then`,
        '        ! mv "$morh_tx/pending" "$morh_tx/expired" 2>/dev/null || morh_rollback "$morh_tx" "its confirmation timer was gone"',
        '      else morh_waiting="$morh_tx"; fi',
        '    elif [ -e "$morh_tx/open" ]; then',
        '      morh_rollback "$morh_tx" "its apply was cut off"',
        "    fi",
        "  done",
        '  [ -z "$morh_waiting" ] && break',
        "  flock -u 9",
        `  [ "$(date +%s)" -lt "$morh_until" ] || { echo "MORH-ABORTED a change is waiting for its confirmation (\${morh_waiting##*/}: $(tail -n +2 "$morh_waiting/pending" 2>/dev/null | tr '\\n' ' '))"; exit ${applyExit.state}; }`,
        "  sleep 1",
        "done",
        `echo ${LOCKED_MARKER} || exit ${applyExit.state}`,
        `morh_from=\${SSH_CLIENT:-local}`,
        `printf 'pid %s, user %s, from %s, since %s\\n' "$$" "\${SUDO_USER:-$(id -un)}" "\${morh_from%% *}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > '${HOLDER}' 2>/dev/null || true`,
    ].join("\n");
}

/**
 * What the boot hook runs, before the firewall, sshd and the rest load their files: every
 * transaction a reboot caught unconfirmed (pending) or mid-way (open) is rolled back; one whose
 * confirmation was cut short is committed. With MORH_BOOT set, the rollback restores what
 * persists across a reboot (files, links, unit states) and skips the live checks.
 */
export function bootScript(): string {
    return [
        "#!/bin/sh",
        "# mor-harden: unconfirmed changes do not survive a reboot (see mor-harden-boot.service).",
        "export MORH_BOOT=1",
        END_FUNCTIONS,
        `for tx in '${STATE_DIR}'/tx/*; do`,
        '  [ -d "$tx" ] || continue',
        '  if [ -e "$tx/confirmed" ]; then [ ! -e "$tx/open" ] || morh_commit "$tx"',
        '  elif mv "$tx/pending" "$tx/expired" 2>/dev/null || [ -e "$tx/open" ]; then morh_rollback "$tx" "at boot"; fi',
        "done",
        "exit 0",
    ].join("\n") + "\n";
}

function bootUnit(): string {
    const services = "netfilter-persistent.service iptables.service ip6tables.service firewalld.service ssh.service sshd.service fail2ban.service apache2.service httpd.service fwknop-server.service";
    return [
        "# mor-harden: unconfirmed changes do not survive a reboot.",
        "[Unit]",
        "Description=mor-harden: roll back unconfirmed changes",
        "DefaultDependencies=no",
        "After=local-fs.target",
        `Before=network-pre.target ${services}`,
        `RequiresMountsFor=${STATE_DIR}`,
        "",
        "[Service]",
        "Type=oneshot",
        `ExecStart=/bin/sh ${BOOT_SCRIPT}`,
        "TimeoutStartSec=120",
        "",
        "[Install]",
        "WantedBy=sysinit.target",
    ].join("\n") + "\n";
}

/**
 * Installs the boot hook when it is missing or differs (a script, and a systemd unit where systemd
 * runs); checked, before anything of the transaction moves into place.
 */
function ensureBootHook(): string {
    const script = Buffer.from(bootScript()).toString("base64");
    const unit = Buffer.from(bootUnit()).toString("base64");
    const put = (path: string, content: string) =>
        `[ "$(cat '${path}' 2>/dev/null | base64 -w0)" = '${content}' ] || { printf '%s' '${content}' | base64 -d > '${path}.morh-new' && mv -f '${path}.morh-new' '${path}'; } || { rm -f '${path}.morh-new'; false; }`;
    const wants = "/etc/systemd/system/sysinit.target.wants/mor-harden-boot.service";
    return [
        `${put(BOOT_SCRIPT, script)} || abort 'cannot write the boot hook ${BOOT_SCRIPT}'`,
        `if [ -d /run/systemd/system ]; then { ${put(BOOT_UNIT, unit)} && { [ -L '${wants}' ] || { mkdir -p /etc/systemd/system/sysinit.target.wants && ln -sf '${BOOT_UNIT}' '${wants}'; }; }; } || abort 'cannot install ${BOOT_UNIT}'; fi`,
    ].join("\n");
}

/**
 * A large file rebuilt on the host from its current version and the changed lines, checked
 * against the digest of the full content (anything else aborts: nothing has moved yet).
 */
function rebuiltFile(file: { path: string; index: number; content: string; delta: LineDelta; merge: string }, target: string): string[] {
    const lines = (items: string[]) => base64Lines(items.map((line) => `${line}\n`).join(""));
    const digest = sha256Hex(file.content);
    return [
        `[ "$(sha256sum < '${file.path}' 2>/dev/null | cut -c1-64)" = '${file.delta.base}' ] || abort '${file.path} changed since it was read'`,
        `base64 -d > ${changedLines(file.index).removed.replace("$MORH_TX", "$TX")} ${heredoc("MORH_REMOVED", lines(file.delta.removed))}`,
        `[ $? -eq 0 ] || abort 'cannot write the changes of ${file.path}'`,
        `base64 -d > ${changedLines(file.index).added.replace("$MORH_TX", "$TX")} ${heredoc("MORH_ADDED", lines(file.delta.added))}`,
        `[ $? -eq 0 ] || abort 'cannot write the changes of ${file.path}'`,
        `( MORH_OLD='${file.path}' MORH_REMOVED=${changedLines(file.index).removed.replace("$MORH_TX", "$TX")} MORH_ADDED=${changedLines(file.index).added.replace("$MORH_TX", "$TX")}; export MORH_OLD MORH_REMOVED MORH_ADDED; ${file.merge} ) > ${target} && [ "$(sha256sum < ${target} | cut -c1-64)" = '${digest}' ] || abort 'rebuilding ${file.path} from its changes did not give the file to write'`,
    ];
}

/**
 * One concern's transaction. In order: take the host's lock (waiting out another operator's
 * unconfirmed change); write everything that protects the transaction, each write checked
 * (rollback script, new contents beside their targets, originals, backups, a hard link to each
 * old file): any failure so far leaves the host as it was (exit 17). Then install missing
 * packages, move the new files into place, prepare, validate with the real tool, snapshot the
 * running state, arm the rollback timer when the change could lock the operator out, activate,
 * verify. A failure after the move restores the old files by rename (no space needed) and, once
 * preparation had begun, the running state, then checks it once activation had begun. The
 * script ignores SIGHUP and SIGPIPE: a lost connection never stops it half-way. `$TX/result`
 * says how it ended, for a caller that lost the connection; `verified` that it may be confirmed.
 */
export function applyScript(plan: FilledPlan, options: { txid: string; os: OsFamily; installPackages: string[]; confirmSeconds: number; lockSeconds: number }): string {
    const tx = txDir(options.txid);
    const originals = `${STATE_DIR}/originals/${plan.concern}`;
    const files = plan.artifacts.map((artifact, index) => ({ ...artifact, index, content: plan.contents[index], delta: plan.deltas?.[index] }));
    const old = (path: string) => `'${path}.morh-old'`;
    const fresh = (path: string) => `'${path}.morh-new'`;
    const restoreFiles = files.map((file) =>
        [
            `rm -f ${fresh(file.path)}`,
            `if [ -e ${old(file.path)} ]; then if [ ${old(file.path)} -ef '${file.path}' ]; then rm -f ${old(file.path)}; else mv -f ${old(file.path)} '${file.path}'; fi`,
            `elif [ -e "$MORH_TX/absent.${file.index}" ]; then rm -f '${file.path}'; fi`,
        ].join("; "),
    );
    const runningState = plan.rollback.length > 0 ? plan.rollback : plan.activate;
    const rollback = [
        "trap '' HUP PIPE",
        `export MORH_TX='${tx}' MORH_STATE='${tx}/state'`,
        "morh_failed=0",
        ...restoreFiles.map((line) => `{ ${line}; } || { echo 'rollback: restoring a file failed'; morh_failed=1; }`),
        `[ ! -f "$MORH_TX/created-dirs" ] || sort -r "$MORH_TX/created-dirs" | while IFS= read -r dir; do rmdir "$dir" 2>/dev/null; done`,
        // The running state once preparation had begun (it can enable a site or a module); at boot
        // too, for what persists (unit states, links), but the live checks only on a running host.
        'if [ -e "$MORH_TX/prepared" ]; then',
        "  :",
        // (At boot a reload of a service not started yet fails as it should: that is no failure.)
        ...runningState.map((command) => `  ( ${command} ) || { echo "rollback step failed: ${command.replace(/["$`\\\n]/g, ".").slice(0, 60)}"; [ -n "\${MORH_BOOT:-}" ] || morh_failed=1; }`),
        "fi",
        'if [ -e "$MORH_TX/activated" ] && [ -z "${MORH_BOOT:-}" ]; then',
        "  :",
        ...plan.rollbackCheck.map((command) => `  morh_check=$( ( ${command} ) 2>&1) || { printf 'MORH-ROLLBACK-MISMATCH %s\\n' "$morh_check"; morh_failed=1; }`),
        "fi",
        'rm -f "$MORH_TX/open"',
        "exit $morh_failed",
    ].join("\n");
    const step = (name: ApplyStep, command: string) =>
        `( ${command} ) >"$TX/out" 2>&1 9>&- || { cat "$TX/out"; fail ${applyExit[name]} '${name}'; }; grep '^MORH-NOTE ' "$TX/out" || true`;
    const lines = [
        "set -u",
        "trap '' HUP PIPE",
        "umask 077",
        `TX='${tx}'`,
        // Before anything moves: take back what this transaction wrote so far, report, exit 17.
        `abort() { echo "MORH-ABORTED $1"; ${files.map((file) => `rm -f ${fresh(file.path)}; [ ! ${old(file.path)} -ef '${file.path}' ] || rm -f ${old(file.path)};`).join(" ")} rm -rf '${originals}.new'; [ ! -f "$TX/created-dirs" ] || sort -r "$TX/created-dirs" | while IFS= read -r dir; do rmdir "$dir" 2>/dev/null; done; rm -f "$TX/open"; echo "aborted: $1" > "$TX/result" 2>/dev/null; exit ${applyExit.state}; }`,
        // After: the rollback, then MORH-ROLLED-BACK only once it (and its check) passed.
        `fail() { echo "MORH-FAILED $2"; rm -f "$TX/pending"; if sh "$TX/rollback.sh" >"$TX/rollback.log" 2>&1 9>&-; then echo "rolled-back $2" > "$TX/result"; echo MORH-ROLLED-BACK; exit $1; fi; cat "$TX/rollback.log"; echo "rollback-incomplete $2" > "$TX/result"; exit ${applyExit.rollback}; }`,
        lockAndWait(options.lockSeconds),
        `mkdir -p "$TX/backup" "$TX/state" && touch "$TX/open" || abort 'cannot create the transaction directory'`,
        `cat > "$TX/rollback.sh" ${heredoc("MORH_ROLLBACK", rollback)}`,
        `[ $? -eq 0 ] && [ -s "$TX/rollback.sh" ] || abort 'cannot write the rollback script'`,
        `printf '%s\\n' ${files.map((file) => old(file.path)).join(" ")} > "$TX/links" || abort 'cannot write the rollback script'`,
        ...(plan.needsConfirm ? [ensureBootHook()] : []),
        // The new contents beside their targets (same file system, so the move is a rename).
        ...files.flatMap((file) => [
            `morh_dir=$(dirname '${file.path}'); [ -d "$morh_dir" ] || { mkdir -p "$morh_dir" && echo "$morh_dir" >> "$TX/created-dirs"; } || abort 'cannot create the directory of ${file.path}'`,
            ...(file.delta && file.merge ? rebuiltFile(file as typeof file & { delta: LineDelta; merge: string }, fresh(file.path)) : [`base64 -d > ${fresh(file.path)} ${heredoc("MORH_CONTENT", base64Lines(file.content))}`]),
            `[ $? -eq 0 ] && chmod ${file.mode} ${fresh(file.path)} && chown ${file.owner}:${file.group} ${fresh(file.path)} || abort 'cannot write ${file.path}'`,
        ]),
        // The files as they were before mor-harden first wrote them, for delete.
        `if [ ! -d '${originals}' ]; then`,
        `  { mkdir -p '${originals}.new' && : > '${originals}.new/manifest'; } || abort 'cannot keep the original files'`,
        ...files.map((file) => `  { [ ! -e '${file.path}' ] || cp -a '${file.path}' '${originals}.new/${file.index}'; } && echo '${file.index} ${file.path}' >> '${originals}.new/manifest' || abort 'cannot keep the original of ${file.path}'`),
        `  mv '${originals}.new' '${originals}' || abort 'cannot keep the original files'`,
        "fi",
        // Backups for forensics, and a hard link to each old file: the rollback puts it back by rename.
        ...files.map(
            (file) =>
                `if [ -e '${file.path}' ]; then cp -a '${file.path}' "$TX/backup/${file.index}" && ln -f '${file.path}' ${old(file.path)} || abort 'cannot back up ${file.path}'; else touch "$TX/absent.${file.index}" || abort 'cannot record that ${file.path} is new'; fi`,
        ),
        // Packages change the host: from here on a failure is rolled back, not aborted.
        ...(options.installPackages.length > 0 ? [step("packages", installers[options.os](options.installPackages))] : []),
        ...files.map((file) => `mv -f ${fresh(file.path)} '${file.path}' || fail ${applyExit.write} 'write ${file.path}'`),
        `touch "$TX/prepared" || fail ${applyExit.prepare} 'prepare'`,
        // From here the plan's commands may read the transaction (the changed lines of a large file).
        'export MORH_TX="$TX" MORH_STATE="$TX/state"',
        ...plan.prepare.map((command) => step("prepare", command)),
        ...plan.validate.map((command) => step("validate", command)),
        ...plan.snapshot.map((command) => step("snapshot", command)),
        // The first snapshot is the running state mor-harden found: delete brings it back.
        ...(plan.snapshot.length > 0 ? [`[ -d '${originals}/state' ] || cp -a "$TX/state" '${originals}/state' || fail ${applyExit.snapshot} 'snapshot (keeping the first one)'`] : []),
    ];
    if (plan.needsConfirm) {
        // Armed before activation, outside the SSH session (systemd-run where systemd runs, else its
        // own session): unless a NEW login confirms in time, the host rolls itself back. The
        // expiry takes the lock (waiting out this script), so no other transaction starts while
        // the rollback runs; it rolls back even if the lock stays held, as a lockout must not stay.
        const expire = [
            ...underLock("flock -w 600 9"),
            `mv '${tx}/pending' '${tx}/expired' 2>/dev/null || exit 0`,
            `morh_rollback '${tx}' unconfirmed`,
        ].join("\n");
        lines.push(
            `{ echo $(( $(date +%s) + ${options.confirmSeconds} )) && cat '${HOLDER}'; } > "$TX/pending" || fail ${applyExit.snapshot} 'arming the confirmation timer'`,
            `cat > "$TX/expire.sh" ${heredoc("MORH_EXPIRE", expire)}`,
            `[ $? -eq 0 ] || fail ${applyExit.snapshot} 'arming the confirmation timer'`,
            `if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then`,
            `  systemd-run --quiet --collect --unit='morh-confirm-${options.txid}' sh -c 'sleep ${options.confirmSeconds}; exec sh "$0/expire.sh"' "$TX" && echo "systemctl stop 'morh-confirm-${options.txid}'" > "$TX/timer" || fail ${applyExit.snapshot} 'arming the confirmation timer (systemd-run)'`,
            "else",
            `  command -v setsid >/dev/null || fail ${applyExit.snapshot} 'arming the confirmation timer (setsid is missing)'`,
            `  setsid sh -c 'sleep ${options.confirmSeconds}; exec sh "$0/expire.sh"' "$TX" </dev/null >/dev/null 2>&1 9>&- &`,
            `  echo "kill -- -$! 2>/dev/null" > "$TX/timer" || fail ${applyExit.snapshot} 'arming the confirmation timer'`,
            "fi",
        );
    }
    lines.push(
        `touch "$TX/activated" || fail ${applyExit.activate} 'activate (recording it)'`,
        ...plan.activate.map((command) => step("activate", command)),
        ...plan.verify.map((command) => step("verify", command)),
        // The canonical form of the new artifacts' live views, for the next drift check.
        ...plan.liveViews.flatMap((_, index) => (viewCachePath(plan, index) ? [`live=''; ${expectedOfView(plan, index, true)}`] : [])),
        // Committed unless a confirmation is still due (it may be given from here on).
        ...(plan.needsConfirm ? [`touch "$TX/verified" || fail ${applyExit.verify} 'verify (recording it)'`, 'echo pending > "$TX/result"'] : [END_FUNCTIONS, 'morh_commit "$TX"']),
        // Keep the last transactions of this concern for forensics; older ones go.
        `ls -1d '${STATE_DIR}/tx/'*-${plan.concern}-* 2>/dev/null | sort | head -n -${KEEP_TRANSACTIONS} | while IFS= read -r morh_old; do [ -e "$morh_old/pending" ] || [ -e "$morh_old/open" ] || rm -rf "$morh_old"; done`,
        "echo MORH-APPLIED",
    );
    return wholeScript(lines);
}

/**
 * Run over a NEW connection: the login worked, so the change stays. Under the lock, so it waits
 * for the transaction's own script to end, and only once that script verified the change: a
 * confirmation never lands before activation is done.
 */
export function confirmScript(txid: string): string {
    const tx = txDir(txid);
    return wholeScript([
        ...underLock("flock -w 60 9 || { echo MORH-BUSY; exit 4; }"),
        `if [ -e '${tx}/confirmed' ]; then echo MORH-CONFIRMED; exit 0; fi`,
        `[ ! -e '${tx}/pending' ] || [ -e '${tx}/verified' ] || { echo MORH-NOT-READY; exit 4; }`,
        `if mv '${tx}/pending' '${tx}/confirmed' 2>/dev/null; then morh_commit '${tx}'; sh '${tx}/timer' 2>/dev/null; echo MORH-CONFIRMED; else echo "MORH-EXPIRED $(cat '${tx}/result' 2>/dev/null)"; exit 3; fi`,
    ]);
}

/**
 * Run over the old connection when the new login failed: roll back now instead of waiting for the
 * timer. Says what happened when it is too late (confirmed, or rolled back by the timer).
 */
export function rollbackNowScript(txid: string): string {
    const tx = txDir(txid);
    // Under the lock: no other transaction starts while this one's rollback runs.
    return wholeScript([
        ...underLock("flock -w 120 9"),
        `if mv '${tx}/pending' '${tx}/expired' 2>/dev/null; then`,
        `  sh '${tx}/timer' 2>/dev/null; morh_rollback '${tx}' 'after a failed login' >/dev/null`,
        `  case "$(cat '${tx}/result')" in rolled-back*) echo MORH-ROLLED-BACK;; *) cat '${tx}/rollback.log'; echo MORH-ROLLBACK-INCOMPLETE;; esac`,
        `elif [ -e '${tx}/confirmed' ]; then echo MORH-ALREADY-CONFIRMED`,
        `else echo "MORH-ALREADY-ENDED $(cat '${tx}/result' 2>/dev/null)"; fi`,
    ]);
}

/**
 * How a transaction ended so far, for a caller whose connection was lost: `pending` only once it
 * may be confirmed (verified); `running` while its script holds the lock; an open transaction
 * whose script died is rolled back here, under the lock.
 */
export function statusScript(txid: string): string {
    const tx = txDir(txid);
    return wholeScript([
        `[ -d '${tx}' ] || { echo 'MORH-STATUS none'; exit 0; }`,
        // Its script still runs (holds the lock): come back later.
        ...underLock("flock -n 9 || { echo 'MORH-STATUS running'; exit 0; }"),
        `if [ -e '${tx}/confirmed' ]; then [ ! -e '${tx}/open' ] || morh_commit '${tx}' >/dev/null; echo 'MORH-STATUS applied'`,
        `elif [ -e '${tx}/pending' ]; then if [ -e '${tx}/verified' ]; then echo 'MORH-STATUS pending'; else echo 'MORH-STATUS running'; fi`,
        `elif [ -e '${tx}/open' ]; then morh_rollback '${tx}' 'cut off' >/dev/null; echo "MORH-STATUS $(cat '${tx}/result')"`,
        `elif [ -e '${tx}/result' ]; then echo "MORH-STATUS $(cat '${tx}/result')"`,
        "else echo 'MORH-STATUS unknown'; fi",
    ]);
}

/**
 * Puts back the files as they were before mor-harden first wrote them (every path the first
 * transaction recorded, by path), then undoes activation with `$MORH_STATE` at the running state
 * that transaction found. Under the host's lock, like a transaction.
 */
export function deleteScript(plan: ConcernPlan, options: { lockSeconds: number }): string {
    const originals = `${STATE_DIR}/originals/${plan.concern}`;
    const unrecorded = plan.artifacts.map((artifact) => `grep -q ' ${artifact.path}$' '${originals}/manifest' 2>/dev/null || rm -f '${artifact.path}'`);
    return wholeScript([
        "set -u",
        "trap '' HUP PIPE",
        `abort() { echo "MORH-ABORTED $1"; exit ${applyExit.state}; }`,
        lockAndWait(options.lockSeconds),
        `[ -f '${originals}/manifest' ] || echo 'MORH-NO-ORIGINALS'`,
        `[ ! -f '${originals}/manifest' ] || while read -r index path; do if [ -e '${originals}'/"$index" ]; then cp -a '${originals}'/"$index" "$path"; else rm -f "$path"; fi || echo "MORH-NOTE restoring $path failed"; done < '${originals}/manifest'`,
        // A file mor-harden added after its first transaction had no original: it goes.
        ...unrecorded,
        `export MORH_STATE='${originals}/state'`,
        ...(plan.deactivate.length > 0 ? plan.deactivate : plan.activate).map((command) => `( ${command} ) 9>&- || echo "deactivate step failed"`),
        `rm -rf '${originals}'`,
        "echo MORH-DELETED",
    ]);
}
