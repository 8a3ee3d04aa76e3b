// Asterisk's configuration format, as its config loader reads it: `[section]`, `key = value` and
// `key => value`, comments from `;` (`\;` is a literal semicolon, `;-- ... --;` a block),
// `#include` / `#tryinclude` (relative to /etc/asterisk, globs allowed), templates
// `[name](!)`, `[name](template,...)` and `[name](+)` (more of an earlier section). Pure: the
// files come in as a map of path to content (what the host sent).

export const ASTERISK_DIR = "/etc/asterisk";

export interface ConfigEntry {
    key: string;
    value: string;
    file: string;
    line: number;
}

export interface ConfigSection {
    name: string;
    file: string;
    line: number;
    /** `(!)`: a template, not a device or user. */
    template: boolean;
    /** Every entry in effect: the templates' first (in order), then the section's own. */
    entries: ConfigEntry[];
}

const basename = (path: string) => path.slice(path.lastIndexOf("/") + 1);
export const shortPath = (path: string) => (path.startsWith(`${ASTERISK_DIR}/`) ? path.slice(ASTERISK_DIR.length + 1) : path);

/** `#include` targets as paths; a glob matches the files the host sent. */
function includeTargets(argument: string, files: Record<string, string>): string[] {
    const name = argument.trim().replace(/^["<](.*)[">]$/, "$1");
    const path = name.startsWith("/") ? name : `${ASTERISK_DIR}/${name}`;
    if (!/[*?[]/.test(path)) return [path];
    const pattern = new RegExp(
        "^" +
            path
                .replace(/[.+^${}()|\\]/g, "\\$&")
                .replace(/\*/g, "[^/]*")
                .replace(/\?/g, "[^/]") +
            "$",
    );
    return Object.keys(files)
        .filter((candidate) => pattern.test(candidate))
        .sort();
}

/** The line with its comment removed (`\;` kept as `;`); `inBlock` carries a `;--` block across lines. */
function stripComment(line: string, state: { inBlock: boolean }): string {
    let out = "";
    for (let i = 0; i < line.length; i++) {
        if (state.inBlock) {
            if (line.startsWith("--;", i)) {
                state.inBlock = false;
                i += 2;
            }
            continue;
        }
        if (line[i] === "\\" && line[i + 1] === ";") {
            out += ";";
            i++;
        } else if (line.startsWith(";--", i)) {
            state.inBlock = true;
            i += 2;
        } else if (line[i] === ";") {
            break;
        } else {
            out += line[i];
        }
    }
    return out.trim();
}

/** Parses `main` with its includes; files the host did not send (absent) add nothing. */
export function parseAsteriskConfig(files: Record<string, string>, main: string): ConfigSection[] {
    const sections: ConfigSection[] = [];
    const byName = new Map<string, ConfigSection>();
    let current: ConfigSection | undefined;
    const read = (path: string, depth: number) => {
        const text = files[path];
        if (text === undefined || depth > 10) return;
        const state = { inBlock: false };
        text.split("\n").forEach((raw, index) => {
            const line = stripComment(raw, state);
            if (!line) return;
            const lineNumber = index + 1;
            const directive = /^#\s*(include|tryinclude)\s+(.+)$/.exec(line);
            if (directive) {
                for (const target of includeTargets(directive[2], files)) read(target, depth + 1);
                return;
            }
            if (line.startsWith("#")) return; // #exec and the like: never followed
            const header = /^\[([^\]]+)\]\s*(?:\(([^)]*)\))?/.exec(line);
            if (header) {
                const options = (header[2] ?? "")
                    .split(",")
                    .map((option) => option.trim())
                    .filter(Boolean);
                const name = header[1].trim();
                if (options.includes("+") && byName.has(name)) {
                    current = byName.get(name)!;
                    return;
                }
                const inherited = options.filter((option) => option !== "!" && option !== "+").flatMap((template) => byName.get(template)?.entries ?? []);
                current = { name, file: path, line: lineNumber, template: options.includes("!"), entries: [...inherited] };
                sections.push(current);
                byName.set(name, current);
                return;
            }
            const assignment = /^([^=]+?)\s*=>?\s*(.*)$/.exec(line);
            if (assignment && current)
                current.entries.push({ key: assignment[1].trim().toLowerCase(), value: assignment[2].trim(), file: path, line: lineNumber });
        });
    };
    read(main, 0);
    return sections;
}

/** The last value of a key in effect (Asterisk keeps the last for single-valued keys). */
export function lastEntry(section: ConfigSection | undefined, key: string): ConfigEntry | undefined {
    return section?.entries.filter((entry) => entry.key === key).at(-1);
}

export const valueOf = (section: ConfigSection | undefined, key: string): string | undefined => lastEntry(section, key)?.value;

/** Asterisk's ast_true / ast_false. */
export const isTrue = (value: string | undefined) => value !== undefined && /^(yes|true|y|t|1|on)$/i.test(value.trim());
export const isFalse = (value: string | undefined) => value !== undefined && /^(no|false|n|f|0|off)$/i.test(value.trim());

/** `file:line` as people read it (relative to /etc/asterisk). */
export const where = (entry: { file: string; line: number }) => `${shortPath(entry.file)}:${entry.line}`;

/** Whether a module is switched off in modules.conf (`noload => chan_iax2.so`). */
export function moduleDisabled(files: Record<string, string>, module: string): boolean {
    const modules = parseAsteriskConfig(files, `${ASTERISK_DIR}/modules.conf`).find((section) => section.name === "modules");
    return (modules?.entries ?? []).some((entry) => entry.key === "noload" && basename(entry.value).replace(/\.so$/, "") === module);
}
