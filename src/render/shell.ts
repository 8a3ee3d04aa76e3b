// Shell text built from values: quoting, here-documents, whole scripts. Pure: the concerns'
// renderers and the effects layer (apply, drift, audit) share them.

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
    return (Buffer.from(content, "utf8").toString("base64").match(/.{1,76}/g) ?? [""]).join("\n");
}

/**
 * Every host script runs as one brace group: sh parses it whole before running any of it, so a
 * script cut short on its way (a lost connection) is a syntax error and runs not at all. Its
 * stdin is closed: no step can read the rest of the script.
 */
export function wholeScript(lines: string[]): string {
    return ["{", "exec </dev/null", ...lines, "}"].join("\n") + "\n";
}
