// Secrets kept out of what people read (errors, tool output, reports).

/** Tool output can quote what it read: never let a secret's text through (each line of it of 8 characters or more). */
export function redact(text: string, secrets: Record<string, string | undefined>): string {
    let result = text;
    for (const value of Object.values(secrets)) {
        if (!value) continue;
        for (const line of value
            .split("\n")
            .map((l) => l.trim())
            .filter((l) => l.length >= 8))
            result = result.split(line).join("[redacted]");
    }
    return result;
}
