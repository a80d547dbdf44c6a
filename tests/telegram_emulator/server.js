/*
 * telegram-test-api for qabot's end-to-end tests, with two answers fixed so that python-telegram-bot accepts them.
 *
 * Why a wrapper: the emulator's Bot API side deviates from Telegram in two ways that python-telegram-bot rejects
 * (and the bot itself must not learn to tolerate):
 *   1. getMe's user has no `is_bot` (a required field)          -> we add `is_bot: true`;
 *   2. messages the bot sends come back with `date` in ms        -> we turn any `date` above 1e11 into seconds;
 *   3. callback queries have no `chat_instance` (required)      -> we add one derived from the chat id.
 * Only responses of the bot's routes (/bot<token>/...) are touched; the client routes (/sendMessage,
 * /getUpdates, ... used by the tests to play the users) are passed through unchanged.
 *
 * Three Bot API parts the emulator lacks are added here, for the article tests (documents, progress messages):
 *   - getFile and the file download URL (/file/bot<token>/<file_path>) serve files the test uploaded first
 *     with the client route POST /uploadFile {file_id, content_base64} (the emulator has no file storage);
 *   - editMessageText answers `true` (the emulator answers `result: null`, which no client accepts); the edit
 *     itself is stored by the emulator, so /getUpdatesHistory shows the edited text.
 *
 * Two Bot API methods the emulator lacks are answered here and recorded, so tests can check them:
 * setMyCommands (it fails with a 400 while a test has asked so with POST /qabot/fail {"method": "setMyCommands"})
 * and answerCallbackQuery (the emulator's own answers but does not record). GET /qabot/calls returns
 * [{token, method, body}] (body: the raw request text) and POST /qabot/reset clears calls and failures.
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
    if (path.endsWith('/getUpdates') && Array.isArray(body.result)) {
      body.result.forEach((update) => {
        const query = update.callback_query;
        if (query && query.chat_instance === undefined) {
          query.chat_instance = String(query.message && query.message.chat ? query.message.chat.id : 0);
        }
      });
    }
  }
  return body;
}

const emulator = new TelegramServer({ host: '127.0.0.1', storeTimeout: 3600 });
const files = new Map(); // file_id -> Buffer

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text));
      } catch (_error) {
        resolve(Object.fromEntries(new URLSearchParams(text)));
      }
    });
  });
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

// Routes the emulator lacks; true when the request was answered here.
async function fileRoutes(req, res, path) {
  if (req.method === 'POST' && path === '/uploadFile') {
    const body = await readBody(req);
    files.set(String(body.file_id), Buffer.from(String(body.content_base64 || ''), 'base64'));
    sendJson(res, 200, { ok: true });
    return true;
  }
  if (/^\/bot[^/]+\/getFile$/.test(path)) {
    const params = { ...Object.fromEntries(new URL(req.url, 'http://x').searchParams), ...(await readBody(req)) };
    const content = files.get(String(params.file_id));
    if (!content) {
      sendJson(res, 400, { ok: false, error_code: 400, description: 'Bad Request: invalid file_id' });
    } else {
      const result = { file_id: params.file_id, file_unique_id: `u-${params.file_id}`, file_size: content.length,
        file_path: `documents/${params.file_id}` };
      sendJson(res, 200, { ok: true, result });
    }
    return true;
  }
  const download = /^\/file\/bot[^/]+\/documents\/(.+)$/.exec(path);
  if (download) {
    const content = files.get(decodeURIComponent(download[1]));
    res.writeHead(content ? 200 : 404, { 'Content-Type': 'application/octet-stream' });
    res.end(content || 'not found');
    return true;
  }
  return false;
}

const RECORDED_METHODS = new Set(['setMyCommands', 'answerCallbackQuery']);
let calls = [];
let failing = new Set();

function readRawBody(req, callback) {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => callback(body));
}

function handleQabotRoutes(req, res, path) {
  if (path === '/qabot/calls') {
    sendJson(res, 200, { ok: true, result: calls });
    return true;
  }
  if (path === '/qabot/reset') {
    calls = [];
    failing = new Set();
    sendJson(res, 200, { ok: true, result: true });
    return true;
  }
  if (path === '/qabot/fail') {
    readRawBody(req, (body) => {
      failing.add(JSON.parse(body).method);
      sendJson(res, 200, { ok: true, result: true });
    });
    return true;
  }
  const match = path.match(/^\/bot([^/]+)\/([A-Za-z]+)$/);
  if (match && RECORDED_METHODS.has(match[2])) {
    readRawBody(req, (body) => {
      calls.push({ token: match[1], method: match[2], body });
      if (failing.has(match[2])) {
        sendJson(res, 400, { ok: false, error_code: 400, description: `Bad Request: ${match[2]} failed (test)` });
      } else {
        sendJson(res, 200, { ok: true, result: true });
      }
    });
    return true;
  }
  return false;
}

const server = http.createServer(async (req, res) => {
  const path = req.url.split('?')[0];
  if (handleQabotRoutes(req, res, path) || (await fileRoutes(req, res, path))) {
    return;
  }
  if (/^\/bot[^/]+\/editMessageText$/.test(path)) {
    res.json = (body) => Object.getPrototypeOf(res).json.call(res, { ...body, result: body.result ?? true });
    emulator.webServer(req, res);
    return;
  }
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
