/**
 * The Lua scripts that change the shared counters. Each runs atomically inside Redis, so a
 * reservation against the whole cascade and every hard budget is one round trip (EVALSHA), and so
 * is a call's commit (its settlement and its usage event). Every script first checks the org's
 * `loaded` marker and answers NEEDS_LOAD when Redis lost the org (restart, flush): the adapter
 * then rebuilds the org from PostgreSQL under a lock and retries.
 *
 * The journal: every script that moves money appends what it did to the org's journal stream
 * (`tg:{org}:journal`), in the same atomic step, with the call's usage event when there is one.
 * Each gateway process drains the streams into PostgreSQL (journal-drain.ts). So once a script
 * returned, its money move and its usage event are as durable as Redis is (its `appendonly`
 * setting): a gateway process killed at any moment after loses neither.
 *
 * Numbers: Redis Lua numbers are doubles (exact below 2^53, which bounds Micros anyway), but a
 * number handed to redis.call() or cjson is formatted with %.14g, so computed integers are
 * written through `s()` (%d) to keep every digit, and journal JSON carries numbers as decimal
 * strings (PostgreSQL casts them). Keys not passed in KEYS (the wallet and budget counters named
 * inside a reservation hash) always share the reservation's `{org}` hash tag, so they live in the
 * same cluster slot.
 *
 * Reservation hash fields: id, org, amount, wallet (id or ''), wkey (wallet key or ''), scope,
 * budgets (JSON BudgetCounterRef[]), bkeys (counter keys, newline-separated), req, created,
 * expires, status, settled ('' while pending), unbilled, resolved ('' while pending), ctx.
 * Wallet hash fields: id, allocated, reserved, spent, created, team, aspent (spent when the last
 * allocation was recorded, absent for a wallet last allocated before it was), atotal (the
 * allocated total that allocation left: aspent holds only while allocated equals it).
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

/** The consumer group every process drains the journal streams with. */
export const JOURNAL_GROUP = 'tollgate'

const HELPERS = String.raw`
local MAX = 9007199254740991
local function s(n) return string.format('%d', n) end
local function q(str) return cjson.encode(str) end
local function split(str)
  local out = {}
  for k in string.gmatch(str, '[^\n]+') do out[#out + 1] = k end
  return out
end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function addSat(a, b)
  if a >= MAX - b then return MAX end
  return a + b
end
-- Spend without a reservation on one budget counter, kept until its period ends plus the grace;
-- returns the spend before, as a string.
local function countSpend(key, amount, periodEnd, now, grace)
  local before = tonumber(redis.call('HGET', key, 'spent')) or 0
  redis.call('HSET', key, 'spent', s(addSat(before, amount)))
  if redis.call('HEXISTS', key, 'reserved') == 0 then redis.call('HSET', key, 'reserved', '0') end
  if periodEnd < now then periodEnd = now end
  redis.call('PEXPIREAT', key, s(periodEnd + grace))
  return s(before)
end
-- cap = min(floor(allocated × capPercent / 100), allocated), exact for allocated up to 2^53:
-- floor(a/100)·p + floor((a mod 100)·p / 100) never leaves the doubles' exact integers.
local function capOf(allocated, capPercent)
  if capPercent > 100 then capPercent = 100 end
  local hundreds = math.floor(allocated / 100)
  return hundreds * capPercent + math.floor((allocated - hundreds * 100) * capPercent / 100)
end
local function rfields(h)
  return '"id":' .. q(h.id) .. ',"orgId":' .. q(h.org) .. ',"walletId":' .. (h.wallet ~= '' and q(h.wallet) or 'null')
    .. ',"scope":' .. (h.scope ~= '' and q(h.scope) or 'null') .. ',"amount":"' .. h.amount .. '","budgets":' .. h.budgets
    .. ',"requestId":' .. (h.req ~= '' and q(h.req) or 'null') .. ',"createdAt":"' .. h.created .. '","expiresAt":"' .. h.expires
    .. '","emergency":false,"cascade":null,"context":' .. ((h.ctx ~= nil and h.ctx ~= '') and q(h.ctx) or 'null')
end
`

