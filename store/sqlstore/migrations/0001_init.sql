-- 0001: the repository schema (ccn-protocol.md §7.1, adapted to store/store.go).
--
-- Tokens in double braces are replaced per backend (dialect.go). Conventions:
--   * JSON is kept as TEXT on both backends, so that every Content field is served
--     back byte for byte as stored.
--   * message.Time values keep their exact text (time_text) next to a DOUBLE
--     PRECISION copy used for ordering.
--   * node-local instants (reception_time, next_attempt, delete_by) are unix
--     nanoseconds in BIGINT.
--   * optional strings of sparse columns are NULL when empty, so that their
--     indexes can be partial (WHERE col IS NOT NULL), which both planners infer
--     from an equality or IN filter on the column.

CREATE TABLE messages (
    item_hash         {{TEXT}} NOT NULL PRIMARY KEY,
    type              {{TEXT}} NOT NULL,
    chain             {{TEXT}} NOT NULL,
    sender            {{TEXT}} NOT NULL,
    signature         {{TEXT}} NOT NULL,
    item_type         {{TEXT}} NOT NULL,
    -- NULL when equal to content (every well-formed inline message), to keep one copy.
    item_content      {{TEXT}},
    content           {{TEXT}} NOT NULL,
    time_text         {{TEXT}} NOT NULL,
    time              DOUBLE PRECISION NOT NULL,
    channel           {{TEXT}},
    size              BIGINT NOT NULL,
    owner             {{TEXT}} NOT NULL,
    content_type      {{TEXT}},
    content_ref       {{TEXT}},
    content_key       {{TEXT}},
    content_item_hash {{TEXT}},
    payment_type      {{TEXT}},
    -- JSON array of the tags as given, or NULL.
    tags              {{TEXT}},
    status            {{TEXT}} NOT NULL,
    reception_time    BIGINT NOT NULL
);

-- Index-ordered scans for messages.json: the default listing and one per filter,
-- each ending in (time, item_hash) so that a page of 20 reads 20 index entries.
CREATE INDEX messages_time ON messages (time, item_hash);
CREATE INDEX messages_sender ON messages (sender, time, item_hash);
CREATE INDEX messages_owner ON messages (owner, time, item_hash);
CREATE INDEX messages_type ON messages (type, time, item_hash);
CREATE INDEX messages_chain ON messages (chain, time, item_hash);
CREATE INDEX messages_channel ON messages (channel, time, item_hash) WHERE channel IS NOT NULL;
CREATE INDEX messages_content_type ON messages (content_type, time, item_hash) WHERE content_type IS NOT NULL;
CREATE INDEX messages_content_ref ON messages (content_ref, time, item_hash) WHERE content_ref IS NOT NULL;
CREATE INDEX messages_content_key ON messages (content_key, time, item_hash) WHERE content_key IS NOT NULL;
CREATE INDEX messages_content_item_hash ON messages (content_item_hash, time, item_hash) WHERE content_item_hash IS NOT NULL;
CREATE INDEX messages_payment_type ON messages (payment_type, time, item_hash) WHERE payment_type IS NOT NULL;
CREATE INDEX messages_removing ON messages (time, item_hash) WHERE status = 'removing';

-- One row per distinct tag of a message, for the tags overlap filter. The
-- message time is copied so that a one-tag listing is an index-ordered scan.
CREATE TABLE message_tags (
    item_hash {{TEXT}} NOT NULL REFERENCES messages (item_hash) ON DELETE CASCADE,
    tag       {{TEXT}} NOT NULL,
    time      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (item_hash, tag)
) {{WITHOUT_ROWID}};
CREATE INDEX message_tags_tag ON message_tags (tag, time, item_hash);

-- Counters for fast totals, maintained on message insert, delete and status
-- change. kind '' holds the totals per (type, status) with address ''; kind 's'
-- counts per sender and kind 'o' per owner.
CREATE TABLE message_counts (
    kind    {{TEXT}} NOT NULL,
    address {{TEXT}} NOT NULL,
    type    {{TEXT}} NOT NULL,
    status  {{TEXT}} NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (kind, address, type, status)
) {{WITHOUT_ROWID}};

