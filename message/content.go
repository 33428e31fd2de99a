package message

import "encoding/json"

// BaseContent holds the fields every content type has.
type BaseContent struct {
	Address string  `json:"address"`
	Time    float64 `json:"time"`
}

// Content is the parsed content of a message.
type Content interface {
	Base() *BaseContent
}

func decodeContent(t Type, raw []byte, defaults *BaseContent) (Content, error) {
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, jsonError("item_content", err)
	}
	return nil, nil // TODO(session): typed content models
}