/**
 * KEYS: loaded, reservation, pending, journal, wallet × nW, counter × nB
 * ARGV: nW, nB, amount, capPercent, walletRequired, id, org, budgetsJson, requestId, atMs,
 *       expiresAtMs, retentionMs, counterGraceMs, backlogMax, entryId, context,
 *       scopeName × nW, teamOf × nW ('*' = any team), (limit | -1, periodEndMs) × nB
 * → {'NEEDS_LOAD'} | {'EXISTS', hash} | {'BACKLOG'} | {'BUDGET', i, remaining}
 *   | {'INSUFFICIENT', firstFunded, availableMax} | {'OK', payer, availableAfter, payingWalletId, journalEntryId, generation}
 * The caller builds the pending reservation from its request and the paying wallet: returning the
 * hash it just wrote would cost ~30 reply strings per call.
 */
export const RESERVE = script(
  'reserve',
  HELPERS +
    String.raw`
local gen = redis.call('GET', KEYS[1])
if not gen then return {'NEEDS_LOAD'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'EXISTS', redis.call('HGETALL', KEYS[2])} end
-- PostgreSQL unreachable for long: the journal keeps everything, but it is bounded.
if redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[14]) then return {'BACKLOG'} end
local nW = tonumber(ARGV[1])
local nB = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local capPercent = tonumber(ARGV[4])
local budgetArg = 17 + 2 * nW
for i = 1, nB do
  local limit = tonumber(ARGV[budgetArg + (i - 1) * 2])
  if limit >= 0 then
    local c = redis.call('HMGET', KEYS[4 + nW + i], 'reserved', 'spent')
    local used = (tonumber(c[1]) or 0) + (tonumber(c[2]) or 0)
    if used + amount > limit then
      local remaining = limit - used
      if remaining < 0 then remaining = 0 end
      return {'BUDGET', i, s(remaining)}
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
    local w = redis.call('HMGET', KEYS[4 + i], 'id', 'allocated', 'reserved', 'spent', 'team')
    local teamOf = ARGV[16 + nW + i]
    -- A user named by the call spends only a wallet of its key's team: another team's is skipped.
    if w[1] and (teamOf == '*' or (w[5] or '') == teamOf) then
      if firstFunded == 0 then firstFunded = i end
      local allocated = tonumber(w[2])
      local used = tonumber(w[3]) + tonumber(w[4])
      local headroom = capOf(allocated, capPercent) - used
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
  if payer == 0 then return {'INSUFFICIENT', firstFunded, s(availableMax)} end
  redis.call('HINCRBY', KEYS[4 + payer], 'reserved', ARGV[3])
end
local now = nowMs()
local grace = tonumber(ARGV[13])
local bkeys = {}
for i = 1, nB do
  local key = KEYS[4 + nW + i]
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
  wkey = KEYS[4 + payer]
  scope = ARGV[16 + payer]
end
redis.call('HSET', KEYS[2], 'id', ARGV[6], 'org', ARGV[7], 'amount', ARGV[3], 'wallet', walletId, 'wkey', wkey,
  'scope', scope, 'budgets', ARGV[8], 'bkeys', table.concat(bkeys, '\n'), 'req', ARGV[9], 'created', ARGV[10],
  'expires', ARGV[11], 'status', 'pending', 'settled', '', 'unbilled', '0', 'resolved', '', 'ctx', ARGV[16])
redis.call('PEXPIREAT', KEYS[2], s(keepUntil + tonumber(ARGV[12])))
redis.call('ZADD', KEYS[3], ARGV[11], ARGV[6])
-- The journal's copy of what was just written (reading the hash back would cost a reply of 32 strings).
local h = {id = ARGV[6], org = ARGV[7], wallet = walletId, scope = scope, amount = ARGV[3], budgets = ARGV[8], req = ARGV[9],
  created = ARGV[10], expires = ARGV[11], ctx = ARGV[16]}
local xid = redis.call('XADD', KEYS[4], '*', 'j', '{"kind":"reserve","entryId":' .. q(ARGV[15]) .. ',"r":{' .. rfields(h) .. '}}')
return {'OK', payer, s(availableAfter), walletId, xid, gen}
`,
)

