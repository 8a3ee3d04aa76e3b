// Runs one method of a serialized provider the way the Pulumi engine does: the text produced by
// `pulumi.runtime.serializeFunction` loaded with require-from-string in a fresh Node process
// (as @pulumi/pulumi/cmd/dynamic-provider does), then `handler()` for the provider object.
//   node provider-harness.js PROVIDER_TEXT_FILE METHOD ARGS_JSON_FILE
import { readFileSync } from "node:fs";
import requireFromString from "require-from-string";

async function main(): Promise<void> {
    const [providerFile, method, argsFile] = process.argv.slice(2);
    const provider = requireFromString(readFileSync(providerFile, "utf8")).handler();
    const args = JSON.parse(readFileSync(argsFile, "utf8")) as unknown[];
    const result = await provider[method](...args);
    process.stdout.write(JSON.stringify({ ok: true, result: result ?? null }) + "\n");
}

main().catch((error: Error) => {
    process.stdout.write(JSON.stringify({ ok: false, error: error.message }) + "\n");
    process.exitCode = 1;
});
