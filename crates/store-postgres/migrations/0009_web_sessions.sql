-- 0009_web_sessions: signed-in browser sessions of the web admin.
--
-- The browser holds a random token in an HttpOnly cookie; only its SHA-256 is stored, like API keys, so a copy of
-- the database cannot be used to sign in. A session stands for the API key it was opened with: revoking that key
-- ends its sessions on the next request (the key is read with the session), and deleting is never needed for
-- that. `csrf` is the token every form of the session must send back: a page on another site cannot read it.

CREATE TABLE web_sessions (
    token_hash TEXT    PRIMARY KEY CONSTRAINT "web_sessions.token_hash" CHECK (length(token_hash) = 64),
    key_id     BIGINT NOT NULL REFERENCES api_keys (id),
    csrf       TEXT    NOT NULL CONSTRAINT "web_sessions.csrf" CHECK (length(csrf) >= 20),
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    CONSTRAINT "web_sessions.expiry" CHECK (expires_at > created_at)
);

-- Expired sessions are swept at each sign-in.
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
