-- 0003: anti-entropy and the state digest (issue 7).
--
-- SyncItems walks messages (messages_time, 0001) and forgotten skeletons in
-- (time, item_hash) order, by keyset pages.
CREATE INDEX forgotten_messages_time ON forgotten_messages (time, item_hash);

-- StateDigest reads each section in its order; a table lookup per row, or a
-- sort, is several times slower than an ordered scan on a large table.
--
-- Statuses: message_status becomes clustered by item_hash on SQLite (WITHOUT
-- ROWID), which also drops the separate primary key index its writes kept up.
-- Its secondary indexes already end in item_hash, so they do not grow.
CREATE TABLE message_status_0003 (
    item_hash      {{TEXT}} NOT NULL PRIMARY KEY,
    status         {{TEXT}} NOT NULL,
    reception_time BIGINT NOT NULL
) {{WITHOUT_ROWID}};
INSERT INTO message_status_0003 (item_hash, status, reception_time)
    SELECT item_hash, status, reception_time FROM message_status;
DROP TABLE message_status;
ALTER TABLE message_status_0003 RENAME TO message_status;
CREATE INDEX message_status_reception ON message_status (reception_time, item_hash);
CREATE INDEX message_status_status ON message_status (status, reception_time, item_hash);

-- Post heads, message and content pins, file tags and VMs: covering indexes.
-- (amends is NULL in every posts_heads entry; listing it lets SQLite use the
-- index alone.) Aggregates are looked up: their content is large.
CREATE INDEX posts_heads ON posts (item_hash, latest_amend, amends) WHERE amends IS NULL;
CREATE INDEX file_pins_digest ON file_pins (file_hash, type, item_hash) WHERE type IN ('message', 'content');
CREATE INDEX file_tags_digest ON file_tags (tag, owner, file_hash, last_updated);
CREATE INDEX vms_digest ON vms (item_hash, type, owner, replaces);
