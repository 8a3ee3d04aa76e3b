// The shell scripts mor-harden runs on a host, built from plans as plain text (pure, tested
// without a host). One script is one round trip. Every path and command in them comes from a
// validated config; file contents travel base64-encoded, so no content is ever parsed by sh.
import { createHash } from "node:crypto";
import type { OsFamily } from "../config/os";
import type { ConcernPlan, LiveView } from "../render/artifact";

/** Where mor-harden keeps its transactions and the files as they were before it first wrote them. */
export const STATE_DIR = "/var/lib/mor-harden";

/** A plan whose secret placeholders are filled in: only ever held in memory and sent over SSH. */
export interface FilledPlan extends ConcernPlan {
    /** Contents in the order of `artifacts`, secrets filled in. */
    contents: string[];
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
    return `${VIEW_CACHE}/${plan.concern}-${index}-${key}`;
}

const VIEW_CACHE = `${STATE_DIR}/views`;

/**
 * Shell that sets $exp to what view `index` must print, given $live: the cached form when it
 * equals $live (nothing to compute on a clean host), else computed. With `fill`, a computed form
 * is cached (apply only: reads for drift and refresh write nothing).
 */
export function expectedOfView(plan: ConcernPlan, index: number, fill = false): string {
    const compute = `exp=$( (${expectedOf(plan.liveViews[index], plan)}) 2>&1)`;
    const cache = viewCachePath(plan, index);
    if (!cache) return compute;
    const store = fill ? `; mkdir -p '${VIEW_CACHE}' && rm -f '${VIEW_CACHE}/${plan.concern}-${index}-'* && printf '%s\\n' "$exp" > '${cache}'` : "";
    return `exp=$(cat '${cache}' 2>/dev/null); { [ -n "$exp" ] && [ "$exp" = "$live" ]; } || { ${compute}${store}; }`;
}

/** One script that reports every managed file, every concern's running state, facts and packages. */
export function readScript(plans: ConcernPlan[], os: OsFamily, options: { fillViewCache?: boolean } = {}): string {
    const paths = plans.flatMap((plan) => plan.artifacts.map((artifact) => `'${artifact.path}'`)).join(" ");
    // One stat and one sha256sum for all files; a missing file prints no line.
    const lines = [`stat -c 'M %n %a %U:%G' ${paths} 2>/dev/null`, `sha256sum ${paths} 2>/dev/null | sed 's/^\\([0-9a-f]*\\)  /H \\1 /'`];
    for (const plan of plans) {
        // Live as configured: the checks pass and every live view prints what it must (a rule
        // added by hand, a drop-in that wins over ours), so `pulumi refresh` sees that drift too.
        const views = plan.liveViews.map((view, index) => `{ live=$( (${view.live}) 2>&1); ${expectedOfView(plan, index, options.fillViewCache)}; [ "$live" = "$exp" ]; }`);
        const checks = [...plan.verify.map((command) => `( ${command} )`), ...views];
        lines.push(`if ${checks.length > 0 ? checks.join(" && ") : "true"} >/dev/null 2>&1; then echo 'V ${plan.concern} 0'; else echo 'V ${plan.concern} 1'; fi`);
        if (plan.packages.length > 0) lines.push(`for pkg in ${plan.packages.join(" ")}; do ${installedCheck[os]} || echo "P ${plan.concern} $pkg"; done`);
    }
    lines.push(`printf 'X openssh %s\\n' "$( (sshd -V 2>&1 || true) | sed -n 's/^OpenSSH_\\([0-9]*\\.[0-9]*\\).*/\\1/p' | head -1)"`);
    return lines.join("\n") + "\n";
}

/** The command printing what a live view must print (a view never reads a secret artifact). */
export function expectedOf(view: LiveView, plan: ConcernPlan): string {
    if ("text" in view.expected) return `printf '%s' '${Buffer.from(view.expected.text.trim()).toString("base64")}' | base64 -d`;
    const content = Buffer.from(plan.artifacts[view.expected.artifact].content).toString("base64");
    return `printf '%s' '${content}' | base64 -d | ${view.expected.command}`;
}

