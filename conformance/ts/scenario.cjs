#!/usr/bin/env node
// Conformance scenario: drives a running go-aleph node with the official
// Aleph TypeScript SDK (@aleph-sdk/client 1.7.x), exactly as a dApp would.
//
//   node scenario.cjs <api base URL> [<websocket base URL>]
//
// e.g. node scenario.cjs http://127.0.0.1:4024 (the ws URL defaults to the
// API URL with http→ws). stdout carries one JSON object per step,
//   {"step": "...", "ok": true|false, "detail": ...}
// and the script exits 1 on the first failing step. Everything the SDK prints
// goes to stderr, together with a log of every HTTP request it made.
//
// The traps documented in ts-sdk-http-calls.md are handled here:
//   - getMessageError always queries https://api3.aleph.im: an axios request
//     interceptor on the SDK's own axios instance rewrites it to the node, and
//     refuses any other non-local request so nothing ever reaches mainnet;
//   - watchMessages connects to wss://api3.aleph.im unless
//     client.messageClient.wsServer is overwritten;
//   - the SDK never sets an HTTP timeout: we set axios.defaults.timeout;
//   - @aleph-sdk/evm needs decimal.js without declaring it (package.json does).
'use strict'

const crypto = require('node:crypto')
const fs = require('node:fs')
const util = require('node:util')
const { createRequire } = require('node:module')

// --- stdout is reserved for JSON lines --------------------------------------

function writeErr(...args) {
  fs.writeSync(2, util.format(...args) + '\n')
}
console.log = writeErr
console.info = writeErr
console.debug = writeErr
console.warn = writeErr
console.error = writeErr

function emit(step, ok, detail) {
  fs.writeSync(1, JSON.stringify({ step, ok, detail: detail === undefined ? '' : detail }) + '\n')
}

let currentStep = 'startup'
let axios = null // the SDK's axios default instance, once loaded
function die(err) {
  emit(currentStep, false, describe(err))
  process.exit(1)
}
process.on('uncaughtException', die)
process.on('unhandledRejection', die)

// --- arguments and SDK modules ----------------------------------------------

const apiURL = (process.argv[2] || '').replace(/\/+$/, '')
if (!/^https?:\/\/[^/]+$/.test(apiURL)) {
  emit('startup', false, 'usage: node scenario.cjs <http://host:port> [<ws://host:port>]')
  process.exit(2)
}
const wsURL = (process.argv[3] || apiURL.replace(/^http/, 'ws')).replace(/\/+$/, '')
const apiOrigin = new URL(apiURL).origin
const MAINNET = 'https://api3.aleph.im'

const { AuthenticatedAlephHttpClient } = require('@aleph-sdk/client')
const ethereum = require('@aleph-sdk/ethereum')
const solana = require('@aleph-sdk/solana')
// Load @aleph-sdk/message and axios the way the client itself resolves them, so
// that error classes and the axios default instance are the very ones in use.
const clientRequire = createRequire(require.resolve('@aleph-sdk/client'))
const sdkMessage = clientRequire('@aleph-sdk/message')
axios = createRequire(clientRequire.resolve('@aleph-sdk/message'))('axios')

const {
  buildMessage,
  prepareAlephMessage,
  broadcast,
  ItemType,
  MessageType,
  InvalidMessageError,
  ForgottenMessageError,
  MessageNotFoundError,
} = sdkMessage

// --- HTTP plumbing: rewrite mainnet, refuse the rest, log, time out ----------

axios.defaults.timeout = 45000 // above the 30 s a node may hold a sync broadcast
const seenRequests = []
// item_hash → HTTP status of its POST /api/v0/messages (the SDK hides it).
const broadcastStatus = new Map()

axios.interceptors.request.use((config) => {
  let url = config.url || ''
  if (url === MAINNET || url.startsWith(MAINNET + '/')) url = apiURL + url.slice(MAINNET.length)
  if (new URL(url).origin !== apiOrigin) {
    throw new Error(`conformance: refusing a request outside the node under test: ${config.url}`)
  }
  config.url = url
  seenRequests.push(`${(config.method || 'get').toUpperCase()} ${url}`)
  return config
})

