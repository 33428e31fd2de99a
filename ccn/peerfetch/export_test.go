package peerfetch

// WithoutShuffle makes a Source ask its peers in the order given, so that a
// test knows which one is asked first.
func WithoutShuffle() Option { return func(s *Source) { s.noShuffle = true } }
