/**
 * The Lua scripts that change the shared counters. Each runs atomically inside Redis, so a
 * reservation against the whole cascade and every hard budget is one round trip (EVALSHA), and so
 * is its settlement. Every script first checks the org's `loaded` marker and answers NEEDS_LOAD
 * when Redis lost the org (restart, flush): the adapter then rebuilds the org from PostgreSQL
 * under a lock and retries.
 *
 * Numbers: Redis Lua numbers are doubles (exact below 2^53, which bounds Micros anyway), but a
 * number handed to redis.call() is formatted with %.14g, so computed integers are written through
 * `s()` (%d) to keep every digit. Keys not passed in KEYS (the wallet and budget counters named
 * inside a reservation hash) always share the reservation's `{org}` hash tag, so they live in
 * the same cluster slot.
 *
 * Reservation hash fields: id, org, amount, wallet (id or ''), wkey (wallet key or ''), scope,
 * budgets (JSON BudgetCounterRef[]), bkeys (counter keys, newline-separated), req, created,
 * expires, status, settled ('' while pending), unbilled, resolved ('' while pending).
 */
import { createHash } from 'node:crypto'

export interface LuaScript {
  readonly name: string
  readonly lua: string
  readonly sha: string
}

function script(name: string, lua: string): LuaScript {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') }
}

const HELPERS = String.raw`
local function s(n) return string.format('%d', n) end
local function split(str)
  local out = {}
  for k in string.gmatch(str, '[^\n]+') do out[#out + 1] = k end
  return out
end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

/**
 * KEYS: loaded, reservation, pending, wallet × nW, counter × nB
 * ARGV: nW, nB, amount, capPercent, walletRequired, id, org, budgetsJson, requestId, atMs,
 *       expiresAtMs, retentionMs, counterGraceMs, scopeName × nW, (limit | -1, periodEndMs) × nB
 * → {'NEEDS_LOAD'} | {'EXISTS', hash} | {'BUDGET', i, remaining} | {'INSUFFICIENT', firstFunded, availableMax}
 *   | {'OK', payer, availableAfter, hash}
 */
export const RESERVE = script(
  'reserve',
  HELPERS +
    String.raw`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NEEDS_LOAD'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'EXISTS', redis.call('HGETALL', KEYS[2])} end
local nW = tonumber(ARGV[1])
local nB = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local capPercent = tonumber(ARGV[4])
local budgetArg = 14 + nW
for i = 1, nB do
  local limit = tonumber(ARGV[budgetArg + (i - 1) * 2])
  if limit >= 0 then
    local c = redis.call('HMGET', KEYS[3 + nW + i], 'reserved', 'spent')
    local used = (tonumber(c[1]) or 0) + (tonumber(c[2]) or 0)
    if used + amount > limit then
      local remaining = limit - used
      if remaining < 0 then remaining = 0 end
      return {'BUDGET', i, remaining}
    end
  end
end
local payer = 0
local walletId = ''
local availableAfter = -1
if ARGV[5] == '1' then
  local firstFunded = 0
  local availableMax = 0
  for i = 1, nW do
    local w = redis.call('HMGET', KEYS[3 + i], 'id', 'allocated', 'reserved', 'spent')
    if w[1] then
      if firstFunded == 0 then firstFunded = i end
      local allocated = tonumber(w[2])
      local used = tonumber(w[3]) + tonumber(w[4])
      -- cap = min(floor(allocated × capPercent / 100), allocated): a block threshold above 100%
      -- still cannot spend money the wallet does not have.
      local cap = math.floor(allocated * capPercent / 100)
      if cap > allocated then cap = allocated end
      local headroom = cap - used
      if headroom < 0 then headroom = 0 end
      if amount <= headroom then
        payer = i
        walletId = w[1]
        availableAfter = allocated - used - amount
        break
      end
      if headroom > availableMax then availableMax = headroom end
    end
  end
  if payer == 0 then return {'INSUFFICIENT', firstFunded, availableMax} end
  redis.call('HINCRBY', KEYS[3 + payer], 'reserved', ARGV[3])
