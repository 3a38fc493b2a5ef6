package backend

// PeerForgetter is implemented by backends that hold state per peer (server
// requests delivered to it and not yet answered). The gateway calls
// ForgetPeer when a client session ends, so those requests are answered
// upstream with an error instead of waiting forever.
type PeerForgetter interface {
	ForgetPeer(p Peer)
}
