package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// messageCols are the columns scanMessage reads, in order.
const messageCols = "item_hash, type, chain, sender, signature, item_type, item_content, content, time_text, channel, size, owner, " +
	"content_type, content_ref, content_key, content_item_hash, payment_type, tags, status, reception_time"

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanMessage(s scanner) (*store.Message, error) {
	var (
		m                                                       store.Message
		typ, chain, itemType, timeText, status, content         string
		itemContent, channel, cType, cRef, cKey, cItem, payType sql.NullString
		tags                                                    sql.NullString
		reception                                               int64
	)
	if err := s.Scan(&m.ItemHash, &typ, &chain, &m.Sender, &m.Signature, &itemType, &itemContent, &content, &timeText,
		&channel, &m.Size, &m.Owner, &cType, &cRef, &cKey, &cItem, &payType, &tags, &status, &reception); err != nil {
		return nil, err
	}
	t, err := parseTime(timeText)
	if err != nil {
		return nil, err
	}
	m.Type, m.Chain, m.ItemType, m.Time = message.Type(typ), message.Chain(chain), message.ItemType(itemType), t
	m.Content = []byte(content)
	switch {
	case itemContent.Valid:
		m.ItemContent = itemContent.String
	case m.ItemType == message.ItemInline:
		m.ItemContent = content
	}
	m.Channel = str(channel)
	m.ContentType, m.ContentRef, m.ContentKey, m.ContentItemHash, m.PaymentType = str(cType), str(cRef), str(cKey), str(cItem), str(payType)
	if m.Tags, err = parseList(tags); err != nil {
		return nil, err
	}
	m.Status = message.Status(status)
	m.ReceptionTime = fromNanos(reception)
	return &m, nil
}

func getMessage(ctx context.Context, q querier, itemHash string) (*store.Message, error) {
	m, err := scanMessage(q.QueryRowContext(ctx, "SELECT "+messageCols+" FROM messages WHERE item_hash = $1", itemHash))
	if err != nil {
		return nil, notFound(err, "get message")
	}
	return m, nil
}

// storedStatus checks a messages-table status; empty means processed.
func storedStatus(s message.Status) (message.Status, error) {
	switch s {
	case "":
		return message.StatusProcessed, nil
	case message.StatusProcessed, message.StatusRemoving:
		return s, nil
	}
	return "", fmt.Errorf("sqlstore: message status %q: stored messages are processed or removing", s)
}

// insertMessageSQL inserts one message row from messageArgs.
const insertMessageSQL = `INSERT INTO messages (item_hash, type, chain, sender, signature, item_type, item_content,
	content, time_text, time, channel, size, owner, content_type, content_ref, content_key, content_item_hash, payment_type,
	tags, status, reception_time)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
	ON CONFLICT (item_hash) DO NOTHING`

// messageColumns are the columns of insertMessageSQL, in order.
var messageColumns = colNames(messageInsertCols)

// messageArgs returns the values of a message row, in messageColumns order,
// and its stored status.
func messageArgs(m *store.Message) ([]any, message.Status, error) {
	if m == nil || m.ItemHash == "" {
		return nil, "", fmt.Errorf("sqlstore: insert message: no item hash")
	}
	status, err := storedStatus(m.Status)
	if err != nil {
		return nil, "", err
	}
	content := string(m.Content)
	if content == "" && m.ItemType == message.ItemInline {
		content = m.ItemContent
	}
	// item_content is NULL when it is the content itself (inline) or absent.
	var itemContent any = m.ItemContent
	if (m.ItemType == message.ItemInline && m.ItemContent == content) || (m.ItemType != message.ItemInline && m.ItemContent == "") {
		itemContent = nil
	}
	size := m.Size
	if size == 0 {
		size = int64(len(content))
	}
	tags, err := jsonList(m.Tags)
	if err != nil {
		return nil, "", err
	}
	return []any{m.ItemHash, string(m.Type), string(m.Chain), m.Sender, m.Signature, string(m.ItemType), itemContent,
		content, timeText(m.Time), m.Time.Seconds(), nullStr(m.Channel), size, m.Owner, nullStr(m.ContentType),
		nullStr(m.ContentRef), nullStr(m.ContentKey), nullStr(m.ContentItemHash), nullStr(m.PaymentType),
		tags, string(status), nanos(m.ReceptionTime)}, status, nil
}