end
local now = nowMs()
local grace = tonumber(ARGV[13])
local bkeys = {}
for i = 1, nB do
  local key = KEYS[3 + nW + i]
  redis.call('HINCRBY', key, 'reserved', ARGV[3])
  local periodEnd = tonumber(ARGV[budgetArg + (i - 1) * 2 + 1])
  if periodEnd < now then periodEnd = now end
  redis.call('PEXPIREAT', key, s(periodEnd + grace))
  bkeys[i] = key
end
local keepUntil = tonumber(ARGV[11])
if keepUntil < now then keepUntil = now end
local wkey = ''
local scope = ''
if payer > 0 then
  wkey = KEYS[3 + payer]
  scope = ARGV[13 + payer]
end
redis.call('HSET', KEYS[2], 'id', ARGV[6], 'org', ARGV[7], 'amount', ARGV[3], 'wallet', walletId, 'wkey', wkey,
  'scope', scope, 'budgets', ARGV[8], 'bkeys', table.concat(bkeys, '\n'), 'req', ARGV[9], 'created', ARGV[10],
  'expires', ARGV[11], 'status', 'pending', 'settled', '', 'unbilled', '0', 'resolved', '')
redis.call('PEXPIREAT', KEYS[2], s(keepUntil + tonumber(ARGV[12])))
redis.call('ZADD', KEYS[3], ARGV[11], ARGV[6])
return {'OK', payer, availableAfter, redis.call('HGETALL', KEYS[2])}
`,
)

/**
 * Settle (charge actual, capped at what the wallet can still cover), void (charge 0) or expire
 * (charge the reserved amount). With adopt = '1', a reservation Redis no longer knows (lost with
 * a flush, known to PostgreSQL as pending) is first re-created as pending, then resolved.
 *
 * KEYS: loaded, reservation, pending
 * ARGV: mode, actual, atMs, resolvedRetentionMs, counterGraceMs, adopt,
 *       [id, org, amount, wkey, walletId, scope, budgetsJson, bkeys, requestId, created, expires]
 * → {'NEEDS_LOAD'} | {'NOT_FOUND'} | {'ALREADY', hash}
 *   | {'OK', charged, wanted, walletAllocated, walletSpentBefore, walletAvailableAfter, {counterSpentBefore…}, hash}
 */
export const RESOLVE = script(
  'resolve',
  HELPERS +
    String.raw`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NEEDS_LOAD'} end
local grace = tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[2]) == 0 then
  if ARGV[6] ~= '1' then return {'NOT_FOUND'} end
  local wkey = ARGV[10]
  local walletId = ARGV[11]
  if wkey ~= '' and redis.call('EXISTS', wkey) == 0 then
    wkey = ''
    walletId = ''
  end
  if wkey ~= '' then redis.call('HINCRBY', wkey, 'reserved', ARGV[9]) end
  for _, k in ipairs(split(ARGV[14])) do
    redis.call('HINCRBY', k, 'reserved', ARGV[9])
    if redis.call('PTTL', k) < 0 then redis.call('PEXPIRE', k, s(grace)) end
  end
  redis.call('HSET', KEYS[2], 'id', ARGV[7], 'org', ARGV[8], 'amount', ARGV[9], 'wallet', walletId, 'wkey', wkey,
    'scope', ARGV[12], 'budgets', ARGV[13], 'bkeys', ARGV[14], 'req', ARGV[15], 'created', ARGV[16],
    'expires', ARGV[17], 'status', 'pending', 'settled', '', 'unbilled', '0', 'resolved', '')
end
local r = redis.call('HMGET', KEYS[2], 'status', 'amount', 'wkey', 'bkeys', 'id')
if r[1] ~= 'pending' then return {'ALREADY', redis.call('HGETALL', KEYS[2])} end
local mode = ARGV[1]
local amount = tonumber(r[2])
local wanted = 0
if mode == 'settled' then wanted = tonumber(ARGV[2]) elseif mode == 'expired' then wanted = amount end
local charged = wanted
local wAllocated = -1
local wSpentBefore = -1
local wAvailable = -1
if r[3] ~= '' then
  local w = redis.call('HMGET', r[3], 'allocated', 'reserved', 'spent')
  if w[1] then
    local allocated = tonumber(w[1])
    local reserved = tonumber(w[2])
    local spent = tonumber(w[3])
    local others = allocated - reserved - spent
    if others < 0 then others = 0 end
    -- The wallet never pays what it cannot cover: above reserved + free is recorded as unbilled.
    if amount + others < charged then charged = amount + others end
    local left = reserved - amount
    if left < 0 then left = 0 end
    redis.call('HSET', r[3], 'reserved', s(left), 'spent', s(spent + charged))
    wAllocated = allocated
    wSpentBefore = spent
    wAvailable = others + amount - charged
  end
