// `--resolve NAME=ADDRESSES` pinned names first, DNS for the others.
import { dnsResolver, type Resolver } from "../config/resolve";

export function staticResolver(pinned: Record<string, string[]>): Resolver {
    return (name) => (pinned[name] ? Promise.resolve(pinned[name]) : dnsResolver(name));
}
