package pool

// PoissonAtLeast exposes the tail of the Poisson distribution that
// FailFastBelow uses.
var PoissonAtLeast = poissonAtLeast