/**
 * Settle (charge actual, capped at what the wallet can still cover), void (charge 0) or expire
 * (charge the reserved amount) — with the call's usage event, when given, in the same journal
 * entry. With adopt = '1', a reservation Redis no longer knows (lost with a flush, known to
 * PostgreSQL as pending) is first re-created as pending, then resolved. With adopt = 'own' the
 * caller holds the pending reservation (it made it) and the OK reply carries no hash (false).
 *
 * Budgets that came to count the call after it reserved (`alsoCount`) are further keys: a
 * settlement counts what it wanted toward them too, journaled as a spend entry of their own right
 * after the resolution's, so the drain applies them to PostgreSQL as it applies any spend.
 *
 * KEYS: loaded, reservation, pending, journal, joined counter × nJ
 * ARGV: mode, actual, atMs, resolvedRetentionMs, counterGraceMs, adopt, entryId, entryId2, usageJson ('' for none),
 *       [id, org, amount, wkey, walletId, scope, budgetsJson, bkeys, requestId, created, expires],
 *       then with nJ > 0: joined spend entry (JSON), periodEndMs × nJ (the last ARGV, counted from the end)
 * → {'NEEDS_LOAD'} | {'NOT_FOUND'} | {'ALREADY', hash}
 *   | {'OK', charged, wanted, walletAllocated, walletSpentBefore, walletAvailableAfter, {counterSpentBefore…}, hash, walletTeam,
 *      journalEntryId, generation, walletSpentAtAllocation ('' when not known for the wallet's current total),
 *      {joinedSpentBefore…}, joinedJournalEntryId ('' when none was counted)}
 */