function noteBroadcast(config, status) {
  if (!config || (config.method || '').toLowerCase() !== 'post' || !/\/api\/v0\/messages$/.test(config.url || '')) return
  try {
    const body = typeof config.data === 'string' ? JSON.parse(config.data) : config.data
    broadcastStatus.set(body.message.item_hash, status)
  } catch {
    // not a broadcast body; nothing to note
  }
}

axios.interceptors.response.use(
  (res) => {
    writeErr(`http: ${res.config.method.toUpperCase()} ${res.config.url} -> ${res.status}`)
    noteBroadcast(res.config, res.status)
    return res
  },
  (err) => {
    if (err && err.config) {
      const status = err.response ? err.response.status : err.code
      writeErr(`http: ${err.config.method.toUpperCase()} ${err.config.url} -> ${status} ${err.response ? JSON.stringify(err.response.data) : ''}`)
      if (err.response) noteBroadcast(err.config, err.response.status)
    }
    return Promise.reject(err)
  },
)

// --- small helpers -----------------------------------------------------------

function describe(err) {
  if (!(err instanceof Error)) return String(err)
  let s = `${err.name}: ${err.message}`
  if (axios && axios.isAxiosError(err)) {
    const c = err.config || {}
    s = `${err.name}: ${(c.method || '').toUpperCase()} ${c.url} -> ${err.response ? err.response.status : `${err.code} (${err.message})`}`
    if (err.response) s += ` ${JSON.stringify(err.response.data)}`
  }
  return s.length > 2000 ? s.slice(0, 2000) + '…' : s
}

class CheckError extends Error {
  constructor(message) {
    super(message)
    this.name = 'CheckError'
  }
}

function check(cond, message) {
  if (!cond) throw new CheckError(message)
}

function checkEqual(actual, expected, what) {
  if (!util.isDeepStrictEqual(actual, expected)) {
    throw new CheckError(`${what}: got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`)
  }
}

function checkSameSet(actual, expected, what) {
  checkEqual([...actual].sort(), [...expected].sort(), what)
}

async function expectError(promise, cls, what) {
  try {
    const v = await promise
    throw new CheckError(`${what}: expected ${cls.name}, got success ${JSON.stringify(v)}`)
  } catch (err) {
    if (err instanceof CheckError) throw err
    if (!(err instanceof cls)) throw new CheckError(`${what}: expected ${cls.name}, got ${describe(err)}`)
    return err
  }
}

// Polls fn until it returns a truthy value; the scenario's only waits are for
// asynchronous processing on the node, so a bounded poll is the contract here.
async function eventually(fn, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new CheckError(`${what}: not reached within ${timeoutMs} ms${last ? ` (last error: ${describe(last)})` : ''}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

function withTimeout(promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new CheckError(`${what}: timed out after ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

const isHash = (h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h)

async function step(name, fn) {
  currentStep = name
  let detail
  try {
    detail = await fn()
  } catch (err) {
    die(err)
  }
  emit(name, true, detail)
}

// --- accounts: the dev accounts `alephd dev` prints (deterministic) ----------

function devSeed(label) {
  return crypto.createHash('sha256').update(label).digest()
}

function solanaSecretKey(seed) {
  // An ed25519 PKCS#8 key is a fixed 16-byte prefix followed by the seed.
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed])
  const priv = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  const pub = Buffer.from(crypto.createPublicKey(priv).export({ format: 'jwk' }).x, 'base64url')
  return Uint8Array.from(Buffer.concat([seed, pub]))
}

function waitOpen(sock, what) {
  const raw = sock.getSocket()
  if (raw.readyState === raw.OPEN) return Promise.resolve()
  return withTimeout(
    new Promise((resolve, reject) => {
      raw.once('open', resolve)
      raw.once('error', (err) => reject(new CheckError(`${what}: websocket error: ${describe(err)}`)))
      raw.once('close', (code) => reject(new CheckError(`${what}: websocket closed before opening (code ${code})`)))
    }),
    10000,
    `${what}: websocket open`,
  )
}