end
local spentBefore = {}
for i, k in ipairs(split(r[4])) do
  local c = redis.call('HMGET', k, 'reserved', 'spent')
  local before = tonumber(c[2]) or 0
  local left = (tonumber(c[1]) or 0) - amount
  if left < 0 then left = 0 end
  spentBefore[i] = before
  redis.call('HSET', k, 'reserved', s(left), 'spent', s(before + wanted))
  if redis.call('PTTL', k) < 0 then redis.call('PEXPIRE', k, s(grace)) end
end
redis.call('HSET', KEYS[2], 'status', mode, 'settled', s(charged), 'unbilled', s(wanted - charged), 'resolved', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[3], r[5])
return {'OK', charged, wanted, wAllocated, wSpentBefore, wAvailable, spentBefore, redis.call('HGETALL', KEYS[2])}
`,
)

/**
 * KEYS: loaded, wallet. ARGV: walletId, amount, createdAtMs
 * → {'NEEDS_LOAD'} | {'OK', {id, allocated, reserved, spent, created}}
 */
export const ALLOCATE = script(
  'allocate',
  String.raw`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NEEDS_LOAD'} end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'id', ARGV[1], 'allocated', '0', 'reserved', '0', 'spent', '0', 'created', ARGV[3])
end
redis.call('HINCRBY', KEYS[2], 'allocated', ARGV[2])
return {'OK', redis.call('HMGET', KEYS[2], 'id', 'allocated', 'reserved', 'spent', 'created')}
`,
)

/** KEYS: loaded, wallet × n → {'NEEDS_LOAD'} | {'OK', {id, allocated, reserved, spent, created} × n} */
export const READ_WALLETS = script(
  'read_wallets',
  String.raw`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NEEDS_LOAD'} end
local out = {}
for i = 2, #KEYS do out[i - 1] = redis.call('HMGET', KEYS[i], 'id', 'allocated', 'reserved', 'spent', 'created') end
return {'OK', out}
`,
)

/** KEYS: loaded, counter × n → {'NEEDS_LOAD'} | {'OK', {reserved, spent} × n} */
export const READ_COUNTERS = script(
  'read_counters',
  String.raw`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NEEDS_LOAD'} end
local out = {}
for i = 2, #KEYS do out[i - 1] = redis.call('HMGET', KEYS[i], 'reserved', 'spent') end
return {'OK', out}
`,
)

/**
 * Spend without a reservation. KEYS: loaded, counter × n. ARGV: amount, counterGraceMs, periodEndMs × n
 * → {'NEEDS_LOAD'} | {'OK', {spentBefore × n}}
 */
export const SPEND = script(
  'spend',
  HELPERS +
    String.raw`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NEEDS_LOAD'} end
local now = nowMs()
local out = {}
for i = 2, #KEYS do
  local before = tonumber(redis.call('HGET', KEYS[i], 'spent')) or 0
  out[i - 1] = before
  redis.call('HSET', KEYS[i], 'spent', s(before + tonumber(ARGV[1])))
  if redis.call('HEXISTS', KEYS[i], 'reserved') == 0 then redis.call('HSET', KEYS[i], 'reserved', '0') end
  local periodEnd = tonumber(ARGV[1 + i])
  if periodEnd < now then periodEnd = now end
  redis.call('PEXPIREAT', KEYS[i], s(periodEnd + tonumber(ARGV[2])))