func insertMessage(ctx context.Context, q querier, m *store.Message) error {
	args, status, err := messageArgs(m)
	if err != nil {
		return err
	}
	ok, err := execAffected(ctx, q, insertMessageSQL, args...)
	if err != nil {
		return wrap(err, "insert message")
	}
	if !ok {
		return store.ErrConflict
	}
	for _, tag := range distinct(m.Tags) {
		if _, err := q.ExecContext(ctx, "INSERT INTO message_tags (item_hash, tag, time) VALUES ($1, $2, $3)", m.ItemHash, tag, m.Time.Seconds()); err != nil {
			return wrap(err, "insert message tag")
		}
	}
	return bumpCounts(ctx, q, string(m.Type), string(status), m.Sender, m.Owner, 1)
}

// bumpCounts adds delta to the message_counts rows of one message: the total
// per (type, status), the sender's and the owner's.
func bumpCounts(ctx context.Context, q querier, typ, status, sender, owner string, delta int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO message_counts (kind, address, type, status, n)
		VALUES ('', '', $1, $2, $5), ('s', $3, $1, $2, $5), ('o', $4, $1, $2, $5)
		ON CONFLICT (kind, address, type, status) DO UPDATE SET n = message_counts.n + excluded.n`,
		typ, status, sender, owner, delta)
	return wrap(err, "update message counts")
}

func setMessageStatus(ctx context.Context, q querier, itemHash string, s message.Status) error {
	if s != message.StatusProcessed && s != message.StatusRemoving {
		return fmt.Errorf("sqlstore: set message status %q: stored messages are processed or removing", s)
	}
	var typ, old, sender, owner string
	err := q.QueryRowContext(ctx, "SELECT type, status, sender, owner FROM messages WHERE item_hash = $1", itemHash).
		Scan(&typ, &old, &sender, &owner)
	if err != nil {
		return notFound(err, "set message status")
	}
	if old == string(s) {
		return nil
	}
	if _, err := q.ExecContext(ctx, "UPDATE messages SET status = $2 WHERE item_hash = $1", itemHash, string(s)); err != nil {
		return wrap(err, "set message status")
	}
	if err := bumpCounts(ctx, q, typ, old, sender, owner, -1); err != nil {
		return err
	}
	return bumpCounts(ctx, q, typ, string(s), sender, owner, 1)
}

func deleteMessage(ctx context.Context, q querier, itemHash string) error {
	var typ, status, sender, owner string
	err := q.QueryRowContext(ctx, "DELETE FROM messages WHERE item_hash = $1 RETURNING type, status, sender, owner", itemHash).
		Scan(&typ, &status, &sender, &owner)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		return wrap(err, "delete message")
	}
	return bumpCounts(ctx, q, typ, status, sender, owner, -1)
}

func getStatus(ctx context.Context, q querier, itemHash string) (store.StatusRecord, error) {
	var (
		rec    = store.StatusRecord{ItemHash: itemHash}
		status string
		rt     int64
	)
	err := q.QueryRowContext(ctx, "SELECT status, reception_time FROM message_status WHERE item_hash = $1", itemHash).Scan(&status, &rt)
	if err != nil {
		return store.StatusRecord{}, notFound(err, "get status")
	}
	rec.Status, rec.ReceptionTime = message.Status(status), fromNanos(rt)
	return rec, nil
}

// setStatus inserts or replaces a status record. A zero ReceptionTime keeps the
// stored one.
func setStatus(ctx context.Context, q querier, rec store.StatusRecord) error {
	if rec.ItemHash == "" || rec.Status == "" {
		return fmt.Errorf("sqlstore: set status: item hash and status are required")
	}
	_, err := q.ExecContext(ctx, `INSERT INTO message_status (item_hash, status, reception_time) VALUES ($1, $2, $3)
		ON CONFLICT (item_hash) DO UPDATE SET status = excluded.status,
		reception_time = CASE WHEN excluded.reception_time = 0 THEN message_status.reception_time ELSE excluded.reception_time END`,
		rec.ItemHash, string(rec.Status), nanos(rec.ReceptionTime))
	return wrap(err, "set status")
}

func putRejected(ctx context.Context, q querier, r *store.Rejected) error {
	if r == nil || r.ItemHash == "" {
		return fmt.Errorf("sqlstore: put rejected: no item hash")
	}
	_, err := q.ExecContext(ctx, `INSERT INTO rejected_messages (item_hash, message, error_code, details, reception_time)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (item_hash) DO UPDATE SET message = excluded.message, error_code = excluded.error_code,
		details = excluded.details, reception_time = excluded.reception_time`,
		r.ItemHash, string(r.Message), int(r.ErrorCode), nullRaw(r.Details), nanos(r.ReceptionTime))
	return wrap(err, "put rejected")
}

func getRejected(ctx context.Context, q querier, itemHash string) (*store.Rejected, error) {
	var (
		r       = store.Rejected{ItemHash: itemHash}
		msg     string
		code    int
		details sql.NullString
		rt      int64
	)
	err := q.QueryRowContext(ctx, "SELECT message, error_code, details, reception_time FROM rejected_messages WHERE item_hash = $1",
		itemHash).Scan(&msg, &code, &details, &rt)
	if err != nil {
		return nil, notFound(err, "get rejected")
	}
	r.Message, r.ErrorCode, r.Details, r.ReceptionTime = []byte(msg), message.ErrorCode(code), rawOrNil(details), fromNanos(rt)
	return &r, nil
}

func getForgotten(ctx context.Context, q querier, itemHash string) (*store.Forgotten, error) {
	var (
		f                                      = store.Forgotten{ItemHash: itemHash}
		typ, chain, itemType, timeText, byText string
		channel                                sql.NullString
	)
	err := q.QueryRowContext(ctx, `SELECT type, chain, sender, signature, item_type, time_text, channel, owner, payment_type,
		size, forgotten_by, forgotten_at FROM forgotten_messages WHERE item_hash = $1`, itemHash).
		Scan(&typ, &chain, &f.Sender, &f.Signature, &itemType, &timeText, &channel, &f.Owner, &f.PaymentType,
			&f.Size, &byText, &f.ForgottenAt)
	if err != nil {
		return nil, notFound(err, "get forgotten")
	}
	if f.Time, err = parseTime(timeText); err != nil {
		return nil, wrap(err, "get forgotten")
	}
	if f.ForgottenBy, err = parseList(sql.NullString{String: byText, Valid: true}); err != nil {
		return nil, wrap(err, "get forgotten")
	}
	f.Type, f.Chain, f.ItemType, f.Channel = message.Type(typ), message.Chain(chain), message.ItemType(itemType), str(channel)
	return &f, nil
}

// putForgotten inserts the skeleton, or appends the FORGET hashes it does not
// list yet to an existing one (whose other fields are kept).
func putForgotten(ctx context.Context, q querier, f *store.Forgotten) error {
	if f == nil || f.ItemHash == "" {
		return fmt.Errorf("sqlstore: put forgotten: no item hash")
	}
	old, err := getForgotten(ctx, q, f.ItemHash)
	if err == nil {
		by := old.ForgottenBy
		for _, h := range f.ForgottenBy {
			if !slices.Contains(by, h) {
				by = append(by, h)
			}
		}
		if len(by) == len(old.ForgottenBy) {
			return nil
		}
		list, err := jsonList(by)
		if err != nil {
			return err
		}
		_, err = q.ExecContext(ctx, "UPDATE forgotten_messages SET forgotten_by = $2 WHERE item_hash = $1", f.ItemHash, list)
		return wrap(err, "append forgotten_by")
	}
	if err != store.ErrNotFound {
		return err
	}
	list, err := jsonList(distinct(f.ForgottenBy))
	if err != nil {
		return err
	}
	if list == nil {
		list = "[]"
	}
	_, err = q.ExecContext(ctx, `INSERT INTO forgotten_messages (item_hash, type, chain, sender, signature, item_type, time_text,
		time, channel, owner, payment_type, size, forgotten_by, forgotten_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		f.ItemHash, string(f.Type), string(f.Chain), f.Sender, f.Signature, string(f.ItemType), timeText(f.Time),
		f.Time.Seconds(), nullStr(f.Channel), f.Owner, f.PaymentType, f.Size, list, f.ForgottenAt)
	return wrap(err, "insert forgotten")
}
