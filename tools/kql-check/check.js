// Checks KQL queries with Microsoft's Kusto.Language parser and semantic analyser against the
// advanced hunting tables' columns. Reads [{"id", "kql"}] on stdin, writes
// [{"id", "diagnostics": [{"message", "start", "length"}]}] on stdout.
// Usage: node check.js ../../data/hunting/tables.json < queries.json
'use strict';
const fs = require('fs');
require('@kusto/language-service-next/bridge.min.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.min.js');
const K = Kusto.Language;

function fail(message) {
  process.stderr.write(`kql-check: ${message}\n`);
  process.exit(2);
}

const tablesPath = process.argv[2];
if (!tablesPath) fail('usage: node check.js TABLES.json < queries.json');
let tables;
try {
  tables = JSON.parse(fs.readFileSync(tablesPath, 'utf8')).tables;
} catch (e) {
  fail(`cannot read the tables from ${tablesPath}: ${e.message}`);
}
const symbols = Object.entries(tables).map(([name, t]) => {
  const schema = '(' + t.columns.map(([col, type]) => `['${col}']:${type}`).join(', ') + ')';
  return new K.Symbols.TableSymbol.$ctor7(name, schema, null);
});
const db = new K.Symbols.DatabaseSymbol.$ctor3('hunting', null, symbols, false);
const globals = K.GlobalState.Default.WithDatabase(db);

let queries;
try {
  queries = JSON.parse(fs.readFileSync(0, 'utf8'));
} catch (e) {
  fail(`stdin is not a JSON array of {"id", "kql"}: ${e.message}`);
}
if (!Array.isArray(queries)) fail('stdin is not a JSON array');
const out = queries.map(({ id, kql }) => {
  if (typeof kql !== 'string') fail(`query ${id} has no "kql" string`);
  const d = K.KustoCode.ParseAndAnalyze(kql, globals).GetDiagnostics();
  const diagnostics = [];
  for (let i = 0; i < d.Count; i++) {
    const x = d.getItem(i);
    diagnostics.push({ message: x.Message, start: x.Start, length: x.Length });
  }
  return { id, diagnostics };
});
process.stdout.write(JSON.stringify(out) + '\n');