// Collects every JSON frame the socket receives from now on; waitFor resolves
// once pred holds for the frames collected so far (checked on each new frame).
function collectFrames(sock) {
  const raw = sock.getSocket()
  const frames = []
  let waiter = null
  let failure = null
  const settle = () => {
    if (!waiter) return
    if (failure) waiter.reject(failure)
    else if (waiter.pred(frames)) waiter.resolve(frames)
    else return
    waiter = null
  }
  const onMessage = (data) => {
    try {
      frames.push(JSON.parse(data.toString()))
    } catch {
      failure = new CheckError(`non-JSON websocket frame ${JSON.stringify(data.toString().slice(0, 200))}`)
    }
    settle()
  }
  const onClose = (code) => {
    failure = failure || new CheckError(`websocket closed (code ${code}) after ${frames.length} frame(s)`)
    settle()
  }
  raw.on('message', onMessage)
  raw.on('close', onClose)
  return {
    frames,
    waitFor(pred, what) {
      const p = new Promise((resolve, reject) => {
        waiter = { pred, resolve, reject }
      })
      settle()
      return withTimeout(p, 20000, what).finally(() => {
        waiter = null
      })
    },
    stop() {
      raw.off('message', onMessage)
      raw.off('close', onClose)
    },
  }
}

function closeSocket(sock) {
  const raw = sock.getSocket()
  if (raw.readyState === raw.CLOSED) return Promise.resolve()
  const closed = new Promise((resolve) => raw.once('close', resolve))
  sock.closeSocket()
  return withTimeout(closed, 10000, 'websocket close')
}

// --- the scenario ------------------------------------------------------------

