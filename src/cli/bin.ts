// Where the build puts the CLI (src/cli/bundle.ts): dist/bin/, one file a command beside the
// entry, which is the package's bin. Tests and benchmarks run the entry, as users do.
import { join } from "node:path";

export const BIN_DIR = join(__dirname, "..", "..", "bin");
export const CLI_FILE = join(BIN_DIR, "mor-harden.js");
