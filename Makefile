# Roost build. `make` builds ./roost (optimised); `make run` sets up, builds
# and starts a development instance; `make test` sets up, builds with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs every test.

CC      ?= cc
PKGS    := libevent libevent_openssl libevent_pthreads openssl sqlite3 \
           libargon2 libgsasl inih gmime-3.0 zlib opendkim
PKGS    += libmicrohttpd
PKGS    += libunbound
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wformat=2 -Wshadow -Wno-unused-parameter \
           -Wmissing-prototypes -Wstrict-prototypes
BASE_CFLAGS := -std=gnu11 $(WARN) -Isrc -Itests/lib $(PKG_CFLAGS) -D_GNU_SOURCE -pthread
LIBS    := $(PKG_LIBS) -pthread -lm

MODE    ?= release
ifeq ($(MODE),asan)
  MODE_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                 -fno-sanitize-recover=undefined -Werror
  MODE_LDFLAGS := -fsanitize=address,undefined
else
  MODE_CFLAGS := -O2 -g
  MODE_LDFLAGS :=
endif

BUILD   := build/$(MODE)
LIB_SRC := $(shell find src -name '*.c' ! -name main.c | sort)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TESTLIB_SRC := $(wildcard tests/lib/*.c)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/%.o)
UNIT_DIRS := $(sort $(dir $(wildcard tests/unit/*/*.c)))
UNIT_BINS := $(patsubst tests/unit/%/,$(BUILD)/tests/unit_%,$(UNIT_DIRS))

.PHONY: all deps run test unit fuzz clean bench
all: roost

roost: $(BUILD)/roost
	cp $< $@

$(BUILD)/roost: $(BUILD)/src/main.o $(BUILD)/libroost.a
	$(CC) $(MODE_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libroost.a: $(LIB_OBJ)
	rm -f $@; ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(MODE_CFLAGS) -MMD -MP -c -o $@ $<

# One unit-test binary per module directory under tests/unit/.
.SECONDEXPANSION:
unit_objs = $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/unit/$(1)/*.c))
$(BUILD)/tests/unit_%: $$(call unit_objs,$$*) $(TESTLIB_OBJ) $(BUILD)/libroost.a
	@mkdir -p $(dir $@)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ $(LIBS)

unit: $(UNIT_BINS) $(BUILD)/roost

deps:
	@scripts/install-deps

run: deps
	$(MAKE) roost
	./roost serve

NPROC   := $(shell nproc 2>/dev/null || echo 2)

test: deps
	$(MAKE) -j$(NPROC) MODE=asan unit
	@tests/run-all build/asan

fuzz: deps
	@tests/fuzz/build-and-run $(FUZZ_SECONDS)

bench: deps
	@bench/run

clean:
	rm -rf build roost

-include $(shell find build -name '*.d' 2>/dev/null)
