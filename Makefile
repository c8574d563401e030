.PHONY: help demo test check lint types bench
help:            ## this list
	@grep -E '^[a-z]+:.*## ' Makefile | sed 's/:.*## /\t/'
demo:            ## start the dashboard on embedded defaults with the simulator (README command 1)
	./scripts/demo
test:            ## run the whole test suite against real Postgres and Redis (README command 2)
	./scripts/test
lint:            ## ruff lint + format check, import-linter boundary
	.venv/bin/ruff check runner benchmarks llmperf_site tests bench
	.venv/bin/ruff format --check runner benchmarks llmperf_site tests bench
	.venv/bin/lint-imports
types:           ## mypy --strict on the engine
	.venv/bin/mypy runner
check: lint types test  ## every check, as CI would
bench:           ## benchmarks of llmperf itself (engine, tokenizer, comparison, mirror)
	.venv/bin/python bench/bench_engine.py
	.venv/bin/python bench/bench_tokenize.py
	.venv/bin/python bench/bench_compare.py
	.venv/bin/python bench/bench_mirror.py
