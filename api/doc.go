// Package api is the core channel node's HTTP interface: the REST endpoints and the
// messages websocket that the aleph CLI, the Python and TypeScript SDKs and other
// nodes call, answering with pyaleph's JSON shapes (ccn-protocol.md §5).
//
// New builds an http.Handler from the node's parts (a Submitter for new messages,
// a store.Reader for queries, the event bus for the websocket, a Prometheus
// registry). Routes use net/http's method and path patterns; every GET route also
// answers HEAD, every route answers CORS preflights, and every answer, errors
// included, is JSON (except /metrics, which is Prometheus text, the /api/docs
// page, raw file downloads and the IPFS gateway's own answers). /api/docs/openapi.json describes every route; /api/docs renders it as a
// self-contained HTML page.
//
// Websocket handlers run until the client leaves or the request context ends.
// http.Server.Shutdown does not wait for hijacked connections, so a node that
// wants them closed on shutdown sets http.Server.BaseContext to a context it
// cancels.
//
// # Where this API differs from pyaleph, deliberately
//
//   - Errors say what is wrong. A refused POST /api/v0/messages answers 422 with
//     {"message_status": "rejected", "error", "error_code", "field", "reason",
//     "details"}, where pyaleph answers only the exception class name (quirk A.26).
//     Query parameter errors are pydantic-style lists of {type, loc, msg, input}, as
//     pyaleph's. Other errors are {"error": text}.
//   - sortBy=tx-time sorts by time: there are no on-chain confirmations yet, and
//     pyaleph's tx-time falls back to the message time. It is refused in cursor
//     mode, as pyaleph does. startBlock/endBlock are validated, and a non-zero value
//     matches nothing (no confirmations).
//   - pagination_total follows pyaleph's short-page rule (a short, non-empty page
//     is (page-1)*pagination+rows), but an empty page past the end is counted
//     instead of estimated (quirk A.22). The same rule serves every listing.
//   - In cursor mode a pagination over 200 is capped at 200; 0 is refused (422).
//   - Cursor times keep every digit of the float they came from (ISO-8601 with as
//     many fractional digits as needed), so pagination never skips or repeats a
//     row whose time has more than microsecond precision. pyaleph's cursors
//     (microsecond ISO times) are accepted.
//   - with_info on /api/v0/aggregates/{address}.json gives original_item_hash (the
//     first element) and last_update_item_hash (the latest) unswapped (quirk A.13);
//     its dates are ISO-8601.
//   - The time of pending copies in GET /api/v0/messages/{hash} is the envelope's
//     number, like every other message time, not an ISO string (quirk A.23).
//     Websocket frames carry size in history and live frames alike (quirk A.24).
//   - hash_only=false on /api/v0/messages/hashes answers {item_hash, status,
//     reception_time} objects (broken upstream, quirk A.20).
//   - msgStatuses=removed listings answer 400: the node keeps no snapshot of
//     removed messages. msgStatuses=forgotten lists skeletons when the store
//     implements ForgottenLister, and answers 400 otherwise. GET of a removed
//     message is 410, as pyaleph does without a snapshot.
//   - The legacy pubsub endpoints take data as the JSON text itself, without the
//     URL percent-decoding of gossip payloads (quirk A.3 applies to pubsub, not to
//     HTTP), and refuse an object (quirk A.15), as pyaleph does.
//   - Query values and path addresses that are not valid UTF-8, or hold NUL, are
//     refused (422, or 400 in a path): databases cannot store them.
//   - The websocket also applies startDate, endDate, contentKeys and paymentTypes
//     to live messages, so that history and live frames match the same filter;
//     contentFormat=headers is honoured (pyaleph degrades it to none).
//   - GET /api/v1/addresses/stats.json is computed from the full stats listing,
//     fine for a node of modest size.
//
// # Files
//
// The storage, ipfs and gateway endpoints (ccn-protocol.md §5.6) go through the
// Files service (ccn/files). Uploads stream: multipart bodies are read part by
// part with a multipart reader, never buffered, and a file part goes straight
// into the file store, which keeps nothing of an upload that fails, is
// interrupted or does not match its hash. Upload routes bound their own bodies
// (the limits of Config, served by /api/v0/storage/limits.json) instead of
// BodyLimit; downloads stream with no size cap.
//
//   - Which limit applies depends on the order of the parts. When the "metadata"
//     part (a signed STORE message) comes before the "file" part, as every SDK
//     sends it, the message is parsed and its signature verified before any file
//     byte is read (403 otherwise), and the file may be as large as the
//     authenticated limit of the endpoint (MaxStorageFile, MaxIPFSFile,
//     MaxCARFile) and must hash to the STORE's item_hash (422). When the file
//     comes first, or there is no metadata, it is an unauthenticated upload
//     (MaxUnauthenticatedUpload, a grace-period pin); metadata after the file is
//     still verified and its message submitted, but cannot raise the limit.
//     pyaleph reads the whole file first whatever the order. add_car requires
//     the metadata first.
//   - No balance check is made before an authenticated upload (pyaleph may answer
//     402): there is no cost model yet.
//   - An authenticated upload answers as POST /api/v0/messages does for the
//     STORE it submits (200 processed, 202 pending, 422 rejected), with
//     {"status": "success", "hash"} plus message_status; a rejection has status
//     "error" and the rejection fields.
//   - storage/add_json and ipfs/add_json re-serialise the body as pyaleph does
//     with orjson (quirk A.4): compact, keys sorted, non-ASCII raw, integers as
//     written, other numbers as orjson's shortest float text ("1.0", "1e16",
//     "1e-7"). Integers beyond 64 bits keep their digits (pyaleph falls back to
//     the json module's spaced, ASCII-escaped output for them) and NaN or
//     Infinity literals are refused.
//   - GET /api/v0/storage/raw/{hash} honours Range (several ranges too),
//     If-Range and conditional requests, and says Accept-Ranges: bytes; pyaleph
//     says none. Its ETag is the quoted hash. A directory is a tar archive.
//   - ipfs/add_file names an upload without a filename by its CID, as kubo does,
//     and its size is the file's byte length (kubo's is the DAG's).
//   - GET /api/v0/addresses/{address}/files answers an empty list for an address
//     without files (pyaleph: 404), with pagination_item "files".
//   - File hashes in paths may be any CID the node accepts (v0, or v1 dag-pb or
//     raw, sha2-256, so "bafk…" too), not only the shapes of item_type_from_hash.
//   - /ipfs/{cid}[/path] refuses "." and ".." segments (plain or
//     percent-encoded), empty segments and encoded slashes with 400 before
//     routing; the gateway's own answers (listings, 404) are not JSON.
//   - Nil Files makes uploads answer 503 and downloads 404; a nil Verifier makes
//     authenticated uploads answer 503.
package api