export function parseReadOutput(output: string): LiveState {
    const state: LiveState = { files: {}, running: {}, missingPackages: {} };
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
        } else if (kind === "X" && fields[0] === "openssh" && fields[1]) {
            state.openssh = fields[1];
        }
    }
    for (const [path, file] of Object.entries(state.files)) if (file) file.sha256 = hashes[path] ?? "";
    return state;
}

function heredoc(tag: string, body: string): string {
    return `<<'${tag}'\n${body}\n${tag}`;
}

function base64Lines(content: string): string {
    return (Buffer.from(content, "utf8").toString("base64").match(/.{1,76}/g) ?? [""]).join("\n");
}

/** Transactions kept on the host per concern (each holds backups of the files it replaced). */
export const KEEP_TRANSACTIONS = 5;

/** Exit codes of an apply script, by the step that failed. */
export const applyExit = { write: 10, packages: 11, prepare: 12, validate: 13, snapshot: 14, activate: 15, verify: 16 } as const;
export type ApplyStep = keyof typeof applyExit;

export function stepOfExit(code: number): ApplyStep | undefined {
    return (Object.keys(applyExit) as ApplyStep[]).find((step) => applyExit[step] === code);
}

/**
 * One concern's transaction: back up, write atomically (temp file + rename, mode and owner
 * set before the rename), validate with the real tool, snapshot the running state, arm the
 * rollback timer when the change could lock the operator out, activate, verify. Any failure
 * restores the backups and the running state, prints the tool's own message and exits with
 * the step's code. The first transaction of a concern also keeps the originals for delete.
 */
export function applyScript(plan: FilledPlan, options: { txid: string; os: OsFamily; installPackages: string[]; confirmSeconds: number }): string {
    const tx = `${STATE_DIR}/tx/${options.txid}`;
    const originals = `${STATE_DIR}/originals/${plan.concern}`;
    const files = plan.artifacts.map((artifact, index) => ({ ...artifact, index, content: plan.contents[index] }));
    const rollback = [
        `export MORH_TX='${tx}' MORH_STATE='${tx}/state'`,
        ...files.map((file) => `if [ -e "$MORH_TX/backup/${file.index}" ]; then cp -a "$MORH_TX/backup/${file.index}" '${file.path}'; else rm -f '${file.path}'; fi`),
        ...(plan.rollback.length > 0 ? plan.rollback : plan.activate).map((command) => `( ${command} ) || echo "rollback step failed: ${command.replace(/["$`\\]/g, ".").slice(0, 60)}"`),
    ].join("\n");
    const step = (name: ApplyStep, command: string) => `( ${command} ) >"$TX/out" 2>&1 || { cat "$TX/out"; fail ${applyExit[name]} '${name}'; }`;
    const lines = [
        "set -u",
        "umask 077",
        `TX='${tx}'`,
        'mkdir -p "$TX/backup"',
        `fail() { echo "MORH-FAILED $2"; sh "$TX/rollback.sh" >"$TX/rollback.log" 2>&1 || cat "$TX/rollback.log"; rm -f "$TX/pending"; exit $1; }`,
        `cat > "$TX/rollback.sh" ${heredoc("MORH_ROLLBACK", rollback)}`,
        ...(options.installPackages.length > 0 ? [step("packages", installers[options.os](options.installPackages))] : []),
        // The files as they were before mor-harden first wrote them, for delete.
        `if [ ! -d '${originals}' ]; then mkdir -p '${originals}.new' && : > '${originals}.new/manifest' && {`,
        ...files.map((file) => `  if [ -e '${file.path}' ]; then cp -a '${file.path}' '${originals}.new/${file.index}'; fi; echo '${file.index} ${file.path}' >> '${originals}.new/manifest'`),
        `} && mv '${originals}.new' '${originals}'; fi`,
        ...files.flatMap((file) => [
            `if [ -e '${file.path}' ]; then cp -a '${file.path}' "$TX/backup/${file.index}"; fi`,
            `mkdir -p "$(dirname '${file.path}')" && base64 -d > '${file.path}.morh-new' ${heredoc("MORH_CONTENT", base64Lines(file.content))}`,
            `chmod ${file.mode} '${file.path}.morh-new' && chown ${file.owner}:${file.group} '${file.path}.morh-new' && mv -f '${file.path}.morh-new' '${file.path}' || { rm -f '${file.path}.morh-new'; fail ${applyExit.write} 'write ${file.path}'; }`,
        ]),
        ...plan.prepare.map((command) => step("prepare", command)),
        ...plan.validate.map((command) => step("validate", command)),
        'export MORH_TX="$TX" MORH_STATE="$TX/state"',
        'mkdir -p "$MORH_STATE"',
        ...plan.snapshot.map((command) => step("snapshot", command)),
    ];
    if (plan.needsConfirm) {
        // Armed before activation, in its own session so that losing the SSH connection does not stop
        // it: unless a NEW login confirms in time, the host rolls itself back.
        lines.push(
            'touch "$TX/pending"',
            `setsid sh -c 'sleep ${options.confirmSeconds}; mv "$0/pending" "$0/expired" 2>/dev/null && sh "$0/rollback.sh" > "$0/rollback.log" 2>&1' "$TX" </dev/null >/dev/null 2>&1 &`,
            'echo $! > "$TX/timer.pid"',
        );
    }
    lines.push(
        ...plan.activate.map((command) => step("activate", command)),
        ...plan.verify.map((command) => step("verify", command)),
        // The canonical form of the new artifacts' live views, for the next drift check.
        ...plan.liveViews.flatMap((_, index) => (viewCachePath(plan, index) ? [`live=''; ${expectedOfView(plan, index, true)}`] : [])),
        // Keep the last transactions of this concern for forensics; older ones go.
        `ls -1d '${STATE_DIR}/tx/'*-${plan.concern}-* 2>/dev/null | sort | head -n -${KEEP_TRANSACTIONS} | xargs -r rm -rf`,
        "echo MORH-APPLIED",
    );
    return lines.join("\n") + "\n";
}

