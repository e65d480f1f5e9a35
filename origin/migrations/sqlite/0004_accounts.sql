-- People who sign in to the console: viewers see private cameras, operators change things.
-- Passwords are stored as argon2id PHC strings; sessions by the SHA-256 of their id (the id
-- itself lives only in the person's cookie), so a leaked table opens no session.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT   NOT NULL UNIQUE,
    role          TEXT   NOT NULL CHECK (role IN ('viewer', 'operator')),
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash      TEXT   PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
