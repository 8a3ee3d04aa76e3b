import { z } from "zod";
import { token } from "../config/values";

/** A list's name: part of its sets' names (morh-bl-NAME-4/-6, ipset allows 31 characters). */
const blocklistName = token("a list name (letters, digits, '-' and '_', at most 20)", (v) => /^[A-Za-z0-9_-]{1,20}$/.test(v));

/**
 * `firewall.blocklists` entries: `{ name, file }`; the file (relative to the stack file, or
 * absolute) is read and parsed when the stack is loaded, into `entries`, before any host is touched.
 */
export const blocklistSchema = z
    .object({
        name: blocklistName,
        file: z.string().min(1),
        /** Filled in from `file` when the stack is loaded. */
        entries: z.object({ v4: z.array(z.string()), v6: z.array(z.string()) }).strict(),
    })
    .strict();

export type Blocklist = z.infer<typeof blocklistSchema>;

export const blocklistsSchema = z
    .array(blocklistSchema)
    .default([])
    .superRefine((lists, ctx) => {
        const seen = new Set<string>();
        lists.forEach((list, index) => {
            if (seen.has(list.name)) ctx.addIssue({ code: "custom", path: [index, "name"], message: `"${list.name}" is used by another list` });
            seen.add(list.name);
        });
    });
