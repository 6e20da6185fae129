package fraud

// GraphWithClock exposes graph to the tests, which need to move the processing clock.
var GraphWithClock = graph
