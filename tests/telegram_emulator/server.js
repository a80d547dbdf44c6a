/*
 * telegram-test-api for qabot's end-to-end tests, with two answers fixed so that python-telegram-bot accepts them.
 *
 * Why a wrapper: the emulator's Bot API side deviates from Telegram in two ways that python-telegram-bot rejects
 * (and the bot itself must not learn to tolerate):
 *   1. getMe's user has no `is_bot` (a required field)          -> we add `is_bot: true`;
 *   2. messages the bot sends come back with `date` in ms        -> we turn any `date` above 1e11 into seconds.
 * Only responses of the bot's routes (/bot<token>/...) are touched; the client routes (/sendMessage,
 * /getUpdates, ... used by the tests to play the users) are passed through unchanged.
 *
 * Usage: node server.js [host]. It listens on an ephemeral port and prints one JSON line {"port": N} once it
 * accepts connections. It exits on SIGTERM/SIGINT, or when its stdin closes, so it never outlives the test run.
 */
'use strict';

const http = require('http');
const TelegramServer = require('telegram-test-api');

const MILLISECOND_DATES_FROM = 1e11; // seconds since 1970 stay below this until the year 5138

function fixDates(value) {
  if (Array.isArray(value)) {
    value.forEach(fixDates);
  } else if (value && typeof value === 'object') {
    if (typeof value.date === 'number' && value.date > MILLISECOND_DATES_FROM) {
      value.date = Math.floor(value.date / 1000);
    }
    Object.values(value).forEach(fixDates);
  }
}

function fixBotApiBody(path, body) {
  if (body && body.result && typeof body.result === 'object') {
    if (path.endsWith('/getMe') && body.result.is_bot === undefined) {
      body.result.is_bot = true;
    }
    fixDates(body.result);
  }
  return body;
}

const emulator = new TelegramServer({ host: '127.0.0.1', storeTimeout: 3600 });

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path.startsWith('/bot')) {
    // Express later swaps the response's prototype for its own; this own property shadows its json().
    res.json = (body) => Object.getPrototypeOf(res).json.call(res, fixBotApiBody(path, body));
  }
  emulator.webServer(req, res);
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();

server.listen(0, process.argv[2] || '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
