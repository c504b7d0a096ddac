# Packages, all written to $(OUT): "make bin" (the self-contained binary), "make deb",
# "make rpm". The builds need root (mmdebstrap, chroot); tools/build-* say what they do.
OUT ?= out
export OUT

.PHONY: all bin deb rpm e2e demo clean
all: deb rpm

bin:
	tools/build-bin

deb: bin
	tools/build-deb

rpm: bin
	tools/build-rpm

# Real boots under qemu: every scenario on every release (python -m e2e --help).
e2e: deb rpm
	.venv/bin/python -m e2e

# The README's main job: the bug and the fix on a bookworm guest (tools/demo).
demo:
	tools/demo

clean:
	rm -rf $(OUT)
