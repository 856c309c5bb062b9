-- Revision 0001 "baseline": the schema as releases before migrations made it (frozen: never
-- edit; storeserver/schema.sql is the head snapshot). Run by versions/0001_baseline.py.
-- Reference store server schema (SQLite, WAL). Amounts: points are integers, money is cents.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS tiers (
    name TEXT PRIMARY KEY,
    name_zh TEXT NOT NULL,
    threshold INTEGER NOT NULL,           -- lifetime points needed
    points_per_yuan_x10 INTEGER NOT NULL  -- earn rate, tenths of a point per yuan
);

CREATE TABLE IF NOT EXISTS members (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    tier TEXT NOT NULL REFERENCES tiers(name),
    lifetime_points INTEGER NOT NULL DEFAULT 0,
    stored_value_cents INTEGER NOT NULL DEFAULT 0 CHECK (stored_value_cents >= 0),
    referred_by TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS lots (
    id INTEGER PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES members(id),
    earned_at TEXT NOT NULL,
    expires_on TEXT NOT NULL,             -- ISO date; the lot stops counting on this date
    amount INTEGER NOT NULL CHECK (amount > 0),
    remaining INTEGER NOT NULL CHECK (remaining >= 0)
);
CREATE INDEX IF NOT EXISTS lots_member ON lots(member_id, expires_on);

CREATE TABLE IF NOT EXISTS points_changes (
    id INTEGER PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES members(id),
    at TEXT NOT NULL,
    delta INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT,
    balance_after INTEGER NOT NULL,
    actor TEXT                            -- who made it: account:<id>, kiosk:<id> or system
);
CREATE INDEX IF NOT EXISTS changes_member ON points_changes(member_id, id);

CREATE TABLE IF NOT EXISTS items (
    sku TEXT PRIMARY KEY,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('gift', 'coupon')),
    points INTEGER NOT NULL CHECK (points >= 0),
    cash_cents INTEGER NOT NULL DEFAULT 0 CHECK (cash_cents >= 0),
    coupon_value_cents INTEGER NOT NULL DEFAULT 0,
    picture TEXT,
    stock INTEGER CHECK (stock IS NULL OR stock >= 0),  -- store-wide stock of a coupon; NULL: unlimited
    active INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS compartments (
    kiosk_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    sku TEXT REFERENCES items(sku),
    stock INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    PRIMARY KEY (kiosk_id, number)
);

CREATE TABLE IF NOT EXISTS kiosks (
    id TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    enrolled_at TEXT NOT NULL,
    last_seen TEXT,
    health TEXT
);

-- People and tools that call the API, one role each (storeserver/accounts.py); kiosks enroll.
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,                  -- e.g. till-1, manager-wang
    role TEXT NOT NULL CHECK (role IN ('cashier', 'manager', 'admin', 'technician', 'member-app')),
    member_id TEXT REFERENCES members(id),  -- member-app only: the member whose codes it mints
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS account_tokens (
    id TEXT PRIMARY KEY,                  -- public id to list and revoke by (tok_...)
    token_sha256 TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Money the tills recorded (purchases, top-ups) and manual points, for the daily caps.
CREATE TABLE IF NOT EXISTS till_entries (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('purchase', 'topup', 'manual')),
    member_id TEXT NOT NULL REFERENCES members(id),
    actor TEXT NOT NULL,
    day TEXT NOT NULL,                    -- the store's calendar day
    amount INTEGER NOT NULL CHECK (amount > 0),  -- cents, or points for 'manual'
    ref TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS till_entries_member_day ON till_entries(kind, member_id, day);
CREATE INDEX IF NOT EXISTS till_entries_actor_day ON till_entries(kind, actor, day);

CREATE TABLE IF NOT EXISTS enrollment_codes (
    code_sha256 TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_by TEXT,
    kiosk_id TEXT,                        -- the one kiosk id the code enrolls (NULL: made before)
    replace_existing INTEGER NOT NULL DEFAULT 0  -- 1: may take over an enrolled id (--replace)
);

-- Technician codes issued (storeserver/technicians.py): who asked, for which kiosk, until when.
CREATE TABLE IF NOT EXISTS technician_codes (
    nonce TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS seen_nonces (
    nonce TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- A kiosk acts for a member only within a session opened by resolving that member's code
-- (storeserver/member_sessions.py); the token is kept only as its SHA-256.
CREATE TABLE IF NOT EXISTS member_sessions (
    token_sha256 TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    nonce TEXT NOT NULL,                  -- of the code that opened it
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS member_sessions_nonce ON member_sessions(kiosk_id, nonce);

-- Offline redemptions the server applied, with the code that identified the member and the
-- store day they were made on: the server's own offline caps count them (storeserver/offline.py).
CREATE TABLE IF NOT EXISTS offline_spends (
    txn_id TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    day TEXT NOT NULL,                    -- store day (store time zone) of the redemption
    points INTEGER NOT NULL CHECK (points >= 0),
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS offline_spends_day ON offline_spends(day, kiosk_id, member_id);

CREATE TABLE IF NOT EXISTS redemptions (
    txn_id TEXT PRIMARY KEY,
    request_sha256 TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('redeem', 'spin', 'offline')),
    kiosk_id TEXT NOT NULL,
    member_id TEXT NOT NULL REFERENCES members(id),
    sku TEXT,
    compartment INTEGER,
    points INTEGER NOT NULL CHECK (points >= 0),
    cash_cents INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('held', 'captured', 'voided', 'expired')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    finished_at TEXT,
    void_reason TEXT,
    payment_id TEXT,
    coupon_code TEXT,
    spin_id INTEGER,
    first_response TEXT NOT NULL,
    -- the order holds were made in (one more than the highest so far): a restock count says
    -- which holds it had seen by it (storeserver/kiosks.py, docs/restock.md)
    seq INTEGER
);
CREATE INDEX IF NOT EXISTS redemptions_open ON redemptions(state, expires_at);

CREATE TABLE IF NOT EXISTS hold_allocations (
    txn_id TEXT NOT NULL,                 -- written before its redemption row, same transaction
    lot_id INTEGER NOT NULL REFERENCES lots(id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    PRIMARY KEY (txn_id, lot_id)
);

CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    txn_id TEXT NOT NULL UNIQUE,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    status TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'cancelled', 'expired', 'refunded')),
    pay_url TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    paid_at TEXT
);

CREATE TABLE IF NOT EXISTS coupons (
    code TEXT PRIMARY KEY,
    txn_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    value_cents INTEGER NOT NULL,
    issued_at TEXT NOT NULL,
    redeemed_at TEXT,
    redeemed_ref TEXT
);

CREATE TABLE IF NOT EXISTS wheels (
    id TEXT PRIMARY KEY,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    cost_points INTEGER NOT NULL CHECK (cost_points > 0),
    daily_limit INTEGER NOT NULL CHECK (daily_limit > 0),
    active INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS wheel_segments (
    wheel_id TEXT NOT NULL REFERENCES wheels(id),
    idx INTEGER NOT NULL,
    label_zh TEXT NOT NULL,
    label_en TEXT NOT NULL,
    prize_kind TEXT NOT NULL CHECK (prize_kind IN ('none', 'points', 'coupon', 'gift')),
    prize_points INTEGER NOT NULL DEFAULT 0,
    prize_sku TEXT REFERENCES items(sku),
    weight INTEGER NOT NULL CHECK (weight > 0),
    stock INTEGER CHECK (stock IS NULL OR stock >= 0),   -- NULL: unlimited
    PRIMARY KEY (wheel_id, idx)
);

CREATE TABLE IF NOT EXISTS wheel_seeds (
    wheel_id TEXT NOT NULL,
    day TEXT NOT NULL,
    seed_hex TEXT NOT NULL,
    commitment TEXT NOT NULL,
    PRIMARY KEY (wheel_id, day)
);

CREATE TABLE IF NOT EXISTS spins (
    txn_id TEXT PRIMARY KEY,
    wheel_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    day TEXT NOT NULL,
    segment_idx INTEGER NOT NULL,
    eligible TEXT NOT NULL,               -- JSON [[idx, weight], ...] drawn from
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spins_member_day ON spins(member_id, wheel_id, day);

-- an event id is the kiosk's own: each kiosk's ids are a space of their own (db.py migrates
-- files where event_id alone was the key)
CREATE TABLE IF NOT EXISTS kiosk_events (
    event_id TEXT NOT NULL,
    kiosk_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL,
    result TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (kiosk_id, event_id)
);

CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    detail TEXT NOT NULL,
    handled_at TEXT,  -- NULL: open; staff marked it handled then (alerts.handle)
    handled_by TEXT
);

-- Staff who sign in at a kiosk (restocking) with a badge (signed code, kind S) and a PIN.
CREATE TABLE IF NOT EXISTS staff (
    id TEXT PRIMARY KEY,                  -- the badge's subject, e.g. S0001
    name TEXT NOT NULL,
    pin_hash TEXT NOT NULL,               -- scrypt$n$r$p$salt$hash (base64 parts); never the PIN
    failed_count INTEGER NOT NULL DEFAULT 0 CHECK (failed_count >= 0),  -- wrong PINs in a row
    last_failed_at TEXT,
    locked_until TEXT,                    -- NULL or a past time: not locked (unless until_reset)
    -- the escalating lockout (staff_lockout.py); db.py _add_columns adds them to older files
    lock_level INTEGER NOT NULL DEFAULT 0,   -- locks earned
    last_lock_day TEXT,                   -- store day (YYYY-MM-DD) of the last lock
    fail_day TEXT,                        -- the store day fail_day_count counts
    fail_day_count INTEGER NOT NULL DEFAULT 0,
    until_reset INTEGER NOT NULL DEFAULT 0,  -- 1: locked until a manager unlocks
    badges_from INTEGER,                  -- Unix s: badges issued before are revoked (lost cards)
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
