// kafkajs logs in to Eddy with each SASL mechanism — PLAIN and SCRAM with an
// API key, OAUTHBEARER with tokens it fetches itself from the control
// plane's token endpoint (client credentials) — produces, and reads back.
// Prints a JSON summary per mechanism on the last line.
// Usage: node sasl.js <bootstrap> <topic> <keyID> <secret> <tokenURL> [caFile]
'use strict';
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, keyID, secret, tokenURL, caFile] = process.argv.slice(2);

async function fetchToken() {
  const res = await fetch(tokenURL, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: 'Basic ' + Buffer.from(`${keyID}:${secret}`).toString('base64'),
    },
    body: 'grant_type=client_credentials',
  });
  if (!res.ok) throw new Error(`token endpoint: ${res.status} ${await res.text()}`);
  return { value: (await res.json()).access_token };
}

const mechanisms = {
  plain: { mechanism: 'plain', username: keyID, password: secret },
  'scram-sha-256': { mechanism: 'scram-sha-256', username: keyID, password: secret },
  'scram-sha-512': { mechanism: 'scram-sha-512', username: keyID, password: secret },
  oauthbearer: { mechanism: 'oauthbearer', oauthBearerProvider: fetchToken },
};

async function roundTrip(name, sasl) {
  const ssl = caFile ? { ca: [fs.readFileSync(caFile, 'utf8')], servername: '127.0.0.1' } : false;
  const kafka = new Kafka({ clientId: `eddy-kafkajs-${name}`, brokers: bootstrap.split(','), sasl, ssl, logLevel: logLevel.WARN });
  const producer = kafka.producer();
  await producer.connect();
  const value = `kafkajs-${name}`;
  await producer.send({ topic, messages: [{ value }] });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}-${name}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no record within 60s`)), 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        if (message.value.toString() === value) {
          clearTimeout(timer);
          resolve(true);
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  return got;
}

async function main() {
  const out = {};
  for (const [name, sasl] of Object.entries(mechanisms)) {
    out[name] = await roundTrip(name, sasl);
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
