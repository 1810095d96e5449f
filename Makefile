# fractal: PGXS build of the fractal-tree index access method
MODULE_big = fractal
OBJS = fractal_am.o \
	src/fr_page.o src/fr_compare.o src/fr_insert.o src/fr_node.o src/fr_flush.o src/fr_rootflush.o src/fr_flushread.o src/fr_split.o \
	src/fr_scan.o src/fr_leaffilter.o src/fr_arraykeys.o src/fr_heapprefetch.o src/fr_build.o src/fr_vacuum.o src/fr_options.o \
	src/fr_validate.o src/fr_stats.o src/fr_xlog.o src/fr_move.o src/fr_check.o src/fr_compress.o \
	src/fr_filter.o src/fr_counters.o src/fr_unique.o src/fr_onconflict.o src/fr_pending.o

EXTENSION = fractal
DATA = fractal--1.0.sql fractal--1.0--1.1.sql fractal--1.1--1.2.sql
PGFILEDESC = "fractal - write-optimized fractal tree index"

REGRESS = $(basename $(notdir $(wildcard $(srcdir)/sql/*.sql)))
REGRESS_OPTS = --inputdir=$(srcdir) --outputdir=$(CURDIR)/test/out --load-extension=fractal
ISOLATION = $(basename $(notdir $(wildcard $(srcdir)/specs/*.spec)))
ISOLATION_OPTS = --inputdir=$(srcdir) --outputdir=$(CURDIR)/test/out_iso --load-extension=fractal
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CPPFLAGS = -I$(srcdir)/src
# our own code is built with warnings as errors
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers -Werror $(FRACTAL_EXTRA_CFLAGS)
SHLIB_LINK = -lzstd

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every object depends on the shared
# header, or a struct change leaves objects built with the old layout
$(OBJS): $(srcdir)/src/fractal.h $(srcdir)/src/fr_xlog.h
