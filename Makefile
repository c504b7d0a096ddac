# Packages, all written to $(OUT): "make bin" (the self-contained binary), "make deb",
# "make rpm". The builds need root (mmdebstrap, chroot); tools/build-* say what they do.
OUT ?= out
export OUT

.PHONY: all bin deb rpm clean
all: deb rpm

bin:
	tools/build-bin

deb: bin
	tools/build-deb

rpm: bin
	tools/build-rpm

clean:
	rm -rf $(OUT)