async function main() {
  const run = crypto.randomBytes(4).toString('hex')
  const channel = `CONFORMANCE-${run}`
  const wsChannel = `CONFORMANCE-WS-${run}`
  const postType = `conformance-${run}`
  const aggKey = `conformance-${run}`

  let eth, sol, client, solClient
  await step('setup', async () => {
    eth = ethereum.importAccountFromPrivateKey(devSeed('go-aleph dev account 0').toString('hex'))
    sol = solana.importAccountFromPrivateKey(solanaSecretKey(devSeed('go-aleph dev sol account 0')))
    client = new AuthenticatedAlephHttpClient(eth, apiURL)
    solClient = new AuthenticatedAlephHttpClient(sol, apiURL)
    // The SDK builds its BaseMessageClient without a ws server: mainnet by default.
    client.messageClient.wsServer = wsURL
    solClient.messageClient.wsServer = wsURL
    return { api: apiURL, ws: wsURL, eth: eth.address, sol: sol.address, channel, postType }
  })

  await step('version', async () => {
    const res = await axios.get(`${apiURL}/api/v0/version`)
    check(typeof res.data.version === 'string' && res.data.version !== '', `version: got ${JSON.stringify(res.data)}`)
    return res.data
  })

  const content1 = { title: 'hello from the TypeScript SDK', n: 1, tags: ['a', 'b'], nested: { ok: true } }
  let syncPost
  await step('createPost.sync', async () => {
    syncPost = await client.createPost({ postType, content: content1, channel, sync: true })
    check(isHash(syncPost.item_hash), `item_hash: ${syncPost.item_hash}`)
    checkEqual(syncPost.item_type, 'inline', 'item_type')
    check(seenRequests.includes(`POST ${apiURL}/api/v0/messages`), 'the axios interceptor did not see the broadcast (wrong axios instance?)')
    checkEqual(broadcastStatus.get(syncPost.item_hash), 200, 'HTTP status of a sync broadcast')
    return { item_hash: syncPost.item_hash }
  })

  const content2 = { title: 'second post', n: 2 }
  let asyncPost
  await step('createPost.async', async () => {
    asyncPost = await client.createPost({ postType, content: content2, channel })
    checkEqual(broadcastStatus.get(asyncPost.item_hash), 202, 'HTTP status of an async broadcast')
    await eventually(async () => {
      const r = await client.getMessages({ hashes: [asyncPost.item_hash] })
      return r.messages.length === 1
    }, 'async post processed')
    return { item_hash: asyncPost.item_hash }
  })

  const content3 = { title: 'posted with a Solana key', n: 3 }
  let solPost
  await step('createPost.sol', async () => {
    solPost = await solClient.createPost({ postType, content: content3, channel, sync: true })
    checkEqual(solPost.chain, 'SOL', 'chain')
    checkEqual(broadcastStatus.get(solPost.item_hash), 200, 'HTTP status of a sync broadcast')
    return { item_hash: solPost.item_hash }
  })

  await step('getPost', async () => {
    const p = await client.getPost({ types: postType, hashes: [syncPost.item_hash], channels: [channel] })
    checkEqual(p.item_hash, syncPost.item_hash, 'item_hash')
    checkEqual(p.original_item_hash, syncPost.item_hash, 'original_item_hash')
    checkEqual(p.hash, syncPost.item_hash, 'hash')
    checkEqual(p.content, content1, 'content')
    checkEqual(p.type, postType, 'type')
    checkEqual(p.original_type, postType, 'original_type')
    checkEqual(p.chain, 'ETH', 'chain')
    checkEqual(p.sender, eth.address, 'sender')
    checkEqual(p.address, eth.address, 'address')
    checkEqual(p.channel, channel, 'channel')
    checkEqual(p.item_type, 'inline', 'item_type')
    checkEqual(p.signature, syncPost.signature, 'signature')
    await expectError(client.getPost({ types: `${postType}-none` }), MessageNotFoundError, 'getPost with no match')
    return { item_hash: p.item_hash }
  })

  await step('getPosts', async () => {
    const r = await client.getPosts({ types: [postType], channels: [channel], addresses: [eth.address] })
    checkSameSet(r.posts.map((p) => p.item_hash), [syncPost.item_hash, asyncPost.item_hash], 'ETH posts')
    checkEqual(r.pagination_item, 'posts', 'pagination_item')
    checkEqual(r.pagination_page, 1, 'pagination_page')
    checkEqual(r.pagination_per_page, 50, 'pagination_per_page')
    checkEqual(r.pagination_total, 2, 'pagination_total')
    const s = await client.getPosts({ types: postType, addresses: [sol.address] })
    checkEqual(s.posts.map((p) => p.item_hash), [solPost.item_hash], 'SOL posts')
    checkEqual(s.posts[0].chain, 'SOL', 'SOL post chain')
    checkEqual(s.posts[0].content, content3, 'SOL post content')
    const all = await client.getPosts({ channels: [channel] })
    checkSameSet(all.posts.map((p) => p.item_hash), [syncPost.item_hash, asyncPost.item_hash, solPost.item_hash], 'posts in the channel')
    return { eth: r.posts.length, sol: s.posts.length }
  })

  const amended = { title: 'hello, amended', n: 10 }
  let amend
  await step('amend', async () => {
    amend = await client.createPost({ postType: 'amend', ref: syncPost.item_hash, content: amended, channel, sync: true })
    checkEqual(broadcastStatus.get(amend.item_hash), 200, 'HTTP status of a sync broadcast')
    const r = await client.getPosts({ hashes: [syncPost.item_hash] })
    checkEqual(r.posts.length, 1, 'posts for the original hash')
    const p = r.posts[0]
    checkEqual(p.content, amended, 'content after the amend')
    checkEqual(p.item_hash, amend.item_hash, 'item_hash (latest amend)')
    checkEqual(p.original_item_hash, syncPost.item_hash, 'original_item_hash')
    checkEqual(p.hash, syncPost.item_hash, 'hash')
    checkEqual(p.type, 'amend', 'type once amended')
    checkEqual(p.original_type, postType, 'original_type')
    // Filters on type and listing apply to originals: the amend is folded in.
    const byType = await client.getPosts({ types: [postType], channels: [channel] })
    checkEqual(byType.posts.length, 3, 'posts of the original type after the amend')
    const viaGetPost = await client.getPost({ hashes: [syncPost.item_hash] })
    checkEqual(viaGetPost.content, amended, 'getPost content after the amend')
    return { amend: amend.item_hash }
  })

  const aggA = { a: 1, b: { x: 1 }, keep: 'v1' }
  const aggB = { b: { y: 2 }, c: 3 }
  const merged = { a: 1, b: { y: 2 }, keep: 'v1', c: 3 }
  let agg1, agg2
  await step('aggregate', async () => {
    agg1 = await client.createAggregate({ key: aggKey, content: aggA, channel, sync: true })
    agg2 = await client.createAggregate({ key: aggKey, content: aggB, channel, sync: true })
    checkEqual(broadcastStatus.get(agg1.item_hash), 200, 'HTTP status of the first aggregate')
    checkEqual(broadcastStatus.get(agg2.item_hash), 200, 'HTTP status of the second aggregate')
    checkEqual(await client.fetchAggregate(eth.address, aggKey), merged, 'fetchAggregate (shallow merge)')
    checkEqual(await client.fetchAggregates(eth.address, [aggKey]), { [aggKey]: merged }, 'fetchAggregates with keys')
    const all = await client.fetchAggregates(eth.address)
    checkEqual(all[aggKey], merged, 'fetchAggregates without keys')
    // pyaleph answers 404 when the keys filter matches nothing, even if the
    // address has other aggregates; the SDK turns that into MessageNotFoundError.
    await expectError(client.fetchAggregate(eth.address, `${aggKey}-absent`), MessageNotFoundError, 'fetchAggregate of an absent key')
    await expectError(client.fetchAggregate(sol.address, aggKey), MessageNotFoundError, 'fetchAggregate for an address without aggregates')
    return { key: aggKey, merged }
  })

  await step('getMessage', async () => {
    const m = await client.getMessage(syncPost.item_hash)
    checkEqual(m.item_hash, syncPost.item_hash, 'item_hash')
    checkEqual(m.type, 'POST', 'type')
    checkEqual(m.chain, 'ETH', 'chain')
    checkEqual(m.sender, eth.address, 'sender')
    checkEqual(m.channel, channel, 'channel')
    checkEqual(m.item_type, 'inline', 'item_type')
    checkEqual(m.item_content, syncPost.item_content, 'item_content')
    checkEqual(m.signature, syncPost.signature, 'signature')
    checkEqual(m.time, syncPost.time, 'time')
    checkEqual(m.content, JSON.parse(syncPost.item_content), 'content')
    const s = await client.getMessage(solPost.item_hash)
    checkEqual(s.signature, solPost.signature, 'SOL signature')
    const unknown = crypto.createHash('sha256').update(`unknown ${run}`).digest('hex')
    await expectError(client.getMessage(unknown), MessageNotFoundError, 'getMessage of an unknown hash')
    return { item_hash: m.item_hash }
  })

  const hashesOf = (r) => r.messages.map((m) => m.item_hash)

  await step('getMessages.addresses', async () => {
    const r = await client.getMessages({ addresses: [eth.address], channels: [channel] })
    checkSameSet(hashesOf(r), [syncPost, asyncPost, amend, agg1, agg2].map((m) => m.item_hash), 'messages of the ETH sender')
    checkEqual(r.pagination_item, 'messages', 'pagination_item')
    checkEqual(r.pagination_per_page, 20, 'pagination_per_page')
    checkEqual(r.pagination_page, 1, 'pagination_page')
    checkEqual(r.pagination_total, 5, 'pagination_total')
    const m = r.messages.find((x) => x.item_hash === syncPost.item_hash)
    checkEqual(m.content, JSON.parse(syncPost.item_content), 'content of a listed message')
    check(typeof m.confirmed === 'boolean', `confirmed: ${JSON.stringify(m.confirmed)}`)
    return { count: r.messages.length }
  })

  await step('getMessages.msgTypes', async () => {
    const r = await client.getMessages({ messageTypes: ['AGGREGATE'], channels: [channel] })
    checkSameSet(hashesOf(r), [agg1.item_hash, agg2.item_hash], 'AGGREGATE messages')
    const both = await client.getMessages({ messageTypes: ['AGGREGATE', 'POST'], channels: [channel] })
    checkEqual(both.messages.length, 6, 'POST and AGGREGATE messages')
    return { count: r.messages.length }
  })

  await step('getMessages.hashes', async () => {
    const r = await client.getMessages({ hashes: [syncPost.item_hash, solPost.item_hash] })
    checkSameSet(hashesOf(r), [syncPost.item_hash, solPost.item_hash], 'messages by hash')
    return { count: r.messages.length }
  })

  await step('getMessages.contentTypes', async () => {
    const r = await client.getMessages({ contentTypes: [postType], channels: [channel] })
    checkSameSet(hashesOf(r), [syncPost, asyncPost, solPost].map((m) => m.item_hash), 'POSTs by content type')
    const a = await client.getMessages({ contentTypes: ['amend'], channels: [channel] })
    checkEqual(hashesOf(a), [amend.item_hash], 'amends by content type')
    return { count: r.messages.length }
  })

  await step('getMessages.chains', async () => {
    const r = await client.getMessages({ chains: ['SOL'], channels: [channel] })
    checkEqual(hashesOf(r), [solPost.item_hash], 'SOL messages')
    return { count: r.messages.length }
  })

  await step('getMessages.pagination', async () => {
    const p1 = await client.getMessages({ channels: [channel], pagination: 4, page: 1 })
    const p2 = await client.getMessages({ channels: [channel], pagination: 4, page: 2 })
    const p3 = await client.getMessages({ channels: [channel], pagination: 4, page: 3 })
    checkEqual(p1.messages.length, 4, 'page 1 size')
    checkEqual(p2.messages.length, 2, 'page 2 size')
    checkEqual(p3.messages.length, 0, 'page 3 size')
    checkEqual([p1.pagination_page, p2.pagination_page], [1, 2], 'pagination_page')
    checkEqual([p1.pagination_per_page, p2.pagination_per_page], [4, 4], 'pagination_per_page')
    checkEqual([p1.pagination_total, p2.pagination_total], [6, 6], 'pagination_total')
    const all = [...hashesOf(p1), ...hashesOf(p2)]
    checkSameSet(all, [syncPost, asyncPost, solPost, amend, agg1, agg2].map((m) => m.item_hash), 'pages together')
    // Default order: newest first.
    const times = [...p1.messages, ...p2.messages].map((m) => m.time)
    check(times.every((t, i) => i === 0 || times[i - 1] >= t), `messages not newest first: ${JSON.stringify(times)}`)
    return { pages: [p1.messages.length, p2.messages.length, p3.messages.length] }
  })

  let forget
  await step('forget', async () => {
    forget = await client.forget({ hashes: [asyncPost.item_hash], reason: 'conformance test', channel, sync: true })
    checkEqual(broadcastStatus.get(forget.item_hash), 200, 'HTTP status of a sync FORGET')
    const err = await expectError(client.getMessage(asyncPost.item_hash), ForgottenMessageError, 'getMessage of a forgotten post')
    check(err.message.includes(asyncPost.item_hash), `error names the message: ${err.message}`)
    check(err.message.includes(forget.item_hash), `error names the FORGET: ${err.message}`)
    await expectError(client.getMessageError(asyncPost.item_hash), ForgottenMessageError, 'getMessageError of a forgotten post')
    const posts = await client.getPosts({ hashes: [asyncPost.item_hash] })
    checkEqual(posts.posts.length, 0, 'forgotten post still listed by getPosts')
    const msgs = await client.getMessages({ hashes: [asyncPost.item_hash] })
    checkEqual(msgs.messages.length, 0, 'forgotten message still listed by getMessages')
    return { forget: forget.item_hash, error: err.message }
  })

  await step('watchMessages', async () => {
    const sock = await client.watchMessages({ channels: [wsChannel], addresses: [eth.address] })
    const frames = collectFrames(sock)
    try {
      await waitOpen(sock, 'watchMessages')
      const live = await client.createPost({ postType, content: { title: 'seen live', run }, channel: wsChannel })
      const got = await frames.waitFor((fs) => fs.some((f) => f.item_hash === live.item_hash), 'live message on the websocket')
      const f = got.find((x) => x.item_hash === live.item_hash)
      checkEqual(f.type, 'POST', 'frame type')
      checkEqual(f.channel, wsChannel, 'frame channel')
      checkEqual(f.sender, eth.address, 'frame sender')
      checkEqual(f.content, JSON.parse(live.item_content), 'frame content')
      check(sock.getData().some((x) => x.item_hash === live.item_hash), 'the SDK socket did not record the frame')
      return { item_hash: live.item_hash, frames: got.length }
    } finally {
      frames.stop()
      await closeSocket(sock)
    }
  })

  await step('badSignature', async () => {
    // Build and hash with the SDK's own message classes, then sign with an
    // account whose signature has one hex digit changed.
    const time = Date.now() / 1000
    const built = buildMessage(
      {
        account: eth,
        channel,
        timestamp: time,
        storageEngine: ItemType.inline,
        content: { type: postType, address: eth.address, content: { tampered: true }, time },
      },
      MessageType.post,
    )
    const hashed = await prepareAlephMessage({ message: built, apiServer: apiURL })
    const tamperer = Object.create(eth)
    tamperer.sign = async (msg) => {
      const sig = await eth.sign(msg)
      const i = 10 // inside r
      return sig.slice(0, i) + (sig[i] === '0' ? '1' : '0') + sig.slice(i + 1)
    }
    await expectError(broadcast({ message: hashed, account: tamperer, apiServer: apiURL, sync: true }), InvalidMessageError, 'broadcast with a bad signature')
    checkEqual(broadcastStatus.get(hashed.item_hash), 422, 'HTTP status of a bad signature')
    const e = await client.getMessageError(hashed.item_hash)
    check(e !== null, 'getMessageError returned null for a rejected message')
    checkEqual(e.error_code, 1, 'error_code')
    const m = await client.getMessage(hashed.item_hash)
    checkEqual(m.item_hash, hashed.item_hash, 'getMessage of a rejected message: item_hash')
    check(seenRequests.includes(`GET ${apiURL}/api/v0/messages/${hashed.item_hash}`), 'getMessageError was not redirected to the node')
    return { item_hash: hashed.item_hash, error: e }
  })

  await step('getMessageError.processed', async () => {
    checkEqual(await client.getMessageError(syncPost.item_hash), null, 'getMessageError of a processed message')
  })

  await step('watchMessages.history', async () => {
    // history is not in the SDK's declared type but is passed through.
    const sock = await client.watchMessages({ channels: [channel], messageType: 'AGGREGATE', history: 5 })
    const frames = collectFrames(sock)
    try {
      const want = [agg1.item_hash, agg2.item_hash]
      const got = await frames.waitFor((fs) => want.every((h) => fs.some((f) => f.item_hash === h)), 'stored messages replayed on the websocket')
      const order = got.map((f) => f.item_hash).filter((h) => want.includes(h))
      checkEqual(order, want, 'replayed oldest first')
      check(got.every((f) => f.type === 'AGGREGATE'), `msgType filter: got ${JSON.stringify(got.map((f) => f.type))}`)
      return { frames: got.length }
    } finally {
      frames.stop()
      await closeSocket(sock)
    }
  })

  // --- files: createStore (both engines), pinning, downloadFile -----------------

  const sha256hex = (b) => crypto.createHash('sha256').update(b).digest('hex')
  // Deterministic but not UTF-8: exercises binary safety of the upload path.
  const binary = (n, seed) => {
    const out = Buffer.alloc(n)
    let x = seed >>> 0
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      out[i] = x >>> 24
    }
    return out
  }

  let storeBytes, storeMsg
  await step('createStore.storage', async () => {
    storeBytes = binary(300 * 1024 + 7, 1)
    storeMsg = await client.createStore({ fileObject: new Blob([storeBytes]), storageEngine: ItemType.storage, channel, sync: true })
    const content = JSON.parse(storeMsg.item_content)
    checkEqual(content.item_type, 'storage', 'content.item_type')
    checkEqual(content.item_hash, sha256hex(storeBytes), 'content.item_hash is the sha256 of the file')
    check(seenRequests.includes(`POST ${apiURL}/api/v0/storage/add_file`), 'the SDK did not upload through /api/v0/storage/add_file')
    const m = await eventually(async () => {
      const got = await client.getMessage(storeMsg.item_hash)
      return got && got.type === 'STORE' ? got : null
    }, 'the STORE message is processed')
    checkEqual(m.content.item_hash, content.item_hash, 'processed STORE content.item_hash')
    return { item_hash: storeMsg.item_hash, file_hash: content.item_hash, size: storeBytes.length }
  })

  await step('downloadFile.storage', async () => {
    const got = Buffer.from(await client.downloadFile(sha256hex(storeBytes)))
    checkEqual(got.length, storeBytes.length, 'downloaded length')
    check(got.equals(storeBytes), 'downloaded bytes differ from the uploaded ones')
    return { bytes: got.length }
  })

  await step('createStore.storage.buffer', async () => {
    // A Buffer travels as a text field (no filename, no content type): fine for
    // UTF-8 text without line breaks, which is what this is.
    const text = Buffer.from(`plain text stored from a Buffer, run ${run}, \u00e9t\u00e9 \u2713`)
    const msg = await client.createStore({ fileObject: text, storageEngine: ItemType.storage, channel, sync: true })
    const content = JSON.parse(msg.item_content)
    checkEqual(content.item_hash, sha256hex(text), 'content.item_hash')
    const got = Buffer.from(await client.downloadFile(content.item_hash))
    check(got.equals(text), `downloaded ${JSON.stringify(got.toString())}, uploaded ${JSON.stringify(text.toString())}`)
    return { item_hash: msg.item_hash }
  })

  await step('createStore.storage.corruptedBuffer', async () => {
    // The SDK's Buffer trap (ts-sdk-http-calls.md §3.3): FormData sends String(buffer),
    // so non-UTF-8 bytes arrive as U+FFFD and the hash no longer matches. The node
    // must refuse (422 → InvalidMessageError), not store the mangled bytes.
    const bad = binary(4096, 2)
    await expectError(client.createStore({ fileObject: bad, storageEngine: ItemType.storage, channel, sync: true }), InvalidMessageError, 'upload of a mangled Buffer')
    const res = await axios.get(`${apiURL}/api/v0/storage/raw/${sha256hex(bad)}`, { validateStatus: () => true })
    checkEqual(res.status, 404, 'status of the refused file')
  })

  let ipfsBytes, ipfsMsg, cid
  await step('createStore.ipfs', async () => {
    ipfsBytes = binary(1024 * 1024 + 123, 3) // five 256 KiB chunks: a two-level DAG
    ipfsMsg = await client.createStore({ fileObject: new Blob([ipfsBytes]), storageEngine: ItemType.ipfs, channel, sync: true })
    const content = JSON.parse(ipfsMsg.item_content)
    cid = content.item_hash
    checkEqual(content.item_type, 'ipfs', 'content.item_type')
    check(/^Qm[1-9A-HJ-NP-Za-km-z]{44}$/.test(cid), `item_hash is not a CIDv0: ${cid}`)
    check(seenRequests.includes(`POST ${apiURL}/api/v0/ipfs/add_file`), 'the SDK did not upload through /api/v0/ipfs/add_file')
    checkEqual(broadcastStatus.get(ipfsMsg.item_hash), 200, 'HTTP status of the sync STORE broadcast')
    return { item_hash: ipfsMsg.item_hash, cid }
  })

  await step('downloadFile.ipfs', async () => {
    const got = Buffer.from(await client.downloadFile(cid))
    checkEqual(got.length, ipfsBytes.length, 'downloaded length')
    check(got.equals(ipfsBytes), 'downloaded bytes differ from the uploaded ones')
    const gw = await axios.get(`${apiURL}/ipfs/${cid}`, { responseType: 'arraybuffer' })
    check(Buffer.from(gw.data).equals(ipfsBytes), 'the gateway serves other bytes')
    return { bytes: got.length }
  })

  await step('createStore.pin', async () => {
    const pinned = await client.createStore({ fileHash: cid, storageEngine: ItemType.ipfs, channel, sync: true })
    checkEqual(broadcastStatus.get(pinned.item_hash), 200, 'HTTP status of a sync pin')
    const count = await axios.get(`${apiURL}/api/v0/storage/count/${cid}`)
    check(count.data >= 2, `pin count of ${cid}: ${JSON.stringify(count.data)}`)
    return { item_hash: pinned.item_hash, pins: count.data }
  })

  await step('createPost.storageContent', async () => {
    // Content over 50,000 bytes goes to /api/v0/storage/add_json; the message is
    // then item_type "storage" and the node fetches its content from its store.
    const big = { title: 'large post', run, filler: 'x'.repeat(60000) }
    const msg = await client.createPost({ postType, content: big, channel, sync: true })
    checkEqual(msg.item_type, 'storage', 'item_type of a large post')
    checkEqual(broadcastStatus.get(msg.item_hash), 200, 'HTTP status of a sync large post')
    const m = await client.getMessage(msg.item_hash)
    checkEqual(m.content.content, big, 'content served back')
    return { item_hash: msg.item_hash }
  })

  currentStep = 'done'
  emit('done', true, { requests: seenRequests.length })
  process.exit(0)
}

main().catch(die)
