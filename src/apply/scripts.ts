// The shell scripts mor-harden runs on a host, built from plans as plain text (pure, tested
// without a host). One script is one round trip. Every path and command in them comes from a
// validated config; file contents travel base64-encoded, so no content is ever parsed by sh.
import { createHash } from "node:crypto";
import type { OsFamily } from "../config/os";
import { FILL_VIEWS_VARIABLE, HOST_LOCK_FILE, sha256Hex, VIEW_MEMORY_DIR, type ConcernPlan, type LiveView } from "../render/artifact";
import { changedLines } from "../render/changed-lines";
import { base64Lines, heredoc, readsAtOnce, wholeScript } from "../render/shell";
import { renderTemplate } from "../render/templates";
import type { LineDelta } from "./bulk";
import { confirmExit, marker as m, resultWord, statusWord, stepExit, type ApplyStep } from "./protocol";

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

/**
 * The installed packages, one name a line, from one process for all of them (a dpkg-query or rpm
 * start is 30-45 ms on a lab host; a process per package was most of an apply's read). A package
 * the host does not know prints no such line (dpkg-query names it on stderr, rpm as "package X is
 * not installed").
 */
const installedList: Record<OsFamily, (packages: string[]) => string> = {
    debian: (packages) => `dpkg-query -W -f='\${db:Status-Abbrev} \${Package}\\n' ${packages.join(" ")} 2>/dev/null | sed -n 's/^.i  *//p'`,
    rhel: (packages) => `rpm -q --qf '%{NAME}\\n' ${packages.join(" ")} 2>/dev/null`,
};

/** `P <concern> <package>` for each plan's package that is not installed, in one process (see installedList). */
function missingPackageLines(plans: ConcernPlan[], os: OsFamily): string[] {
    const wanted = [...new Set(plans.flatMap((plan) => plan.packages))];
    if (wanted.length === 0) return [];
    // Whole lines are matched (between newlines): no package stands for one whose name it begins.
    return [
        "morh_nl='\n'",
        `morh_installed=$(${installedList[os](wanted)})`,
        ...plans.flatMap((plan) =>
            plan.packages.map(
                (pkg) => `case "\${morh_nl}\${morh_installed}\${morh_nl}" in *"\${morh_nl}${pkg}\${morh_nl}"*) ;; *) echo 'P ${plan.concern} ${pkg}' ;; esac`,
            ),
        ),
    ];
}

/**
 * Where the canonical form of an artifact's live view is kept on the host, keyed by what produces
 * it (the artifact and the command). Computing it (a scratch network namespace, the host's own
 * iptables) is most of a drift check's cost; the cache makes a clean check cheap, and a stale or
 * missing entry only costs the computation again (see expectedOfView).
 */
