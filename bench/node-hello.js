// The reference for bench/serverless.sh: the same hello-JSON handler on Node's own
// http module, one process (Node's default), as a serverless-style baseline.
'use strict';
const http = require('http');
const port = Number(process.argv[2] || 8099);
http
  .createServer((req, res) => {
    const body = JSON.stringify({ hello: 'world', path: req.url });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  })
  .listen(port, '127.0.0.1', () => console.log(`node listening on ${port}`));