/** Run over a NEW connection: the login worked, so the change stays. */
export function confirmScript(txid: string): string {
    const tx = `${STATE_DIR}/tx/${txid}`;
    return `if mv '${tx}/pending' '${tx}/confirmed' 2>/dev/null; then kill -- -"$(cat '${tx}/timer.pid')" 2>/dev/null; echo MORH-CONFIRMED; else echo MORH-EXPIRED; exit 3; fi\n`;
}

/** Run over the old connection when the new login failed: roll back now instead of waiting for the timer. */
export function rollbackNowScript(txid: string): string {
    const tx = `${STATE_DIR}/tx/${txid}`;
    return `if mv '${tx}/pending' '${tx}/expired' 2>/dev/null; then kill -- -"$(cat '${tx}/timer.pid')" 2>/dev/null; sh '${tx}/rollback.sh'; echo MORH-ROLLED-BACK; else echo MORH-ALREADY-DONE; fi\n`;
}

/** Puts back the files as they were before mor-harden first wrote them, then undoes activation. */
export function deleteScript(plan: ConcernPlan): string {
    const originals = `${STATE_DIR}/originals/${plan.concern}`;
    return [
        "set -u",
        `[ -f '${originals}/manifest' ] || { echo 'MORH-NO-ORIGINALS'; }`,
        ...plan.artifacts.map((artifact, index) => `if [ -e '${originals}/${index}' ]; then cp -a '${originals}/${index}' '${artifact.path}'; else rm -f '${artifact.path}'; fi`),
        ...(plan.deactivate.length > 0 ? plan.deactivate : plan.activate).map((command) => `( ${command} ) || echo "deactivate step failed"`),
        `rm -rf '${originals}'`,
        "echo MORH-DELETED",
    ].join("\n") + "\n";
}