export function viewCachePath(plan: ConcernPlan, index: number): string | undefined {
    const view = plan.liveViews[index];
    if (!("artifact" in view.expected)) return undefined;
    const key = createHash("sha256")
        .update(plan.artifacts[view.expected.artifact].content)
        .update("\0")
        .update(view.expected.command)
        .digest("hex")
        .slice(0, 32);
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
    const starts = plans.flatMap((plan) =>
        plan.liveViews.flatMap((view, index) => (view.background ? [`( (${view.live}) > "$${BACKGROUND_DIR}/${plan.concern}-${index}" 2>&1 9>&- ) &`] : [])),
    );
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
export const backgroundLast = (plans: ConcernPlan[]) => [
    ...plans.filter((plan) => !plan.liveViews.some((view) => view.background)),
    ...plans.filter((plan) => plan.liveViews.some((view) => view.background)),
];

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
    const files = [PENDING_LINES, `stat -c 'M %n %a %U:%G' ${paths} 2>/dev/null`, `sha256sum ${paths} 2>/dev/null | sed 's/^\\([0-9a-f]*\\)  /H \\1 /'`];
    const openssh = [`printf 'X openssh %s\\n' "$( (sshd -V 2>&1 || true) | sed -n 's/^OpenSSH_\\([0-9]*\\.[0-9]*\\).*/\\1/p' | head -1)"`];
    const groups = [files, openssh, missingPackageLines(plans, os)];
    const last: string[] = [];
    for (const plan of backgroundLast(plans)) {
        // Live as configured: the checks pass and every live view prints what it must (a rule
        // added by hand, a drop-in that wins over ours), so `pulumi refresh` sees that drift too.
        // One V line a concern, its checks first and in turn: the first that fails skips the rest,
        // so a fresh host's read computes no expected view (a scratch namespace's iptables-restore,
        // seconds with a slow or loaded host) for a concern already known not to run as
        // configured. The concerns are read at once.
        const checks = [
            ...plan.verify.map((command) => `( ${command} )`),
            ...plan.liveViews.map((_, index) => `{ ${liveOfView(plan, index)}; ${expectedOfView(plan, index, options.fillViewCache)}; [ "$live" = "$exp" ]; }`),
        ];
        // A concern with nothing to check still says it runs (no V line would read as not running).
        const read = `if ${checks.length > 0 ? checks.join(" && ") : "true"} >/dev/null 2>&1; then echo 'V ${plan.concern} 0'; else echo 'V ${plan.concern} 1'; fi`;
        // A plan with a background view is read by the script's own shell, which alone can `wait` for it.
        if (plan.liveViews.some((view) => view.background)) last.push(read);
        else groups.push([read]);
    }
    return wholeScript([
        ...(options.lockSeconds !== undefined ? [lockAndWait(options.lockSeconds)] : []),
        ...(options.fillViewCache ? [`export ${FILL_VIEWS_VARIABLE}=1`] : []),
        ...startBackgroundViews(plans),
        // The reads are independent (the parser takes lines in any order): at once.
        ...readsAtOnce(groups, last),
        END_BACKGROUND_VIEWS,
    ]);
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
            // A concern's V lines must all say 0 (one a concern today; never a later line standing for an earlier one).
            state.running[fields[0]] = (state.running[fields[0]] ?? true) && fields[1] === "0";
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

const LOCK = HOST_LOCK_FILE;
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

/** What every template of templates/apply/ is rendered with: the protocol's words and the host's paths. */
function protocolData() {
    return {
        m,
        result: resultWord,
        status: statusWord,
        exit: stepExit,
        confirmExit,
        stateDir: STATE_DIR,
        lockFile: LOCK,
        holder: HOLDER,
        staleGrace: STALE_GRACE_SECONDS,
        bootScript: BOOT_SCRIPT,
    };
}

/** templates/apply/<name>, rendered with the protocol's data and `data`; without its final newline. */
function renderApply(name: string, data: object = {}): string {
    return renderTemplate(`apply/${name}`, { ...protocolData(), ...data }).replace(/\n$/, "");
}

/**
 * Shell functions that end a transaction nobody is running any more (under the lock, or at
 * boot): `morh_commit DIR` finishes a confirmed one (its old files' links go); `morh_rollback DIR
 * WHY` rolls one back and records how that went (templates/apply/lib.sh.hbs).
 */
const endFunctions = () => renderApply("lib.sh.hbs");

/**
 * The start of a script that works under the host's lock: the signals of a lost connection
 * ignored, the lock taken on fd 9 by `take` (a flock command: how long it waits, and what it does
 * when it cannot have the lock), and the end functions.
 */
function underLock(take: string): string {
    return renderApply("under-lock.sh.hbs", { take, lib: endFunctions() });
}

/**
 * Shell that takes the host's mor-harden lock on fd 9 and waits until no other transaction is
 * open or waiting for its confirmation, for at most `seconds` in all (templates/apply/lock.sh.hbs).
 * On time-out it prints who holds the host and exits with the `state` code.
 */
function lockAndWait(seconds: number): string {
    return renderApply("lock.sh.hbs", { seconds, lib: endFunctions() });
}

/** What the boot hook runs, before the firewall, sshd and the rest load their files (templates/apply/boot-rollback.sh.hbs). */
export function bootScript(): string {
    return renderApply("boot-rollback.sh.hbs", { lib: endFunctions() }) + "\n";
}

/** The systemd unit that runs the boot hook before the services whose files a transaction changes. */
export function bootUnit(): string {
    const services =
        "netfilter-persistent.service iptables.service ip6tables.service firewalld.service ssh.service sshd.service fail2ban.service apache2.service httpd.service fwknop-server.service";
    return renderApply("mor-harden-boot.service.hbs", { services }) + "\n";
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

/** A step as its failure names it: its first 60 characters without its comments, nothing the shell would expand. */
export function shownCommand(command: string): string {
    const code = command
        .split("\n")
        .filter((line) => !line.trimStart().startsWith("#"))
        .join(" ");
    return code.replace(/["$`\\]/g, ".").slice(0, 60);
}

/**
 * The rollback a transaction writes into its directory before anything moves (templates/apply/rollback.sh.hbs):
 * the old files back by rename, then the running state, checked.
 */
export function rollbackScript(plan: ConcernPlan, txid: string): string {
    const runningState = plan.rollback.length > 0 ? plan.rollback : plan.activate;
    return renderApply("rollback.sh.hbs", {
        txid,
        concern: plan.concern,
        tx: txDir(txid),
        files: plan.artifacts.map((artifact, index) => ({ path: artifact.path, index })),
        restore: runningState.map((command) => ({ command, shown: shownCommand(command) })),
        stageUndo: plan.stageUndo ?? [],
        checks: plan.rollbackCheck,
    });
}

/** The confirmation timer's end, written into the transaction's directory (templates/apply/expire.sh.hbs). */
export function expireScript(txid: string): string {
    return renderApply("expire.sh.hbs", { txid, tx: txDir(txid), underLock: underLock("flock -w 600 9") });
}

/**
 * One concern's transaction (templates/apply/transaction.sh.hbs, whose sections say its order):
 * lock, protect (every write checked: any failure leaves the host as it was), packages, stage, write,
 * prepare, validate, snapshot, the confirmation timer when the change could lock the operator
 * out, activate, verify, commit. `$TX/result` says how it ended, for a caller that lost the
 * connection; `verified` that it may be confirmed.
 */
export function applyScript(
    plan: FilledPlan,
    options: { txid: string; os: OsFamily; installPackages: string[]; confirmSeconds: number; lockSeconds: number },
): string {
    const tx = txDir(options.txid);
    const originals = `${STATE_DIR}/originals/${plan.concern}`;
    const fresh = (path: string) => `'${path}.morh-new'`;
    const files = plan.artifacts.map((artifact, index) => {
        const file = { ...artifact, index, content: plan.contents[index], delta: plan.deltas?.[index] };
        const write =
            file.delta && file.merge
                ? rebuiltFile(file as typeof file & { delta: LineDelta; merge: string }, fresh(file.path))
                : [`base64 -d > ${fresh(file.path)} ${heredoc("MORH_CONTENT", base64Lines(file.content))}`];
        return { path: file.path, index, mode: file.mode, owner: file.owner, group: file.group, write: write.join("\n") };
    });
    const rollback = rollbackScript(plan, options.txid);
    const step = (name: ApplyStep, command: string) =>
        `( ${command} ) >"$TX/out" 2>&1 9>&- || { cat "$TX/out"; fail ${stepExit[name]} '${name}'; }; grep '^${m.note} ' "$TX/out" || true`;
    const steps = (name: ApplyStep, commands: string[]) => commands.map((command) => step(name, command));
    // A concern's validators only read (the real tools judging the new files): they run at once,
    // each to its own output, and the first that failed in the plan's order is the one reported
    // (fail2ban's `-t` and its action's load are two Python starts, sshd's checks three sshd runs).
    const stepsAtOnce = (name: ApplyStep, commands: string[]) => {
        if (commands.length < 2) return steps(name, commands);
        const out = (index: number) => `"$TX/out.${name}.${index}"`;
        return [
            ...commands.map((command, index) => `( ${command} ) >${out(index)} 2>&1 9>&- & morh_job_${index}=$!`),
            "morh_failed=''",
            ...commands.map((_, index) => `wait "$morh_job_${index}" || morh_failed="\${morh_failed:-${index}}"`),
            `[ -z "$morh_failed" ] || { cat "$TX/out.${name}.$morh_failed"; fail ${stepExit[name]} '${name}'; }`,
            `grep -h '^${m.note} ' ${commands.map((_, index) => out(index)).join(" ")} || true`,
        ];
    };
    const expire = plan.needsConfirm ? expireScript(options.txid) : "";
    return wholeScript([
        renderApply("transaction.sh.hbs", {
            txid: options.txid,
            concern: plan.concern,
            tx,
            originals,
            files,
            lockAndWait: lockAndWait(options.lockSeconds),
            rollback,
            bootHook: plan.needsConfirm ? ensureBootHook() : "",
            sections: {
                packages: options.installPackages.length > 0 ? [step("packages", installers[options.os](options.installPackages))] : [],
                stage: steps("stage", plan.stage ?? []),
                prepare: steps("prepare", plan.prepare),
                validate: stepsAtOnce("validate", plan.validate),
                snapshot: steps("snapshot", plan.snapshot),
                activate: steps("activate", plan.activate),
                verify: steps("verify", plan.verify),
            },
            keepFirstSnapshot: plan.snapshot.length > 0,
            needsConfirm: plan.needsConfirm,
            confirmSeconds: options.confirmSeconds,
            expire,
            viewCache: viewCacheFills(plan),
            lib: endFunctions(),
            keep: KEEP_TRANSACTIONS,
        }),
    ]);
}

/**
 * The transaction's last work before its commit: the canonical form of each new artifact's live
 * view cached for the next drift check (the firewall's: its rules loaded into a scratch network
 * namespace, about 25 ms a family), the views at once. Best effort: a view not cached is computed
 * by the next read. Waited for by their own job ids (the confirmation timer runs in the background).
 */
function viewCacheFills(plan: ConcernPlan): string[] {
    const fills = plan.liveViews.flatMap((_, index) => (viewCachePath(plan, index) ? [`live=''; ${expectedOfView(plan, index, true)}`] : []));
    if (fills.length < 2) return fills;
    return [...fills.map((fill, index) => `( ${fill} ) 9>&- & morh_view_${index}=$!`), `wait ${fills.map((_, index) => `"$morh_view_${index}"`).join(" ")}`];
}

/** Run over a NEW connection: the login worked, so the change stays (templates/apply/confirm.sh.hbs). */
export function confirmScript(txid: string): string {
    return wholeScript([
        renderApply("confirm.sh.hbs", { txid, tx: txDir(txid), underLock: underLock(`flock -w 60 9 || { echo ${m.busy}; exit ${confirmExit.busy}; }`) }),
    ]);
}

/** Run over the old connection when the new login failed: roll back now (templates/apply/rollback-now.sh.hbs). */
export function rollbackNowScript(txid: string): string {
    return wholeScript([renderApply("rollback-now.sh.hbs", { txid, tx: txDir(txid), underLock: underLock("flock -w 120 9") })]);
}

/** How a transaction ended so far, for a caller whose connection was lost (templates/apply/status.sh.hbs). */
export function statusScript(txid: string): string {
    return wholeScript([
        renderApply("status.sh.hbs", { txid, tx: txDir(txid), underLock: underLock(`flock -n 9 || { echo '${m.status} ${statusWord.running}'; exit 0; }`) }),
    ]);
}

/** Puts back the files as they were before mor-harden first wrote them (templates/apply/delete.sh.hbs). */
export function deleteScript(plan: ConcernPlan, options: { lockSeconds: number }): string {
    return wholeScript([
        renderApply("delete.sh.hbs", {
            concern: plan.concern,
            originals: `${STATE_DIR}/originals/${plan.concern}`,
            lockAndWait: lockAndWait(options.lockSeconds),
            paths: plan.artifacts.map((artifact) => artifact.path),
            deactivate: plan.deactivate.length > 0 ? plan.deactivate : plan.activate,
        }),
    ]);
}