export const RESOLVE = script(
  'resolve',
  HELPERS +
    String.raw`
local gen = redis.call('GET', KEYS[1])
if not gen then return {'NEEDS_LOAD'} end
local grace = tonumber(ARGV[5])
-- One read of every field the script needs (a missing hash reads as all false).
local r = redis.call('HMGET', KEYS[2], 'status', 'amount', 'wkey', 'bkeys', 'id', 'org', 'wallet', 'scope', 'budgets', 'req',
  'created', 'expires', 'ctx')
if not r[1] then
  if ARGV[6] ~= '1' then return {'NOT_FOUND'} end
  local wkey = ARGV[13]
  local walletId = ARGV[14]
  if wkey ~= '' and redis.call('EXISTS', wkey) == 0 then
    wkey = ''
    walletId = ''
  end
  if wkey ~= '' then redis.call('HINCRBY', wkey, 'reserved', ARGV[12]) end
  for _, k in ipairs(split(ARGV[17])) do
    redis.call('HINCRBY', k, 'reserved', ARGV[12])
    if redis.call('PTTL', k) < 0 then redis.call('PEXPIRE', k, s(grace)) end
  end
  redis.call('HSET', KEYS[2], 'id', ARGV[10], 'org', ARGV[11], 'amount', ARGV[12], 'wallet', walletId, 'wkey', wkey,
    'scope', ARGV[15], 'budgets', ARGV[16], 'bkeys', ARGV[17], 'req', ARGV[18], 'created', ARGV[19],
    'expires', ARGV[20], 'status', 'pending', 'settled', '', 'unbilled', '0', 'resolved', '', 'ctx', '')
  r = {'pending', ARGV[12], wkey, ARGV[17], ARGV[10], ARGV[11], walletId, ARGV[15], ARGV[16], ARGV[18], ARGV[19], ARGV[20], ''}
end
if r[1] ~= 'pending' then return {'ALREADY', redis.call('HGETALL', KEYS[2])} end
local mode = ARGV[1]
local amount = tonumber(r[2])
local wanted = 0
if mode == 'settled' then wanted = tonumber(ARGV[2]) elseif mode == 'expired' then wanted = amount end
local charged = wanted
local wAllocated = -1
local wSpentBefore = -1
local wAvailable = -1
local wTeam = ''
local wAtAllocation = ''
if r[3] ~= '' then
  local w = redis.call('HMGET', r[3], 'allocated', 'reserved', 'spent', 'team', 'aspent', 'atotal')
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
    wTeam = w[4] or ''
    if w[5] and w[6] and tonumber(w[6]) == allocated then wAtAllocation = w[5] end
  end
end
local spentBefore = {}
for i, k in ipairs(split(r[4])) do
  local c = redis.call('HMGET', k, 'reserved', 'spent')
  local before = tonumber(c[2]) or 0
  local left = (tonumber(c[1]) or 0) - amount
  if left < 0 then left = 0 end
  spentBefore[i] = s(before)
  -- A field created here means the counter may be new (gone since the reservation): give it a TTL then.
  if redis.call('HSET', k, 'reserved', s(left), 'spent', s(addSat(before, wanted))) > 0 and redis.call('PTTL', k) < 0 then
    redis.call('PEXPIRE', k, s(grace))
  end
end
redis.call('HSET', KEYS[2], 'status', mode, 'settled', s(charged), 'unbilled', s(wanted - charged), 'resolved', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[3], r[5])
local h = {id = r[5], org = r[6], wallet = r[7], scope = r[8], amount = r[2], budgets = r[9], req = r[10], created = r[11],
  expires = r[12], ctx = r[13] or ''}
local kinds = {settled = 'settlement', voided = 'void', expired = 'expiry'}
local entry = '{"kind":"resolve","entryId":' .. q(ARGV[7]) .. ',"entryId2":' .. q(ARGV[8]) .. ',"entryKind":"' .. kinds[mode]
  .. '","wanted":"' .. s(wanted) .. '","r":{' .. rfields(h) .. ',"status":"' .. mode .. '","settled":"' .. s(charged)
  .. '","unbilled":"' .. s(wanted - charged) .. '","resolvedAt":"' .. ARGV[3] .. '"}}'
local xid
if ARGV[9] ~= '' then
  xid = redis.call('XADD', KEYS[4], '*', 'j', entry, 'u', ARGV[9])
else
  xid = redis.call('XADD', KEYS[4], '*', 'j', entry)
end
local nJ = #KEYS - 4
local joinedBefore = {}
local jxid = ''
if nJ > 0 and mode == 'settled' and wanted > 0 then
  local base = #ARGV - nJ
  local now = nowMs()
  for i = 1, nJ do joinedBefore[i] = countSpend(KEYS[4 + i], wanted, tonumber(ARGV[base + i]), now, grace) end
  jxid = redis.call('XADD', KEYS[4], '*', 'j', ARGV[base])
end
local hash = false
if ARGV[6] ~= 'own' then hash = redis.call('HGETALL', KEYS[2]) end
return {'OK', s(charged), s(wanted), s(wAllocated), s(wSpentBefore), s(wAvailable), spentBefore, hash, wTeam, xid, gen,
  wAtAllocation, joinedBefore, jxid}
`,
)

/**
 * A call without a reservation: its spend on budget counters (if any) and its usage event (if
 * any), journaled together. With a dedupe key (an ingested event's external id), a second record
 * with the same key changes nothing.
 *
 * KEYS: loaded, journal, dedupe (a key of the org; touched only when ARGV[9] > 0), counter × nB
 * ARGV: nB, amount, counterGraceMs, eventId, org, atMs, budgetsJson, usageJson ('' for none), dedupeTtlMs (0: none),
 *       periodEndMs × nB
 * → {'NEEDS_LOAD'} | {'DUPLICATE'} | {'OK', {spentBefore × nB}, journalEntryId ('' when nothing journaled), generation}
 */
