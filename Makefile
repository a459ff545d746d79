# roastr_state — PGXS build.  See README.md ("Development") for the targets.

EXTENSION      = roastr_state
MODULE_big     = roastr_state
OBJS           = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/core/*.c)))
DATA           = $(wildcard sql/$(EXTENSION)--*.sql)
PGFILEDESC     = "roastr_state - versioned state, change log and notifications"

PG_CPPFLAGS   += $(shell pkg-config --cflags libsodium 2>/dev/null) -isystem $(includedir_server)
PG_CFLAGS     += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
# Header dependencies: the compiler writes src/x.d beside src/x.o (only for
# the .o compile: PG_CFLAGS does not reach the LLVM bitcode rule).
PG_CFLAGS     += -MMD -MP
SHLIB_LINK    += $(shell pkg-config --libs libsodium 2>/dev/null || echo -lsodium)

REGRESS       := $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS   = --inputdir=test --load-extension=pgtap --load-extension=$(EXTENSION)
ISOLATION     := $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=. --load-extension=$(EXTENSION)
EXTRA_CLEAN    = results output_iso regression.diffs regression.out tmp_check test/notify_probe \
                 $(OBJS:.o=.d)

PG_CONFIG     ?= pg_config
PGXS          := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: test demo example bench soak deps fuzz

# The one test command: installs what is missing, builds, runs every test
# against a throwaway cluster and prints "N passed, N failed".  PG=17 runs
# it against PostgreSQL 17, in a cached Debian 13 root (scripts/pgroot.sh).
test:
	@PG='$(PG)' bash scripts/test.sh

demo:
	@bash scripts/demo.sh

# The device client's example page against the real gateway and database,
# until Ctrl-C (EXAMPLE_PORT, GATEWAY_PORT to move it)
example:
	@bash scripts/example.sh

bench:
	@bash scripts/bench.sh

# Not part of `make test`: 64 clients for 10 minutes of mixed writes, syncs,
# consumption and webhooks, then checks for overdrafts, lost updates, cursor
# gaps and the notification queue (SOAK_CLIENTS, SOAK_SECONDS to change).
# TOPOLOGY=production: a primary, an asynchronous standby, PgBouncer and two
# gateways, with a gateway crash, killed connections and a failover
# (scripts/soak_prod.sh, 5 minutes of traffic).
soak:
	@TOPOLOGY='$(TOPOLOGY)' bash scripts/soak.sh

deps:
	@bash scripts/deps.sh

# libFuzzer harnesses of the pure-C core, FUZZ_SECONDS each (default 60)
fuzz:
	@bash scripts/deps.sh
	@bash scripts/fuzz.sh

# Each object is rebuilt when a header it includes changes (see -MMD above).
-include $(OBJS:.o=.d)
