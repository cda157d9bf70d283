# Shortcuts; the scripts do the work (and install what they need).
.PHONY: drill test bench
drill:
	./scripts/drill
test:
	./scripts/test
bench:
	./scripts/bench
