package partition

// StickyLen returns the number of keys r's Sticky routing remembers.
func StickyLen(r *Router) int {
	r.stickyMu.RLock()
	defer r.stickyMu.RUnlock()
	return len(r.stickyCur) + len(r.stickyOld)
}
