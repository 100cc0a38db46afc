-- Trust: API keys, the audit trail, and which channel owns a hold.
--
-- Keys are stored only as the SHA-256 of their secret: the secret is shown once when the key is made, and a copy
-- of this database (a backup, a stolen disk) does not let anyone call the API. The secret is 32 random bytes, so
-- an unsalted fast hash is enough: there is nothing to guess.

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL CONSTRAINT "api_keys.name" CHECK (length(name) BETWEEN 1 AND 100),
    role         TEXT    NOT NULL CONSTRAINT "api_keys.role"
                 CHECK (role IN ('admin', 'staff', 'warehouse', 'channel')),
    -- The channel's code for a `channel` key, and only for one: a channel key without a channel would see
    -- everything a channel may see, of every channel.
    channel      TEXT    CONSTRAINT "api_keys.channel" CHECK ((role = 'channel') = (channel IS NOT NULL)),
    -- Lower-case hex of SHA-256(secret); the lookup key of every request.
    secret_hash  TEXT    NOT NULL CONSTRAINT "api_keys.secret_hash" UNIQUE CHECK (length(secret_hash) = 64),
    -- The first characters of the secret, so that a person can tell keys apart in a list; never enough to use.
    prefix       TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER
);

-- Who changed what, when, from which request. Rows are only ever appended.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    -- NULL for changes made outside the API (the command line), which names itself in actor_name.
    actor_key_id INTEGER,
    actor_name   TEXT    NOT NULL,
    request_id   TEXT,
    -- What kind of thing changed (`products`, `orders`, `api-keys`…) and which one, when known.
    entity       TEXT    NOT NULL,
    entity_id    TEXT,
    -- The operation: the method and route pattern (`POST /v1/orders/{id}/cancel`), or a CLI command.
    action       TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    summary      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_entity ON audit_log (entity, id);
CREATE INDEX audit_log_actor ON audit_log (actor_key_id, id);

-- The channel whose key placed a hold: a channel key sees and changes only its own holds. Holds placed with other
-- keys have no row here.
CREATE TABLE hold_channels (
    hold_id INTEGER PRIMARY KEY REFERENCES holds (id) ON DELETE CASCADE,
    channel TEXT    NOT NULL
);
