// Tokenizes the repository's examples with the grammars, as VS Code does (vscode-textmate with
// the Oniguruma regex engine), and checks the scopes of chosen tokens. `npm test`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "../../..");
const wasm = readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
await oniguruma.loadWASM(wasm);

const files = {
  "source.pipe": join(here, "../syntaxes/pipe.tmLanguage.json"),
  "source.thrift.pipe": join(here, "../syntaxes/thrift.tmLanguage.json"),
};
const registry = new vsctm.Registry({
  onigLib: Promise.resolve({
    createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
    createOnigString: (s) => new oniguruma.OnigString(s),
  }),
  loadGrammar: async (scope) =>
    files[scope] ? vsctm.parseRawGrammar(readFileSync(files[scope], "utf8"), files[scope]) : null,
});

/** Every token of `path` as { text, scopes, line }. */
async function tokenize(scope, path) {
  const grammar = await registry.loadGrammar(scope);
  const lines = readFileSync(join(repo, path), "utf8").split("\n");
  let state = vsctm.INITIAL;
  const tokens = [];
  lines.forEach((line, i) => {
    const r = grammar.tokenizeLine(line, state);
    for (const t of r.tokens) {
      tokens.push({ text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes, line: i + 1 });
    }
    state = r.ruleStack;
  });
  return tokens;
}

let checks = 0;
/** The token equal to `text` (the `nth` one, on `line` if given) has a scope starting with `scope`. */
function expectScope(tokens, text, scope, { nth = 0, line } = {}) {
  const found = tokens.filter((t) => t.text.trim() === text && (line === undefined || t.line === line));
  assert.ok(found.length > nth, `no token ${JSON.stringify(text)}${line ? ` on line ${line}` : ""}`);
  const t = found[nth];
  assert.ok(
    t.scopes.some((s) => s.startsWith(scope)),
    `${JSON.stringify(text)} (line ${t.line}) has scopes ${t.scopes.join(" ")}, not ${scope}`,
  );
  checks++;
}

const ingest = await tokenize("source.pipe", "examples/partner_ingest/pipeline.pipe");
expectScope(ingest, "// The nested loan-application ingest of DESIGN.md §1, the same workload as", "comment.line.double-slash.pipe");
expectScope(ingest, "namespace", "keyword.other.namespace.pipe");
expectScope(ingest, "credit.partner_ingest", "entity.name.namespace.pipe");
expectScope(ingest, "include", "keyword.control.import.pipe");
expectScope(ingest, "source", "storage.type.source.pipe");
expectScope(ingest, "applications", "entity.name.type.source.pipe");
expectScope(ingest, "event_time", "variable.other.property.pipe");
expectScope(ingest, "5m", "constant.numeric.duration.pipe");
expectScope(ingest, "files", "support.function.connector.pipe");
expectScope(ingest, "explode", "keyword.other.step.pipe");
expectScope(ingest, "hmac", "support.function.privacy.pipe");
expectScope(ingest, "if", "keyword.control.conditional.pipe");
expectScope(ingest, "0", "constant.numeric.integer.pipe", { line: 25 });
expectScope(ingest, "??", "keyword.operator.coalesce.pipe");
expectScope(ingest, "where", "keyword.other.step.pipe");
expectScope(ingest, "sink", "storage.type.sink.pipe");
expectScope(ingest, "warehouse", "entity.name.type.sink.pipe");
expectScope(ingest, "\"user.unique_id\"", "string.quoted.double.privacy-category.pipe");
expectScope(ingest, "pseudonymized", "constant.language.privacy-form.pipe");
expectScope(ingest, "->", "keyword.operator.edge.pipe");
expectScope(ingest, "|", "keyword.operator.pipe.pipe");

const exprs = await tokenize("source.pipe", "tests/cases/valid/expressions.pipe");
expectScope(exprs, "@2023-01-01T00:00:00Z", "constant.other.timestamp.pipe");
expectScope(exprs, "@2023-01-01", "constant.other.timestamp.pipe");

const windows = await tokenize("source.pipe", "examples/member_features/pipeline.pipe");
expectScope(windows, "tumbling", "support.function.connector.pipe");
expectScope(windows, "1d", "constant.numeric.duration.pipe");
expectScope(windows, "count_distinct", "support.function.aggregate.pipe");
expectScope(windows, "aggregate", "keyword.other.step.pipe");

const thrift = await tokenize("source.thrift.pipe", "examples/partner_ingest/schemas/partner.thrift");
expectScope(thrift, "struct", "storage.type.thrift");
expectScope(thrift, "LoanApplication", "entity.name.type.thrift");
expectScope(thrift, "required", "storage.modifier.thrift");
expectScope(thrift, "pii", "entity.other.attribute-name.annotation.privacy.thrift");
expectScope(thrift, "mask", "entity.other.attribute-name.annotation.privacy.thrift");
expectScope(thrift, "\"user.unique_id\"", "string.quoted.double.thrift");
expectScope(thrift, "i64", "storage.type.builtin.thrift");

// Every example and case file tokenizes to the end without a rule running away (an unclosed
// block comment or string would swallow the rest of the file).
for (const path of ["examples/partner_stream/pipeline.pipe", "examples/order_windows/pipeline.pipe"]) {
  const tokens = await tokenize("source.pipe", path);
  const last = tokens.filter((t) => t.text.trim() !== "").at(-1);
  assert.ok(!last.scopes.some((s) => s.startsWith("comment.block") || s.startsWith("string")), `${path}: ${last.scopes}`);
  checks++;
}
console.log(`grammar: ${checks} checks passed`);
