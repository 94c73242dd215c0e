// A gRPC server with one unary method, /percore.Echo/Say, whose messages are
// JSON: it answers the request's text and its own pid. It listens on PORT
// as apps do; in --mode direct percore hands it the public socket.
const grpc = require(process.env.GRPC_JS);

const json = {
  serialize: (v) => Buffer.from(JSON.stringify(v)),
  deserialize: (b) => JSON.parse(b.toString()),
};
const service = {
  say: {
    path: '/percore.Echo/Say', requestStream: false, responseStream: false,
    requestSerialize: json.serialize, requestDeserialize: json.deserialize,
    responseSerialize: json.serialize, responseDeserialize: json.deserialize,
  },
};

if (process.argv[2] === 'client') {
  const Client = grpc.makeGenericClientConstructor(service, 'Echo');
  const client = new Client(process.argv[3], grpc.credentials.createInsecure());
  client.say({ text: 'hello over grpc' }, { deadline: Date.now() + 10000 }, (err, res) => {
    if (err) {
      console.error('grpc error: ' + err.message);
      process.exit(1);
    }
    console.log(res.text + ' from ' + res.pid);
    client.close();
  });
} else {
  const server = new grpc.Server();
  server.addService(service, { say: (call, cb) => cb(null, { text: call.request.text, pid: process.pid }) });
  server.bindAsync('127.0.0.1:' + process.env.PORT, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      console.error(err.message);
      process.exit(1);
    }
  });
}
