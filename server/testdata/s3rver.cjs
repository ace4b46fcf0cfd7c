// Starts s3rver (the @20minutes/s3rver devDependency, which checks AWS
// Signature V4; its package ships no command) for server/s3rver_test.go:
//   node s3rver.cjs DIRECTORY BUCKET
// It listens on a free port of 127.0.0.1 and prints
// "S3rver listening on ADDRESS:PORT" once the bucket exists.
'use strict';
const S3rver = require('@20minutes/s3rver');

const [directory, bucket] = process.argv.slice(2);
if (!directory || !bucket) {
  console.error('usage: node s3rver.cjs DIRECTORY BUCKET');
  process.exit(2);
}
new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: bucket }] })
  .run()
  .then(({ address, port }) => console.log(`S3rver listening on ${address}:${port}`))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
