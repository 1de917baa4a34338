-- wrk script for bench/run.sh. Environment:
--   MODE   floor | fixed (the URL as given) | lookup | get | charge | mix | token |
--          peer_lookup | peer_create
--   DATA   the directory bench-seed wrote (codes.txt, ids.txt, cards.txt)
--   TOKEN  a bearer token (vouchd modes), BASIC an HTTP Basic credential (token mode)
local mode = os.getenv("MODE")
local data = os.getenv("DATA")
local codes, ids, cards = nil, nil, nil
local thread_no = 0

-- A list file as one string of equally long lines, picked from by offset: a Lua table of
-- 1 000 000 strings made the garbage collector stop the load thread for hundreds of
-- milliseconds now and then, which showed up as the server's p99.
local function load(name)
  local f = assert(io.open(data .. "/" .. name, "rb"))
  local blob = f:read("*a")
  f:close()
  local width = blob:find("\n", 1, true)
  return { blob = blob, width = width, n = math.floor(#blob / width) }
end

function setup(thread)
  thread_no = thread_no + 1
  thread:set("seed", thread_no)
end

function init(args)
  math.randomseed(os.time() * 100 + (seed or 0))
  if mode == "lookup" or mode == "mix" or mode == "peer_lookup" then codes = load("codes.txt") end
  if mode == "get" then ids = load("ids.txt") end
  if mode == "charge" or mode == "mix" then cards = load("cards.txt") end
  if os.getenv("TOKEN") then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
  end
  wrk.headers["Content-Type"] = "application/json"
end

local function pick(list)
  local at = (math.random(list.n) - 1) * list.width
  return list.blob:sub(at + 1, at + list.width - 1)
end

local function lookup()
  return wrk.format("GET", "/v1/vouchers?filter%5Bcode%5D=" .. pick(codes))
end

local function charge()
  return wrk.format("POST", "/v1/vouchers/" .. pick(cards) .. "/charges", nil, '{"type":"charge","amount":"0.01"}')
end

local made = 0
local alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
local function fresh(n)
  local t = {}
  for i = 1, n do
    local k = math.random(#alphabet)
    t[i] = alphabet:sub(k, k)
  end
  return table.concat(t)
end

request = function()
  if mode == "floor" or mode == "fixed" then
    return wrk.format()
  elseif mode == "lookup" then
    return lookup()
  elseif mode == "get" then
    return wrk.format("GET", "/v1/vouchers/" .. pick(ids))
  elseif mode == "charge" then
    return charge()
  elseif mode == "mix" then
    local r = math.random(100)
    if r <= 80 then return lookup() end
    if r <= 95 then return charge() end
    return wrk.format("GET", string.format("/v1/vouchers?filter%%5Bbatch%%5D=B%05d&per_page=20", math.random(0, 99)))
  elseif mode == "token" then
    wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    return wrk.format("POST", "/oauth/token", nil, "grant_type=client_credentials")
  elseif mode == "peer_lookup" then
    return wrk.format("GET", "/api/tables/vouchers/rows?_filters=code:" .. pick(codes))
  elseif mode == "peer_create" then
    made = made + 1
    local id = "P" .. seed .. fresh(15)
    local body = string.format(
      '{"fields":{"id":"%s","code":"%s","client_id":"%s","group_id":"%s","currency":"EUR","exponent":2,' ..
      '"amount":1000,"remaining":1000,"status":"active","type":"digital","created_at":%d,"updated_at":%d}}',
      id, "P" .. fresh(7), os.getenv("PEER_CLIENT"), os.getenv("PEER_GROUP"), os.time(), os.time())
    return wrk.format("POST", "/api/tables/vouchers/rows", nil, body)
  end
  error("unknown MODE " .. tostring(mode))
end
