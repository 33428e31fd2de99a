// Package api is the core channel node's HTTP interface: the REST endpoints and the
// messages websocket that the aleph CLI, the Python and TypeScript SDKs and other
// nodes call, answering with pyaleph's JSON shapes (ccn-protocol.md §5).
//
// New builds an http.Handler from the node's parts (a Submitter for new messages,
// a store.Reader for queries, the event bus for the websocket, a Prometheus
// registry). Routes use net/http's method and path patterns; every GET route also
// answers HEAD, every route answers CORS preflights, and every answer, errors
// included, is JSON (except /metrics, which is Prometheus text, and the /api/docs
// page). /api/docs/openapi.json describes every route; /api/docs renders it as a
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
package api
