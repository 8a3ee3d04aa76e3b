import type { HostFacts } from "../config/os";
import type { ResolvedSources } from "../config/resolve";
import type { HostConfig } from "../config/schema";

/** Everything a renderer may look at: validated config, facts about the host, resolved sources. */
export interface RenderInput {
    /** The stack name, written into every file's header. */
    stack: string;
    config: HostConfig;
    facts: HostFacts;
    sources: ResolvedSources;
}