end
return {'OK', out}
`,
)

/**
 * Applies the cost of a reservation served fail-open (emergency allowance) once Redis is back:
 * records it as settled and charges the first wallet of the cascade that can cover it (else the
 * first that exists, as far as it can; the rest is unbilled), and its budget counters.
 * Idempotent: a reservation already known is left alone.
 *
 * KEYS: loaded, reservation, wallet × nW, counter × nB
 * ARGV: nW, nB, wanted, id, org, budgetsJson, requestId, created, expires, resolved, resolvedRetentionMs,
 *       counterGraceMs, scopeName × nW
 * → {'NEEDS_LOAD'} | {'ALREADY'} | {'OK', walletIndex, walletId, charged}
 */
export const CHARGE = script(
  'charge',
  HELPERS +
    String.raw`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NEEDS_LOAD'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'ALREADY'} end
local nW = tonumber(ARGV[1])
local nB = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local payer = 0
local first = 0
for i = 1, nW do
  local w = redis.call('HMGET', KEYS[2 + i], 'allocated', 'reserved', 'spent')
  if w[1] then
    if first == 0 then first = i end
    if tonumber(w[1]) - tonumber(w[2]) - tonumber(w[3]) >= wanted then
      payer = i
      break
    end
  end
end
if payer == 0 then payer = first end
local charged = wanted
local walletId = ''
local wkey = ''
local scope = ''
if payer > 0 then
  wkey = KEYS[2 + payer]
  local w = redis.call('HMGET', wkey, 'id', 'allocated', 'reserved', 'spent')
  local free = tonumber(w[2]) - tonumber(w[3]) - tonumber(w[4])
  if free < 0 then free = 0 end
  if charged > free then charged = free end
  redis.call('HINCRBY', wkey, 'spent', s(charged))
  walletId = w[1]
  scope = ARGV[12 + payer]
end
local bkeys = {}
for i = 1, nB do
  local k = KEYS[2 + nW + i]
  redis.call('HINCRBY', k, 'spent', s(wanted))
  if redis.call('HEXISTS', k, 'reserved') == 0 then redis.call('HSET', k, 'reserved', '0') end
  if redis.call('PTTL', k) < 0 then redis.call('PEXPIRE', k, ARGV[12]) end
  bkeys[i] = k
end
redis.call('HSET', KEYS[2], 'id', ARGV[4], 'org', ARGV[5], 'amount', s(wanted), 'wallet', walletId, 'wkey', wkey,
  'scope', scope, 'budgets', ARGV[6], 'bkeys', table.concat(bkeys, '\n'), 'req', ARGV[7], 'created', ARGV[8],
  'expires', ARGV[9], 'status', 'settled', 'settled', s(charged), 'unbilled', s(wanted - charged), 'resolved', ARGV[10])
redis.call('PEXPIRE', KEYS[2], ARGV[11])
return {'OK', payer, walletId, charged}
`,
)

/**
 * Rebuilds one org from PostgreSQL, unless another process already did (the marker exists).
 * KEYS: loaded, pending. ARGV: JSON {wallets, reservations, counters}; every number is a string.
 * → 1 loaded now | 0 already loaded
 */
export const LOAD = script(
  'load',
  String.raw`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local data = cjson.decode(ARGV[1])
redis.call('DEL', KEYS[2])
for _, w in ipairs(data.wallets) do
  redis.call('DEL', w.key)
  redis.call('HSET', w.key, 'id', w.id, 'allocated', w.allocated, 'reserved', w.reserved, 'spent', w.spent, 'created', w.created)
end
for _, r in ipairs(data.reservations) do
  redis.call('DEL', r.key)
  redis.call('HSET', r.key, unpack(r.fields))
  redis.call('PEXPIRE', r.key, r.ttl)
  redis.call('ZADD', KEYS[2], r.expires, r.id)
end
for _, c in ipairs(data.counters) do
  redis.call('DEL', c.key)
  redis.call('HSET', c.key, 'reserved', c.reserved, 'spent', c.spent)
  redis.call('PEXPIRE', c.key, c.ttl)
end
redis.call('SET', KEYS[1], '1')
return 1
`,
)

/** KEYS: lock. ARGV: token. Deletes the lock only if this process still holds it. */
export const UNLOCK = script(
  'unlock',
  String.raw`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
)
