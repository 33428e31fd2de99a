package p2p

import (
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// tracer counts the messages gossipsub drops before or after our validator
// (bad pubsub signature, full queues, throttling, duplicates), which the
// validator's own counters cannot see.
type tracer struct{ m *Metrics }

func (t tracer) RejectMessage(msg *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationFailed, pubsub.RejectValidationIgnored:
		return // counted by the validator, with a finer reason
	}
	t.m.dropped.WithLabelValues(msg.GetTopic(), reason).Inc()
}

func (t tracer) DuplicateMessage(msg *pubsub.Message) {
	t.m.dropped.WithLabelValues(msg.GetTopic(), "duplicate").Inc()
}

func (t tracer) UndeliverableMessage(msg *pubsub.Message) {
	t.m.dropped.WithLabelValues(msg.GetTopic(), "undeliverable").Inc()
}

func (tracer) AddPeer(peer.ID, protocol.ID)             {}
func (tracer) RemovePeer(peer.ID)                       {}
func (tracer) OnNewInboundStream(peer.ID, protocol.ID)  {}
func (tracer) OnClosedInboundStream(peer.ID)            {}
func (tracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (tracer) OnClosedOutboundStream(peer.ID)           {}
func (tracer) Join(string)                              {}
func (tracer) Leave(string)                             {}
func (tracer) Graft(peer.ID, string)                    {}
func (tracer) Prune(peer.ID, string)                    {}
func (tracer) ValidateMessage(*pubsub.Message)          {}
func (tracer) DeliverMessage(*pubsub.Message)           {}
func (tracer) ThrottlePeer(peer.ID)                     {}
func (tracer) RecvRPC(*pubsub.RPC)                      {}
func (tracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (tracer) DropRPC(*pubsub.RPC, peer.ID)             {}
