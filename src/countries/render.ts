// The country sets (filled, swapped, persisted and drifted by the blocklists concern, like a
// list's) and the firewall's matches on them.
import { familySuffix, type Family } from "../config/family";
import type { BlocklistEntries } from "../blocklists/parse";
import { usesCountries, type CountriesConfig } from "./schema";

/** The blocked countries' set of a family. */
export const countryBlockSet = (family: Family) => `morh-cc-block-${familySuffix[family]}`;
/** How the sets that admit begin (every other set of ours drops). */
export const ADMITTING_SET_PREFIX = "morh-cc-in-";
/** The set of the countries a service is open to (service names are at most 13 characters: 31 for ipset). */
export const countryServiceSet = (service: string, family: Family) => `${ADMITTING_SET_PREFIX}${service}-${familySuffix[family]}`;

/** Every country set of a stack with its entries (none without `firewall.countries`). */
export function countrySets(countries: CountriesConfig | undefined): { set: string; family: Family; entries: string[] }[] {
    const compiled = countries?.compiled;
    if (!usesCountries(countries) || compiled === undefined) return [];
    const sets = (name: (family: Family) => string, entries: BlocklistEntries) =>
        (["v4", "v6"] as const).map((family) => ({ set: name(family), family, entries: entries[family] }));
    return [
        ...(countries!.block.length > 0 ? sets(countryBlockSet, compiled.block) : []),
        ...Object.keys(countries!.services)
            .sort()
            .flatMap((service) => sets((family) => countryServiceSet(service, family), compiled.services[service] ?? { v4: [], v6: [] })),
    ];
}

/** The match a rule of a service open to some countries only carries (empty for the others). */
export function countryMatch(countries: CountriesConfig | undefined, service: string, family: Family): string {
    return countries?.services[service] ? ` -m set --match-set ${countryServiceSet(service, family)} src` : "";
}

/** The preview's lines: the database, and each set's size. */
export function describeCountries(countries: CountriesConfig | undefined): string[] {
    if (!usesCountries(countries) || !countries!.compiled) return [];
    const { database } = countries!.compiled;
    const sizes = countrySets(countries).map(({ set, entries }) => `${set} ${entries.length}`);
    return [
        `countries from ${database.name} ${database.version} (${database.date ? `${database.date}; ` : ""}${database.licence})`,
        ...(countries!.block.length > 0 ? [`blocked on every port (trusted sources exempt): ${countries!.block.join(" ")}`] : []),
        ...Object.entries(countries!.services).map(([service, codes]) => `${service} open only to ${(codes ?? []).join(" ")} (and trusted sources)`),
        `country sets: ${sizes.join(", ")}`,
    ];
}
