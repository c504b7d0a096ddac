# Packages, all written to $(OUT): "make bin" (the self-contained binary), "make deb",
# "make rpm". The builds need root (mmdebstrap, chroot); tools/build-* say what they do.
OUT ?= out
export OUT

.PHONY: all bin deb rpm e2e clean
all: deb rpm

bin:
	tools/build-bin

deb: bin
	tools/build-deb

rpm: bin
	tools/build-rpm

# Real boots under qemu (not yet run by tests/run): python -m e2e --help for the options.
e2e: deb rpm
	.venv/bin/python -m e2e

clean:
	rm -rf $(OUT)
