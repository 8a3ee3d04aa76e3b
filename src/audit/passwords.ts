// The guide's password rules (lines 6-10): at least 12 characters, with letters, digits and
// special characters. The answer names the rules a secret breaks and never holds the secret.

export const MIN_PASSWORD_LENGTH = 12;

/** The rules `secret` breaks, in words; empty when it follows them all. */
export function passwordWeaknesses(secret: string | undefined): string[] {
    if (secret === undefined || secret === "") return ["no secret at all"];
    const broken: string[] = [];
    if ([...secret].length < MIN_PASSWORD_LENGTH) broken.push(`shorter than ${MIN_PASSWORD_LENGTH} characters`);
    if (!/[A-Za-z]/.test(secret)) broken.push("no letters");
    if (!/[0-9]/.test(secret)) broken.push("no digits");
    if (!/[^A-Za-z0-9]/.test(secret)) broken.push("no special characters");
    return broken;
}