-- The lifecycle record every known item hash has.
CREATE TABLE message_status (
    item_hash      {{TEXT}} NOT NULL PRIMARY KEY,
    status         {{TEXT}} NOT NULL,
    reception_time BIGINT NOT NULL
);
CREATE INDEX message_status_reception ON message_status (reception_time, item_hash);
CREATE INDEX message_status_status ON message_status (status, reception_time, item_hash);

CREATE TABLE pending_messages (
    id              {{ID}},
    item_hash       {{TEXT}} NOT NULL,
    sender          {{TEXT}} NOT NULL,
    signature       {{TEXT}} NOT NULL,
    chain           {{TEXT}} NOT NULL,
    type            {{TEXT}} NOT NULL,
    channel         {{TEXT}},
    time_text       {{TEXT}} NOT NULL,
    item_type       {{TEXT}} NOT NULL,
    item_content    {{TEXT}},
    raw             {{TEXT}} NOT NULL,
    content         {{TEXT}},
    reception_time  BIGINT NOT NULL,
    next_attempt    BIGINT NOT NULL,
    retries         INTEGER NOT NULL,
    check_signature BOOLEAN NOT NULL,
    origin          {{TEXT}} NOT NULL,
    last_error      INTEGER NOT NULL,
    UNIQUE (sender, item_hash, signature)
);
CREATE INDEX pending_messages_next_attempt ON pending_messages (next_attempt, id);
CREATE INDEX pending_messages_item_hash ON pending_messages (item_hash);

CREATE TABLE rejected_messages (
    item_hash      {{TEXT}} NOT NULL PRIMARY KEY,
    message        {{TEXT}} NOT NULL,
    error_code     INTEGER NOT NULL,
    details        {{TEXT}},
    reception_time BIGINT NOT NULL
);

