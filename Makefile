# Shortcuts; the scripts do the work (and install what they need).
.PHONY: drill test bench soak fuzz
drill:
	./scripts/drill
test:
	./scripts/test
bench:
	./scripts/bench
# 1000 duplicate deliveries over 10 processes, home frozen, state writes applied then
# failed: exactly one transition (figures, not a test).
soak:
	./scripts/soak
# Ten million fuzzing executions over every input surface (events, requests, config,
# FAILBACK_WINDOW); a panic fails it.
fuzz:
	cargo run -p regionpilot-shared --features testing --example fuzz -- 10000000
