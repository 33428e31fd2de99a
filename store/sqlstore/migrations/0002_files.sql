-- 0002: file listing and garbage collection (ccn-protocol.md §3.9, §5.6).
--
-- OwnerFiles lists an owner's STORE message pins by (created, item_hash): a
-- partial index on the message pins serves both the page and the totals.
-- UnpinnedFiles and DeleteFileIfUnpinned probe file_pins_file_hash (0001), and
-- ExpireGracePins walks file_pins_delete_by (0001).

CREATE INDEX file_pins_owner_message ON file_pins (owner, created, item_hash) WHERE type = 'message';
