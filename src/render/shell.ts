// Shell text built from values: quoting, here-documents, whole scripts. Pure: the concerns'
// renderers and the effects layer (apply, drift, audit) share them.
import { gzipSync } from "node:zlib";

/** One shell word holding `text` as it is: nothing in it is expanded or run. */
export function shellQuote(text: string): string {
    return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A quoted here-document: `body` reaches the command as it is (no expansion), ended by `tag` alone on its line. */
export function heredoc(tag: string, body: string): string {
    return `<<'${tag}'\n${body}\n${tag}`;
}

/** `content` as base64 in lines of 76 characters (for a here-document into `base64 -d`). */
export function base64Lines(content: string): string {
    return (
        Buffer.from(content, "utf8")
            .toString("base64")
            .match(/.{1,76}/g) ?? [""]
    ).join("\n");
}

/**
 * Every host script runs as one brace group: sh parses it whole before running any of it, so a
 * script cut short on its way (a lost connection) is a syntax error and runs not at all. Its
 * stdin is closed: no step can read the rest of the script.
 */
export function wholeScript(lines: string[]): string {
    return ["{", "exec </dev/null", ...lines, "}"].join("\n") + "\n";
}

/**
 * A script as a smaller script that runs it: gzip'd, base64 in a quoted heredoc, inflated by the
 * host's own gzip into a second `sh -s` (a shell script shrinks to about a third that way). The
 * outer shell reads the whole heredoc before it runs the pipe; a copy cut short on its way
 * inflates to a prefix of `script`, which as a whole brace group (wholeScript) is a syntax error
 * and runs not at all. The exit status is the inner shell's. Used for drift's read instead of
 * ssh2's own zlib compression: ssh2 1.17 throws "Invalid Zlib instance" from a channel closed
 * after its connection was lost (test/apply/protocol.test.ts found it), which no caller can catch.
 */
export function gzippedScript(script: string): string {
    const packed = (
        gzipSync(Buffer.from(script, "utf8"), { level: 9 })
            .toString("base64")
            .match(/.{1,76}/g) ?? [""]
    ).join("\n");
    return `base64 -d <<'MORH_GZ' | gzip -dc | sh -s\n${packed}\nMORH_GZ\n`;
}

/** The scratch directory of the reads that run at once (removed when they are printed). */
const PARTS_DIR = "morh_parts";

/**
 * Shell lines that run independent groups of read-only commands at once: each group a function
 * whose output goes to its own file of a private temporary directory, printed in the groups' order
 * when all have ended. A host's reads are mostly process starts (stat, sha256sum, sshd -T,
 * fail2ban's and the firewall's views), about 100-200 ms one after another on a lab host; at once
 * they take as long as the slowest. Without a temporary directory (a full /tmp) the groups run one
 * after another, as before. Each group runs in its own subshell: its variables are its own.
 * `between` runs in the script's own shell while the groups run (what must `wait` for a job this
 * shell started, such as a background view), its output after theirs.
 */
export function readsAtOnce(allGroups: string[][], between: string[] = []): string[] {
    // An empty function body is a syntax error in sh.
    const groups = allGroups.filter((lines) => lines.length > 0);
    if (groups.length === 0) return between;
    const group = (index: number) => `morh_part_${index}`;
    const output = (index: number) => `"$${PARTS_DIR}/${index}"`;
    return [
        ...groups.map((lines, index) => [`${group(index)}() {`, ...lines, "}"].join("\n")),
        `${PARTS_DIR}=$(mktemp -d 2>/dev/null) || ${PARTS_DIR}=''`,
        `if [ -n "$${PARTS_DIR}" ]; then`,
        ...groups.map((_, index) => `${group(index)} > ${output(index)} &`),
        "else",
        ...groups.map((_, index) => group(index)),
        "fi",
        ...between,
        `if [ -n "$${PARTS_DIR}" ]; then wait; cat ${groups.map((_, index) => output(index)).join(" ")}; rm -rf "$${PARTS_DIR}"; fi`,
    ];
}

/** How often waitUntil looks: a daemon that re-executes itself on reload is back within a few tens of ms. */
const WAIT_STEP_SECONDS = 0.02;

/**
 * Shell that waits, at most about `seconds`, until `condition` (a command list) succeeds; else
 * prints `failure` and exits 1 (it runs as a transaction's step, in a subshell). It looks every
 * 20 ms: a verify that slept 0.2 s between looks spent most of that after sshd's re-exec had
 * already ended (about 180 ms of each sshd change, issue 23).
 */
export function waitUntil(condition: string, failure: string, seconds = 2): string {
    const tries = Math.ceil(seconds / WAIT_STEP_SECONDS);
    return `morh_try=0; until ${condition}; do [ "$morh_try" -lt ${tries} ] || { echo ${shellQuote(failure)}; exit 1; }; sleep ${WAIT_STEP_SECONDS}; morh_try=$((morh_try + 1)); done`;
}
