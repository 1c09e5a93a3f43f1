# effnet build. `make` builds the library, the CLI and the tests; `make check` runs the tests;
# `make SAN=1 check` builds into build-san with AddressSanitizer + UndefinedBehaviorSanitizer.

PREFIX   ?= /usr/local
CC       ?= cc
OPT      ?= -O3
BLAS_LIBS ?= $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
BLAS_CFLAGS ?= $(shell pkg-config --cflags openblas 2>/dev/null)
# Image codecs (libjpeg-turbo, libpng) and zlib (gzipped IDX datasets).
IMAGE_LIBS ?= -ljpeg -lpng -lz
PYTHON   ?= /usr/bin/python3

ifeq ($(SAN),1)
BUILD    ?= build-san
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
BUILD    ?= build
endif

CFLAGS_ALL = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) -Wall -Wextra -Wshadow \
             -Wno-unused-parameter -fno-trapping-math -fopenmp -fPIC -Iinclude -Isrc $(BLAS_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(BLAS_LIBS) $(IMAGE_LIBS) -fopenmp -lm $(LDLIBS)
LDFLAGS_ALL = $(filter -fsanitize=%,$(OPT)) $(LDFLAGS)

LIB_SRC  := $(sort $(wildcard src/*/*.c src/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC  := $(sort $(wildcard cli/*.c))
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
REPLAYS  := $(FUZZ_SRC:fuzz/fuzz_%.c=$(BUILD)/tests/replay_%)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))

.PHONY: all test check check-unit check-fuzz check-parity check-live install uninstall clean fuzz

all: $(BUILD)/libeffnet.a $(BUILD)/libeffnet.so $(BUILD)/effnet $(TESTS) $(REPLAYS) $(EXAMPLES) \
     $(BUILD)/tools/bench_kernels \
     $(BUILD)/tests/parity

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*/*.h src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libeffnet.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libeffnet.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS_ALL) $(LDLIBS_ALL)

$(BUILD)/effnet: $(CLI_OBJ) $(BUILD)/libeffnet.a
	$(CC) -o $@ $(CLI_OBJ) $(BUILD)/libeffnet.a $(LDFLAGS_ALL) $(LDLIBS_ALL)

# test_search also covers CLI modules (results.csv, PNG plots), so it links their objects.
$(BUILD)/tests/test_search: tests/test_search.c tests/testutil.h cli/search.h $(BUILD)/libeffnet.a \
                            $(BUILD)/cli/search_csv.o $(BUILD)/cli/plot.o $(BUILD)/cli/plot_font.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(filter %.o,$^) $(BUILD)/libeffnet.a $(LDFLAGS_ALL) $(LDLIBS_ALL)

$(BUILD)/tests/test_%: tests/test_%.c tests/testutil.h $(BUILD)/libeffnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libeffnet.a $(LDFLAGS_ALL) $(LDLIBS_ALL)

$(BUILD)/tests/parity: tests/parity_main.c $(BUILD)/libeffnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libeffnet.a $(LDFLAGS_ALL) $(LDLIBS_ALL)

# Fuzz targets double as corpus replayers: the same LLVMFuzzerTestOneInput runs over every
# file of fuzz/corpus/<name>/ and fuzz/reject/<name>/ as an ordinary test.
$(BUILD)/tests/replay_%: fuzz/fuzz_%.c fuzz/replay_main.c $(wildcard fuzz/*.h) $(BUILD)/libeffnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< fuzz/replay_main.c $(BUILD)/libeffnet.a $(LDFLAGS_ALL) $(LDLIBS_ALL)

# Kernel benchmark behind the GEMM choice (README, Speed): not a test, asserts nothing.
$(BUILD)/tools/bench_kernels: tools/bench/bench_kernels.c $(BUILD)/libeffnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libeffnet.a $(LDFLAGS_ALL) $(LDLIBS_ALL)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libeffnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libeffnet.a $(LDFLAGS_ALL) $(LDLIBS_ALL)

# libFuzzer builds (clang): make fuzz, then e.g. build-fuzz/fuzz_safetensors fuzz/corpus/safetensors
fuzz:
	@mkdir -p build-fuzz
	for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang -std=c11 -D_DEFAULT_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fopenmp -Iinclude -Isrc \
	    -o build-fuzz/$$n $$f $(LIB_SRC) $(BLAS_LIBS) $(IMAGE_LIBS) -lm || exit 1; done

# Everything CI runs: -O3 and ASan+UBSan builds, live PyTorch oracle (scripts/setup.sh --test).
test:
	@sh tests/run_all.sh

# Quick tier: no live oracle, no sanitizers.
check: check-unit check-fuzz check-parity

check-unit: all
	@sh tests/run_unit.sh $(BUILD)

check-fuzz: all
	@sh tests/run_replay.sh $(BUILD)

check-parity: all
	@sh tests/run_parity.sh $(BUILD) tests/fixtures/small

# Live oracle tier: regenerates fixtures from torchvision/timm (B0..B7 at native resolution).
check-live: all
	@sh tests/run_live.sh $(BUILD) $(PYTHON)

install: $(BUILD)/libeffnet.a $(BUILD)/libeffnet.so $(BUILD)/effnet
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/effnet.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libeffnet.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libeffnet.so $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/effnet $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BLAS_LIBS@|$(BLAS_LIBS)|g' \
	  -e 's|@IMAGE_LIBS@|$(IMAGE_LIBS)|g' effnet.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/effnet.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/effnet.h $(DESTDIR)$(PREFIX)/lib/libeffnet.a \
	  $(DESTDIR)$(PREFIX)/lib/libeffnet.so $(DESTDIR)$(PREFIX)/bin/effnet \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/effnet.pc

clean:
	rm -rf build build-san build-fuzz
