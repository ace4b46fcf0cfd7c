// Fails, saying why, when the running Node is older than package-lock.json's
// packages declare (engines.node), before npm ci and the builds fail in
// less clear ways. Plain ES2017 so that an old Node can run it.
'use strict';
const fs = require('fs');
const path = require('path');

// Packages whose engines field asks for more than they need, as tested:
// warned about, not fatal.
const lenient = {
  'node_modules/@bufbuild/protoc-gen-es': 'declares Node >=22; generates code correctly on Node 20',
};

// NODE_ENGINES_AS=18.19.0 checks as if that Node were running (to try the check).
const cur = (process.env.NODE_ENGINES_AS || process.versions.node).replace(/^v/, '').split('.').map(Number);
const found = 'v' + cur.join('.');

function parts(v) {
  const p = v.replace(/^v/, '').split('.');
  return [0, 1, 2].map((i) => (p[i] === undefined || p[i] === 'x' || p[i] === 'X' || p[i] === '*' ? null : Number(p[i])));
}
function cmp(a, b) {
  for (let i = 0; i < 3; i++) {
    const d = (a[i] || 0) - (b[i] || 0);
    if (d) return d;
  }
  return 0;
}
function comparator(c) {
  const m = /^(>=|<=|>|<|=|\^|~)?v?([0-9xX*]+(?:\.[0-9xX*]+){0,2})(?:-[0-9A-Za-z.-]+)?$/.exec(c);
  if (!m) return true; // a form this check does not know: leave it to npm
  const op = m[1] || '';
  const p = parts(m[2]);
  const lo = p.map((x) => x || 0);
  switch (op) {
    case '>=': return cmp(cur, lo) >= 0;
    case '>': return cmp(cur, lo) > 0;
    case '<': return cmp(cur, lo) < 0;
    case '<=': return cmp(cur, lo) <= 0;
    case '^': return cmp(cur, lo) >= 0 && cur[0] === lo[0] && (lo[0] > 0 || cur[1] === lo[1]);
    case '~': return cmp(cur, lo) >= 0 && cur[0] === lo[0] && (p[1] === null || cur[1] === lo[1]);
    default: return p.every((x, i) => x === null || x === cur[i]);
  }
}
function satisfies(range) {
  return range.split('||').some((alt) => {
    alt = alt.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1');
    if (alt === '' || alt === '*') return true;
    const hy = /^(\S+)\s+-\s+(\S+)$/.exec(alt);
    if (hy) return comparator('>=' + hy[1]) && comparator('<=' + hy[2]);
    return alt.split(/\s+/).every(comparator);
  });
}

const lockFile = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8'));
const fatal = [];
for (const name of Object.keys(lock.packages || {})) {
  const pkg = lock.packages[name];
  const want = pkg.engines && pkg.engines.node;
  if (!want || pkg.optional || satisfies(want)) continue;
  const who = (name || 'the root package') + ' (package-lock.json)';
  if (lenient[name]) {
    console.log('warning: ' + who + ' ' + lenient[name] + '; found ' + found);
    continue;
  }
  fatal.push('Node ' + want + ' is required by ' + who + ', found ' + found);
}
if (fatal.length) {
  console.error(fatal.join('\n'));
  console.error('install a newer Node before running CI');
  process.exit(1);
}
console.log('Node ' + found + ' meets every engines.node of package-lock.json');