export const RECORD = script(
  'record',
  HELPERS +
    String.raw`
local gen = redis.call('GET', KEYS[1])
if not gen then return {'NEEDS_LOAD'} end
if tonumber(ARGV[9]) > 0 then
  if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[9]) then return {'DUPLICATE'} end
end
local nB = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local now = nowMs()
local out = {}
if amount > 0 then
  for i = 1, nB do out[i] = countSpend(KEYS[3 + i], amount, tonumber(ARGV[9 + i]), now, tonumber(ARGV[3])) end
end
local fields = {}
if amount > 0 and nB > 0 then
  fields[#fields + 1] = 'j'
  fields[#fields + 1] = '{"kind":"spend","eventId":' .. q(ARGV[4]) .. ',"orgId":' .. q(ARGV[5]) .. ',"amount":"' .. ARGV[2]
    .. '","atMs":"' .. ARGV[6] .. '","budgets":' .. ARGV[7] .. '}'
end
if ARGV[8] ~= '' then
  fields[#fields + 1] = 'u'
  fields[#fields + 1] = ARGV[8]
end
local xid = ''
if #fields > 0 then xid = redis.call('XADD', KEYS[2], '*', unpack(fields)) end
return {'OK', out, xid, gen}
`,
)

/**
 * KEYS: loaded, wallet, journal. ARGV: walletId, amount, createdAtMs, team ('' for none)
 * → {'NEEDS_LOAD'} | {'OK', {id, allocated, reserved, spent, created, team, aspent, atotal}}
 * The allocation itself is written to PostgreSQL first (allocations are rare and born there).
 * The wallet's spend at this allocation is recorded with it, in this atomic step (aspent, atotal);
 * an amount of 0 records only that.
 */
export const ALLOCATE = script(
  'allocate',
  String.raw`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NEEDS_LOAD'} end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'id', ARGV[1], 'allocated', '0', 'reserved', '0', 'spent', '0', 'created', ARGV[3], 'team', ARGV[4])
end
redis.call('HINCRBY', KEYS[2], 'allocated', ARGV[2])
local w = redis.call('HMGET', KEYS[2], 'allocated', 'spent')
redis.call('HSET', KEYS[2], 'atotal', w[1], 'aspent', w[2])
return {'OK', redis.call('HMGET', KEYS[2], 'id', 'allocated', 'reserved', 'spent', 'created', 'team', 'aspent', 'atotal')}
`,
)

