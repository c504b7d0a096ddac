"""CPU lists and masks, checked against how the kernel prints them."""

from __future__ import annotations

import pytest

from nftune.cpus import bits, format_list, format_mask, mask_value, parse_list


@pytest.mark.parametrize(("nbits", "mask"), [
    (1, "1"),
    (2, "3"),
    (31, "7fffffff"),
    (32, "ffffffff"),
    (33, "1,ffffffff"),
    (64, "ffffffff,ffffffff"),
    (65, "1,ffffffff,ffffffff"),
    (256, ",".join(["ffffffff"] * 8)),
    (1024, ",".join(["ffffffff"] * 32)),
])
def test_every_cpu_of_n(nbits: int, mask: str) -> None:
    cpus = frozenset(range(nbits))
    assert format_mask(cpus, nbits) == mask
    assert mask_value(mask) == bits(cpus)


@pytest.mark.parametrize(("cpus", "nbits", "mask"), [
    ({0}, 1, "1"),
    (set(), 4, "0"),
    (set(), 64, "00000000,00000000"),  # zero-padded groups, as /sys prints them
    ({0, 2}, 4, "5"),
    ({32}, 33, "1,00000000"),
    ({1, 33}, 40, "02,00000002"),  # sparse: offline CPUs between are simply 0 bits
    ({63}, 65, "0,80000000,00000000"),
    ({64}, 65, "1,00000000,00000000"),
    ({0, 255}, 256, "80000000," + ",".join(["00000000"] * 6) + ",00000001"),
    ({1023}, 1024, "80000000," + ",".join(["00000000"] * 31)),
])
def test_sparse_and_partial_masks(cpus: set[int], nbits: int, mask: str) -> None:
    assert format_mask(cpus, nbits) == mask
    assert mask_value(mask) == bits(cpus)


def test_a_cpu_beyond_the_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        format_mask({4}, 4)


@pytest.mark.parametrize(("text", "cpus"), [
    ("", set()), ("\n", set()), ("0", {0}), ("0-3,8", {0, 1, 2, 3, 8}),
    ("0-1,4-5", {0, 1, 4, 5}), ("2,0", {0, 2})])
def test_lists(text: str, cpus: set[int]) -> None:
    assert parse_list(text) == cpus


@pytest.mark.parametrize("bad", ["a", "3-1", "0-", "-1", "0,,1", "1-2-3", "99999"])
def test_bad_lists(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_list(bad)


def test_lists_print_as_the_kernel_does() -> None:
    assert format_list({0, 1, 2, 3, 8, 10, 11}) == "0-3,8,10-11"
    assert format_list(set()) == ""


@pytest.mark.parametrize("bad", ["", "g", "0x1", "1,,2", "123456789"])
def test_bad_masks(bad: str) -> None:
    assert mask_value(bad) is None
