"""nftune's stand-in for PyInstaller's loader module of the same name (packaging/nftune.spec
puts it in the bundle instead). PyInstaller's install() imports ctypes on every start,
before main(), so that CDLL() finds libraries bundled under their base name. nftune loads
no bundled library through ctypes (only libc, as CDLL(None)), and imports ctypes itself
the first time it needs openat2(2)."""


def install() -> None:
    """Nothing to install: see the module's docstring."""