CREATE TABLE forgotten_messages (
    item_hash    {{TEXT}} NOT NULL PRIMARY KEY,
    type         {{TEXT}} NOT NULL,
    chain        {{TEXT}} NOT NULL,
    sender       {{TEXT}} NOT NULL,
    signature    {{TEXT}} NOT NULL,
    item_type    {{TEXT}} NOT NULL,
    time_text    {{TEXT}} NOT NULL,
    time         DOUBLE PRECISION NOT NULL,
    channel      {{TEXT}},
    owner        {{TEXT}} NOT NULL,
    payment_type {{TEXT}} NOT NULL,
    size         BIGINT NOT NULL,
    -- JSON array of FORGET hashes, in order.
    forgotten_by {{TEXT}} NOT NULL,
    forgotten_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX forgotten_messages_at ON forgotten_messages (forgotten_at, item_hash);

CREATE TABLE posts (
    item_hash     {{TEXT}} NOT NULL PRIMARY KEY,
    owner         {{TEXT}} NOT NULL,
    type          {{TEXT}} NOT NULL,
    ref           {{TEXT}},
    amends        {{TEXT}},
    channel       {{TEXT}},
    content       {{TEXT}} NOT NULL,
    creation_time DOUBLE PRECISION NOT NULL,
    latest_amend  {{TEXT}},
    tags          {{TEXT}},
    -- For originals: the creation time of the latest amend, or creation_time.
    last_updated  DOUBLE PRECISION NOT NULL
);
CREATE INDEX posts_originals ON posts (last_updated, item_hash) WHERE amends IS NULL;
CREATE INDEX posts_owner ON posts (owner, last_updated, item_hash) WHERE amends IS NULL;
CREATE INDEX posts_owner_type ON posts (owner, type);
CREATE INDEX posts_type ON posts (type, last_updated, item_hash) WHERE amends IS NULL;
CREATE INDEX posts_ref ON posts (ref) WHERE ref IS NOT NULL;
CREATE INDEX posts_channel ON posts (channel, last_updated, item_hash) WHERE channel IS NOT NULL;
CREATE INDEX posts_amends ON posts (amends, creation_time, item_hash) WHERE amends IS NOT NULL;

-- The tags of an original post's current version (latest amend, else itself).
CREATE TABLE post_tags (
    item_hash {{TEXT}} NOT NULL REFERENCES posts (item_hash) ON DELETE CASCADE,
    tag       {{TEXT}} NOT NULL,
    PRIMARY KEY (item_hash, tag)
) {{WITHOUT_ROWID}};
CREATE INDEX post_tags_tag ON post_tags (tag, item_hash);

CREATE TABLE aggregate_elements (
    item_hash     {{TEXT}} NOT NULL PRIMARY KEY,
    key           {{TEXT}} NOT NULL,
    owner         {{TEXT}} NOT NULL,
    content       {{TEXT}} NOT NULL,
    creation_time DOUBLE PRECISION NOT NULL
);
CREATE INDEX aggregate_elements_owner_key ON aggregate_elements (owner, key, creation_time, item_hash);

CREATE TABLE aggregates (
    owner              {{TEXT}} NOT NULL,
    key                {{TEXT}} NOT NULL,
    content            {{TEXT}} NOT NULL,
    creation_time      DOUBLE PRECISION NOT NULL,
    last_update_time   DOUBLE PRECISION NOT NULL,
    original_hash      {{TEXT}} NOT NULL,
    last_revision_hash {{TEXT}} NOT NULL,
    dirty              BOOLEAN NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX aggregates_last_update ON aggregates (last_update_time, owner, key);
CREATE INDEX aggregates_creation ON aggregates (creation_time, owner, key);
CREATE INDEX aggregates_key ON aggregates (key);

CREATE TABLE files (
    hash {{TEXT}} NOT NULL PRIMARY KEY,
    size BIGINT NOT NULL,
    type {{TEXT}} NOT NULL
);

CREATE TABLE file_pins (
    id        {{ID}},
    file_hash {{TEXT}} NOT NULL,
    type      {{TEXT}} NOT NULL,
    owner     {{TEXT}},
    -- NULL for pins no message holds (unauthenticated uploads).
    item_hash {{TEXT}},
    ref       {{TEXT}},
    created   DOUBLE PRECISION NOT NULL,
    delete_by BIGINT,
    UNIQUE (item_hash, type)
);
CREATE INDEX file_pins_file_hash ON file_pins (file_hash);
CREATE INDEX file_pins_ref ON file_pins (ref) WHERE ref IS NOT NULL;
CREATE INDEX file_pins_owner_ref ON file_pins (owner, ref) WHERE ref IS NOT NULL;
CREATE INDEX file_pins_delete_by ON file_pins (delete_by) WHERE delete_by IS NOT NULL;

CREATE TABLE file_tags (
    tag          {{TEXT}} NOT NULL PRIMARY KEY,
    owner        {{TEXT}} NOT NULL,
    file_hash    {{TEXT}} NOT NULL,
    last_updated DOUBLE PRECISION NOT NULL
);

CREATE TABLE vms (
    item_hash   {{TEXT}} NOT NULL PRIMARY KEY,
    owner       {{TEXT}} NOT NULL,
    type        {{TEXT}} NOT NULL,
    allow_amend BOOLEAN NOT NULL,
    replaces    {{TEXT}},
    content     {{TEXT}} NOT NULL,
    created     DOUBLE PRECISION NOT NULL,
    -- JSON array of the STORE hashes the VM uses, as given.
    refs        {{TEXT}}
);
CREATE INDEX vms_replaces ON vms (replaces, created, item_hash) WHERE replaces IS NOT NULL;
CREATE INDEX vms_owner ON vms (owner);

-- One row per distinct STORE a live VM uses, for VMsUsingRef.
CREATE TABLE vm_refs (
    vm_hash {{TEXT}} NOT NULL REFERENCES vms (item_hash) ON DELETE CASCADE,
    ref     {{TEXT}} NOT NULL,
    PRIMARY KEY (vm_hash, ref)
) {{WITHOUT_ROWID}};
CREATE INDEX vm_refs_ref ON vm_refs (ref, vm_hash);
