// Hash input vectors with circomlibjs's three Poseidon implementations, for tests/test_poseidon.py.
//
// stdin: a JSON list of input lists (decimal strings); stdout: {"wasm": [...], "optimized": [...],
// "reference": [...], "version": "..."}, each a list of decimal strings, one per input list.
// "wasm" is `buildPoseidon()` (circomlibjs's default `poseidon`), "optimized" `buildPoseidonOpt()`,
// "reference" `buildPoseidonReference()`.
import fs from "fs";
import path from "path";
import { fileURLToPath, pathToFileURL } from "url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pkgDir = path.join(root, "node_modules", "circomlibjs");
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
const { buildPoseidon, buildPoseidonOpt, buildPoseidonReference } = await import(pathToFileURL(path.join(pkgDir, "main.js")));

const vectors = JSON.parse(fs.readFileSync(0, "utf8"));
const out = { version: pkg.version };
for (const [name, build] of [["wasm", buildPoseidon], ["optimized", buildPoseidonOpt], ["reference", buildPoseidonReference]]) {
    const hash = await build();
    out[name] = vectors.map((inputs) => hash.F.toString(hash(inputs.map((x) => BigInt(x)))));
}
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0); // the wasm hasher keeps worker threads alive
