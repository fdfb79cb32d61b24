#!/usr/bin/env node
// Checks KQL queries offline with Microsoft's Kusto.Language parser and semantic analyser
// (@kusto/language-service-next) against the advanced hunting tables' columns kept as data.
//
//   node check.js <tables.json> < queries.json
//
// stdin:  [{"id": "...", "kql": "..."}, ...]
// stdout: [{"id": "...", "diagnostics": [{"message": "...", "start": n, "length": n}]}, ...]
// Exit 0 whenever the check ran (diagnostics are data, not a failure); non-zero with a message
// on stderr when the input or the tables cannot be used, so a caller never mistakes a broken
// run for a clean one.
'use strict';

const fs = require('fs');

require('@kusto/language-service-next/bridge.min.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.min.js');
// The bridge defines `Kusto` as a global.
const K = globalThis.Kusto.Language;

// The parser reads unknown type names in a schema string as type `unknown` without complaint,
// which would let any expression on such a column pass; spell the aliases it does not know.
const TYPE_ALIASES = { integer: 'int', boolean: 'bool', double: 'real', float: 'real', uuid: 'guid', uniqueid: 'guid' };

function fail(message) {
  process.stderr.write(`kql-check: ${message}\n`);
  process.exit(2);
}

function kustoType(table, column, type) {
  if (typeof type !== 'string' || type === '') fail(`table ${table}, column ${column}: no type`);
  const lower = type.toLowerCase();
  return TYPE_ALIASES[lower] || lower;
}

// Column names are quoted in the schema so that a name Kusto reserves still parses.
function quoteName(name) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `['${name.replace(/'/g, "\\'")}']`;
}

function buildTable(name, spec) {
  if (!spec || !Array.isArray(spec.columns) || spec.columns.length === 0) {
    fail(`table ${name}: no "columns" array`);
  }
  const parts = spec.columns.map((col) => {
    if (!Array.isArray(col) || col.length !== 2 || typeof col[0] !== 'string') {
      fail(`table ${name}: a column is not [name, type]: ${JSON.stringify(col)}`);
    }
    return `${quoteName(col[0])}:${kustoType(name, col[0], col[1])}`;
  });
  const table = new K.Symbols.TableSymbol.$ctor7(name, `(${parts.join(', ')})`, null);
  checkTypesKnown(name, spec.columns, table);
  return table;
}

function checkTypesKnown(name, columns, table) {
  const cols = table.Columns;
  if (cols.Count !== columns.length) {
    fail(`table ${name}: ${columns.length} columns given, the parser read ${cols.Count}`);
  }
  for (let i = 0; i < cols.Count; i++) {
    const c = cols.getItem(i);
    if (c.Type.Name === 'unknown') fail(`table ${name}, column ${c.Name}: type "${columns[i][1]}" unknown to Kusto`);
  }
}

function loadGlobals(path) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (e) {
    fail(`cannot read tables from ${path}: ${e.message}`);
  }
  if (!doc || typeof doc.tables !== 'object' || doc.tables === null) fail(`${path}: no "tables" object`);
  const tables = Object.entries(doc.tables).map(([name, spec]) => buildTable(name, spec));
  const db = new K.Symbols.DatabaseSymbol.$ctor3('hunting', null, tables, false);
  return K.GlobalState.Default.WithDatabase(db);
}

function readQueries() {
  let input;
  try {
    input = JSON.parse(fs.readFileSync(0, 'utf8'));
  } catch (e) {
    fail(`stdin is not JSON: ${e.message}`);
  }
  if (!Array.isArray(input)) fail('stdin must be a JSON array of {"id", "kql"}');
  input.forEach((q, i) => {
    if (!q || typeof q.id !== 'string' || typeof q.kql !== 'string') {
      fail(`entry ${i} must have string "id" and "kql"`);
    }
  });
  return input;
}

function diagnose(query, globals) {
  const d = K.KustoCode.ParseAndAnalyze(query, globals).GetDiagnostics();
  const out = [];
  for (let i = 0; i < d.Count; i++) {
    const x = d.getItem(i);
    out.push({ message: x.Message, start: x.Start, length: x.Length });
  }
  return out;
}

function main() {
  const tablesPath = process.argv[2];
  if (!tablesPath) fail('usage: node check.js <tables.json> < queries.json');
  const globals = loadGlobals(tablesPath);
  const results = readQueries().map((q) => ({ id: q.id, diagnostics: diagnose(q.kql, globals) }));
  process.stdout.write(JSON.stringify(results) + '\n');
}

main();
