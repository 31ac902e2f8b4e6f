package partition

import "strings"

// Sticky's memory of keys, an approximate LRU in two generations: a lookup
// under the read lock in the current one, O(1) work per new key, no list to
// reorder on each hit.

// stickyGet returns the partition remembered for key, or nil. A key found in
// the old generation moves to the current one.
func (r *Router) stickyGet(key string) *Partition {
	r.stickyMu.RLock()
	p, cur := r.stickyCur[key]
	_, old := r.stickyOld[key]
	r.stickyMu.RUnlock()
	if cur || !old {
		return p
	}
	r.stickyMu.Lock()
	defer r.stickyMu.Unlock()
	if p, ok := r.stickyCur[key]; ok { // moved meanwhile
		return p
	}
	p, ok := r.stickyOld[key]
	if !ok { // forgotten meanwhile
		return nil
	}
	delete(r.stickyOld, key)
	r.stickyCur[key] = p
	r.rotateStickyLocked()
	return p
}

// stickyPut remembers p for key, unless another request remembered a
// partition for it first, which it returns instead, or p was removed.
func (r *Router) stickyPut(key string, p *Partition) *Partition {
	r.stickyMu.Lock()
	defer r.stickyMu.Unlock()
	if q, ok := r.stickyCur[key]; ok {
		return q
	}
	if q, ok := r.stickyOld[key]; ok {
		delete(r.stickyOld, key)
		r.stickyCur[key] = q
		r.rotateStickyLocked()
		return q
	}
	// Remove deletes p from byName before it takes stickyMu to forget p:
	// checked under stickyMu, p is either still there or already
	// forgotten, and then must not be remembered again.
	if v, _ := r.byName.Load(p.Name); v != p {
		return p
	}
	r.stickyCur[strings.Clone(key)] = p // a copy: key may pin a request's buffer
	r.rotateStickyLocked()
	return p
}

// rotateStickyLocked starts a new generation when the current one is full,
// forgetting the old one.
func (r *Router) rotateStickyLocked() {
	if r.stickyHalf > 0 && len(r.stickyCur) >= r.stickyHalf {
		r.stickyOld, r.stickyCur = r.stickyCur, map[string]*Partition{}
	}
}

// forgetSticky forgets the keys remembered for p.
func (r *Router) forgetSticky(p *Partition) {
	if !r.cfg.Sticky {
		return
	}
	r.stickyMu.Lock()
	defer r.stickyMu.Unlock()
	for _, m := range []map[string]*Partition{r.stickyCur, r.stickyOld} {
		for k, q := range m {
			if q == p {
				delete(m, k)
			}
		}
	}
}