/** KEYS: loaded, wallet × n → {'NEEDS_LOAD'} | {'OK', {id, allocated, reserved, spent, created, team, aspent, atotal} × n} */
export const READ_WALLETS = script(
  'read_wallets',
  String.raw`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NEEDS_LOAD'} end
local out = {}
for i = 2, #KEYS do out[i - 1] = redis.call('HMGET', KEYS[i], 'id', 'allocated', 'reserved', 'spent', 'created', 'team', 'aspent', 'atotal') end
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
 * Applies the cost of a reservation served fail-open (emergency allowance) once Redis is back:
 * records it as settled and charges the first wallet of the cascade that can cover it (else the
 * first that exists, as far as it can; the rest is unbilled), and its budget counters; journals
 * the charge. Idempotent: a reservation already known is left alone.
 *
 * KEYS: loaded, reservation, journal, wallet × nW, counter × nB
 * ARGV: nW, nB, wanted, id, org, budgetsJson, requestId, created, expires, resolved, resolvedRetentionMs,
 *       counterGraceMs, eventId, entryId, scopeName × nW
 * → {'NEEDS_LOAD'} | {'ALREADY'} | {'OK', walletIndex, walletId, charged, journalEntryId, generation}
 */
export const CHARGE = script(
  'charge',
  HELPERS +
    String.raw`
local gen = redis.call('GET', KEYS[1])
if not gen then return {'NEEDS_LOAD'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'ALREADY'} end
local nW = tonumber(ARGV[1])
local nB = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local payer = 0
local first = 0
for i = 1, nW do
  local w = redis.call('HMGET', KEYS[3 + i], 'allocated', 'reserved', 'spent')
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
  wkey = KEYS[3 + payer]
  local w = redis.call('HMGET', wkey, 'id', 'allocated', 'reserved', 'spent')
  local free = tonumber(w[2]) - tonumber(w[3]) - tonumber(w[4])
  if free < 0 then free = 0 end
  if charged > free then charged = free end
  redis.call('HINCRBY', wkey, 'spent', s(charged))
  walletId = w[1]
  scope = ARGV[14 + payer]
end
local bkeys = {}
for i = 1, nB do
  local k = KEYS[3 + nW + i]
  local before = tonumber(redis.call('HGET', k, 'spent')) or 0
  redis.call('HSET', k, 'spent', s(addSat(before, wanted)))
  if redis.call('HEXISTS', k, 'reserved') == 0 then redis.call('HSET', k, 'reserved', '0') end
  if redis.call('PTTL', k) < 0 then redis.call('PEXPIRE', k, ARGV[12]) end
  bkeys[i] = k
end
redis.call('HSET', KEYS[2], 'id', ARGV[4], 'org', ARGV[5], 'amount', s(wanted), 'wallet', walletId, 'wkey', wkey,
  'scope', scope, 'budgets', ARGV[6], 'bkeys', table.concat(bkeys, '\n'), 'req', ARGV[7], 'created', ARGV[8],
  'expires', ARGV[9], 'status', 'settled', 'settled', s(charged), 'unbilled', s(wanted - charged), 'resolved', ARGV[10], 'ctx', '')
redis.call('PEXPIRE', KEYS[2], ARGV[11])
local xid = redis.call('XADD', KEYS[3], '*', 'j', '{"kind":"charge","eventId":' .. q(ARGV[13]) .. ',"entryId":' .. q(ARGV[14])
  .. ',"orgId":' .. q(ARGV[5]) .. ',"reservationId":' .. q(ARGV[4]) .. ',"walletId":' .. (walletId ~= '' and q(walletId) or 'null')
  .. ',"scope":' .. (scope ~= '' and q(scope) or 'null') .. ',"charged":"' .. s(charged) .. '","wanted":"' .. s(wanted)
  .. '","atMs":"' .. ARGV[10] .. '","budgets":' .. ARGV[6] .. '}')
return {'OK', payer, walletId, s(charged), xid, gen}
`,
)

/**
 * Rebuilds one org from PostgreSQL, unless another process already did (the marker exists), and
 * makes sure its journal stream has the drain group. The marker's value is the rebuild's
 * generation: every money script returns it, so a process can tell that Redis lost (and rebuilt)
 * an org since it journaled something there.
 * KEYS: loaded, pending, journal. ARGV: JSON {wallets, reservations, counters}; every number is a string; group name; generation.
 * → 1 loaded now | 0 already loaded
 */
export const LOAD = script(
  'load',
  String.raw`
pcall(redis.call, 'XGROUP', 'CREATE', KEYS[3], ARGV[2], '0', 'MKSTREAM')
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local data = cjson.decode(ARGV[1])
redis.call('DEL', KEYS[2])
for _, w in ipairs(data.wallets) do
  redis.call('DEL', w.key)
  redis.call('HSET', w.key, 'id', w.id, 'allocated', w.allocated, 'reserved', w.reserved, 'spent', w.spent, 'created', w.created, 'team', w.team)
  if w.aspent ~= '' then redis.call('HSET', w.key, 'aspent', w.aspent, 'atotal', w.atotal) end
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
redis.call('SET', KEYS[1], ARGV[3])
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

/**
 * KEYS: journal stream, then the hashes of the reservations the applied entries resolved.
 * ARGV: group, retentionMs, then the applied entry ids. Acknowledges and deletes the entries and
 * lets each resolved reservation's hash expire after retentionMs: one command per org and drain,
 * where it was two plus one per resolved reservation.
 */
export const ACKNOWLEDGE = script(
  'acknowledge',
  String.raw`
local chunk = 1000
for i = 3, #ARGV, chunk do
  local last = math.min(i + chunk - 1, #ARGV)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, last))
  redis.call('XDEL', KEYS[1], unpack(ARGV, i, last))
end
for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return #ARGV - 2
`,
)
