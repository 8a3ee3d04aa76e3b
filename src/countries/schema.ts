// `firewall.countries`: the guide's "Block Countries", as ipsets from a pinned country database.
//   block:     countries whose addresses are dropped on every port, before every service (as a
//              blocklist is; trusted sources are exempt).
//   services:  a public service open only to these countries (trusted sources always reach it).
//   database:  the operator's own `first,last,country` CSV instead of the shipped database.
import { z } from "zod";
import { token } from "../config/values";
import { serviceNames } from "../firewall/services";
import { isCountryCode } from "./codes";

const countryCode = token("an ISO 3166-1 alpha-2 country code (two capital letters, e.g. DE)", isCountryCode);
const countryList = z.array(countryCode).min(1, { error: "names no country" });

const entries = z.object({ v4: z.array(z.string()), v6: z.array(z.string()) }).strict();

export const countriesSchema = z
    .object({
        /** The operator's own database (relative to the stack file, or absolute); the shipped one by default. */
        database: z.string().min(1).optional(),
        block: z.array(countryCode).default([]),
        /** Service names are checked below, to name the key: a record's own key error names none. */
        services: z.record(z.string(), countryList).default({}),
        /** Filled in from the database when the stack is loaded (countries/database.ts). */
        compiled: z
            .object({
                database: z.object({ name: z.string(), version: z.string(), date: z.string(), licence: z.string() }).strict(),
                block: entries,
                services: z.record(z.string(), entries),
            })
            .strict()
            .optional(),
    })
    .strict()
    .superRefine((countries, ctx) => {
        for (const name of Object.keys(countries.services)) {
            if (!(serviceNames as string[]).includes(name)) {
                ctx.addIssue({ code: "custom", path: ["services", name], message: `${JSON.stringify(name)} is not a service (${serviceNames.join(", ")})` });
            }
        }
        const seen = new Set<string>();
        countries.block.forEach((code, index) => {
            if (seen.has(code)) ctx.addIssue({ code: "custom", path: ["block", index], message: `${code} is listed twice` });
            seen.add(code);
        });
        if (usesCountries(countries) && countries.compiled === undefined) {
            ctx.addIssue({ code: "custom", path: ["database"], message: "the country database was not read (the stack must be loaded from its file)" });
        }
    })
    .optional();

export type CountriesConfig = NonNullable<z.infer<typeof countriesSchema>>;

/** Whether the stack blocks countries or opens a service to some only. */
export const usesCountries = (countries: Pick<CountriesConfig, "block" | "services"> | undefined) =>
    countries !== undefined && (countries.block.length > 0 || Object.keys(countries.services).length > 0);
