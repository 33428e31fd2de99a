package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/go-aleph/go-aleph/store"
)

func getVM(ctx context.Context, q querier, itemHash string) (*store.VM, error) {
	var (
		v              = store.VM{ItemHash: itemHash}
		replaces, refs sql.NullString
		content        string
	)
	err := q.QueryRowContext(ctx, "SELECT owner, type, allow_amend, replaces, content, created, refs FROM vms WHERE item_hash = $1", itemHash).
		Scan(&v.Owner, &v.Type, &v.AllowAmend, &replaces, &content, &v.Created, &refs)
	if err != nil {
		return nil, notFound(err, "get vm")
	}
	v.Replaces, v.Content = str(replaces), []byte(content)
	if v.Refs, err = parseList(refs); err != nil {
		return nil, wrap(err, "get vm")
	}
	return &v, nil
}

func insertVM(ctx context.Context, q querier, v *store.VM) error {
	if v == nil || v.ItemHash == "" {
		return fmt.Errorf("sqlstore: insert vm: no item hash")
	}
	refs, err := jsonList(v.Refs)
	if err != nil {
		return err
	}
	content := string(v.Content)
	if content == "" {
		content = "null"
	}
	ok, err := execAffected(ctx, q, `INSERT INTO vms (item_hash, owner, type, allow_amend, replaces, content, created, refs)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (item_hash) DO NOTHING`,
		v.ItemHash, v.Owner, v.Type, v.AllowAmend, nullStr(v.Replaces), content, v.Created, refs)
	if err != nil {
		return wrap(err, "insert vm")
	}
	if !ok {
		return store.ErrConflict
	}
	for _, ref := range distinct(v.Refs) {
		if _, err := q.ExecContext(ctx, "INSERT INTO vm_refs (vm_hash, ref) VALUES ($1, $2)", v.ItemHash, ref); err != nil {
			return wrap(err, "insert vm ref")
		}
	}
	return nil
}
